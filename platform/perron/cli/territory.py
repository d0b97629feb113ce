"""``perron territory``: a commune's streets, neighbourhoods and zones from the command line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import acting_as, command_line_actor
from perron.cli.common import err, fail, out, parse_pairs, run_async, settings_from
from perron.config import Settings
from perron.db.scope import platform_scope, tenant_scope
from perron.i18n import pick, using_language
from perron.runtime import command_runtime
from perron.tenancy.models import Commune
from perron.territory import actions, service
from perron.territory.actions import ImportRefused
from perron.territory.matching import street_key
from perron.territory.models import Neighbourhood, TerritoryChange

FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@asynccontextmanager
async def commune_transaction(
    settings: Settings, slug: str, *, write: bool
) -> AsyncIterator[tuple[Commune, AsyncSession]]:
    """The commune ``slug`` and a session in its scope, attributed to the person at the terminal.
    Messages come in English, like every command's."""
    async with command_runtime(settings) as runtime:
        with platform_scope(f"perron territory: find {slug}"):
            async with runtime.database.session() as session:
                commune = await session.scalar(select(Commune).where(Commune.slug == slug))
        if commune is None:
            fail(f"no commune has the slug {slug!r}")
        assert commune is not None
        with acting_as(command_line_actor()), tenant_scope(commune.id), using_language("en"):
            opened = runtime.database.transaction() if write else runtime.database.session()
            async with opened as session:
                yield commune, session


@click.group()
def territory() -> None:
    """A commune's streets, neighbourhoods and zones (what modules place addresses in)."""


@territory.command("import-streets")
@click.argument("slug")
@click.argument("file", type=FILE)
@click.pass_context
@run_async
async def import_streets(ctx: click.Context, slug: str, file: Path) -> None:
    """Add streets from a CSV file: "name;postcode" per line, or with a header such as
    "fr;nl;postcode;lon;lat". Streets already present are left as they are. Any bad row
    refuses the whole file, every problem listed."""
    data = await asyncio.to_thread(file.read_bytes)
    try:
        async with commune_transaction(settings_from(ctx), slug, write=True) as (commune, session):
            report = await actions.import_streets(session, commune.id, data)
    except ImportRefused as refused:
        for problem in refused.problems:
            err.print(f"{file}:{problem.line}: {problem.message}", markup=False, highlight=False)
        fail(f"{len(refused.problems)} row(s) refused; nothing was imported.")
    for line, name in report.already_present:
        out.print(f"{file}:{line}: {name} is already there: left as it is.", markup=False)
    if report.created:
        out.print(
            f"Imported {len(report.created)} street(s) into {slug} (territory version {report.version}).",
            markup=False,
        )
    else:
        out.print(f"Nothing new: every street of the file is already in {slug}.", markup=False)


async def _neighbourhood_named(session: AsyncSession, commune_id: UUID, name: str) -> Neighbourhood | None:
    wanted = street_key(name)
    rows = await session.scalars(
        select(Neighbourhood).where(Neighbourhood.tenant_id == commune_id, Neighbourhood.active.is_(True))
    )
    matches = [row for row in rows if wanted in {street_key(text) for text in row.names.values()}]
    return matches[0] if len(matches) == 1 else None


@territory.command("import-geojson")
@click.argument("slug")
@click.argument("file", type=FILE)
@click.option("--neighbourhood", "neighbourhood_name", help="Outline of this neighbourhood (created if new).")
@click.option(
    "--zone", "zone_key", help="Outline of the zone with this key, such as centre (created if new)."
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="LANG=TEXT",
    help="Name per language for a new neighbourhood or zone, or to rename a zone (repeatable).",
)
@click.pass_context
@run_async
async def import_geojson(
    ctx: click.Context,
    slug: str,
    file: Path,
    neighbourhood_name: str | None,
    zone_key: str | None,
    names: tuple[str, ...],
) -> None:
    """Set the outline of a neighbourhood or a zone from a GeoJSON file (WGS84 longitude and
    latitude: a Polygon, a MultiPolygon, or a FeatureCollection of them)."""
    if (neighbourhood_name is None) == (zone_key is None):
        raise click.UsageError("give either --neighbourhood NAME or --zone KEY")
    given = parse_pairs(names, "--name")
    data = await asyncio.to_thread(file.read_bytes)
    async with commune_transaction(settings_from(ctx), slug, write=True) as (commune, session):
        first = commune.languages[0]
        if zone_key is not None:
            zone = await actions.zone_by_key(session, commune.id, zone_key)
            if zone is None:
                created = await actions.create_zone(
                    session,
                    commune.id,
                    key=zone_key,
                    names=given or {first: zone_key.replace("-", " ").capitalize()},
                    geometry=data,
                )
                message = f"Created the zone {created.key} of {slug}."
            else:
                changed = await actions.update_zone(
                    session, commune.id, zone.id, geometry=data, **({"names": given} if given else {})
                )
                message = f"Updated the zone {zone.key} of {slug}." if changed else "The zone is unchanged."
        else:
            assert neighbourhood_name is not None
            existing = await _neighbourhood_named(session, commune.id, neighbourhood_name)
            if existing is None:
                await actions.create_neighbourhood(
                    session, commune.id, names={first: neighbourhood_name, **given}, geometry=data
                )
                message = f"Created the neighbourhood {neighbourhood_name} of {slug}."
            else:
                changed = await actions.update_neighbourhood(session, commune.id, existing.id, geometry=data)
                message = (
                    f"Updated the outline of the neighbourhood {pick(existing.names, first)} of {slug}."
                    if changed
                    else "The neighbourhood's outline is unchanged."
                )
    out.print(message, markup=False)


@territory.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--history", "history_count", default=10, show_default=True, help="How many recent changes.")
@click.pass_context
@run_async
async def show(ctx: click.Context, slug: str, as_json: bool, history_count: int) -> None:
    """Show a commune's territory: version, neighbourhoods, zones, recent changes."""
    async with commune_transaction(settings_from(ctx), slug, write=False) as (commune, session):
        built = await service.index(session)
        history = list(
            await session.scalars(
                select(TerritoryChange)
                .where(TerritoryChange.tenant_id == commune.id)
                .order_by(TerritoryChange.version.desc())
                .limit(max(history_count, 0))
            )
        )
    language = commune.languages[0]
    placed: dict[UUID, int] = {}
    for neighbourhood_id in built.street_neighbourhood.values():
        placed[neighbourhood_id] = placed.get(neighbourhood_id, 0) + 1
    neighbourhoods = sorted(
        built.neighbourhoods.values(), key=lambda n: (not n.active, street_key(n.name(language)))
    )
    data: dict[str, Any] = {
        "slug": slug,
        "version": built.version,
        "streets": len(built.streets),
        "streets_without_point": sum(1 for street in built.streets.values() if not street.has_point),
        "neighbourhoods": [
            {
                "id": str(n.id),
                "names": dict(n.names),
                "active": n.active,
                "outline": n.has_outline,
                "listed_streets": len(n.street_ids),
                "streets": placed.get(n.id, 0),
                "replaced_by": [str(value) for value in n.replaced_by],
            }
            for n in neighbourhoods
        ],
        "zones": [{"key": z.key, "names": dict(z.names)} for z in built.zones.values()],
        "history": [
            {
                "version": change.version,
                "at": change.occurred_at.isoformat(),
                "who": change.actor_label,
                "action": change.action,
                "summary": change.summary,
            }
            for change in history
        ],
    }
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print(
        f"{commune.name(language)} ({slug}): territory version {built.version}, {data['streets']} street(s) "
        f"({data['streets_without_point']} without a point)",
        markup=False,
    )
    if neighbourhoods:
        table = Table("neighbourhood", "state", "outline", "listed streets", "streets in it")
        for item, n in zip(data["neighbourhoods"], neighbourhoods, strict=True):
            state = "active" if n.active else ("replaced" if n.replaced_by else "inactive")
            table.add_row(
                n.name(language),
                state,
                "yes" if n.has_outline else "no",
                str(item["listed_streets"]),
                str(item["streets"]),
            )
        out.print(table)
    else:
        out.print("No neighbourhood yet.")
    if built.zones:
        zones = Table("zone", "name")
        for zone in built.zones.values():
            zones.add_row(zone.key, zone.name(language))
        out.print(zones)
    else:
        out.print("No zone yet.")
    for change in history:
        out.print(
            f"v{change.version}  {change.occurred_at:%Y-%m-%d %H:%M}  {change.actor_label}  {change.action}",
            markup=False,
        )
