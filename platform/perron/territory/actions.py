"""Staff changes to a commune's territory: streets, neighbourhoods (with splits and merges)
and zones.

Each action checks everything before writing (a refusal is an
:class:`~perron.errors.Invalid` naming the field, and changes nothing), makes the change in
the caller's transaction, bumps the commune's territory version, writes one
:class:`~perron.territory.models.TerritoryChange` (the history staff read), records an audit
entry, and sends :data:`perron.signals.territory_changed` with the ids affected, delivered
after commit. Actions take the commune explicitly and run in its scope or in the platform
scope (commands, tenants as code).

A split or a merge never deletes: the neighbourhoods replaced are retired (inactive, with
``replaced_by``) and the call returns a :class:`Remap` (old id → new ids) so that modules can
move memberships (see also :func:`perron.territory.service.successors`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit, signals
from perron.audit import current_actor
from perron.db.base import new_id, utcnow
from perron.db.repository import ensure_owned, ensure_tenant
from perron.errors import Invalid, NotFound
from perron.i18n import TextRules, gettext, language_name, pick
from perron.sentinels import NOT_GIVEN, NotGiven
from perron.tenancy.models import Commune
from perron.territory.geojson import Area, check_point, overlap, parse_area, union
from perron.territory.matching import clean_postcode, street_key
from perron.territory.models import (
    Neighbourhood,
    NeighbourhoodStreet,
    Street,
    TerritoryChange,
    TerritoryState,
    Zone,
)

NAME_MAX_LENGTH = 120
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_CSV_ROWS = 20_000
MAX_PARTS = 10
ZONE_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

GeometryInput = Area | bytes | str | Mapping[str, Any]
"""An outline: already checked (:class:`Area`), an uploaded file's content, or GeoJSON."""


# --- Shared checks and bookkeeping ---------------------------------------------------------


async def _languages(session: AsyncSession, commune_id: UUID) -> list[str]:
    ensure_tenant(commune_id)
    commune = await session.get(Commune, commune_id)
    if commune is None:
        raise NotFound(gettext("This commune does not exist."))
    return list(commune.languages)


def check_names(names: object, languages: Sequence[str], field: str = "names") -> dict[str, str]:
    """A name per language: the commune's first language is required, others optional."""
    first = languages[0] if languages else "fr"
    if isinstance(names, Mapping):
        given = names.get(first)
        if not isinstance(given, str) or not given.strip():
            raise Invalid(
                f"{field}.{first}",
                gettext("Give the name in %(language)s.") % {"language": language_name(first)},
            )
    return dict(TextRules(max_length=NAME_MAX_LENGTH, required=(first,)).check(names, field))


def _postcode(value: object, field: str = "postcode") -> str:
    code = clean_postcode(value) if isinstance(value, str) else None
    if code is None:
        raise Invalid(
            field,
            gettext("%(value)s is not a Belgian postcode (four digits, such as 4280).")
            % {"value": repr(value)[:20] if not isinstance(value, str) else f"“{value.strip()[:20]}”"},
        )
    return code


def _point(lon: object, lat: object, field: str = "point") -> tuple[float | None, float | None]:
    if lon is None and lat is None:
        return None, None
    if lon is None or lat is None:
        raise Invalid(field, gettext("Give both the longitude and the latitude, or neither."))
    return check_point(lon, lat, field)


def _area(value: GeometryInput, field: str) -> Area:
    return value if isinstance(value, Area) else parse_area(value, field)


def _label(names: Mapping[str, str]) -> str:
    return pick(names)


async def _bump(session: AsyncSession, commune_id: UUID) -> int:
    state = await session.scalar(
        select(TerritoryState).where(TerritoryState.tenant_id == commune_id).with_for_update()
    )
    if state is None:
        state = TerritoryState(tenant_id=commune_id, version=0)
        session.add(state)
    state.version = (state.version or 0) + 1
    state.stamp = new_id()
    state.updated_at = utcnow()
    await session.flush()
    return state.version


async def _changed(
    session: AsyncSession,
    commune_id: UUID,
    *,
    action: str,
    kind: str,
    ids: Iterable[UUID],
    summary: Mapping[str, Any],
    changes: Mapping[str, Any] | None = None,
) -> int:
    """Bump the version, write the history, audit, and signal modules after commit."""
    affected = tuple(dict.fromkeys(ids))
    version = await _bump(session, commune_id)
    actor = current_actor()
    session.add(
        TerritoryChange(
            tenant_id=commune_id,
            version=version,
            actor_label=actor.label,
            actor_person_id=actor.person_id,
            action=action,
            kind=kind,
            object_ids=[str(value) for value in affected],
            summary=dict(summary),
        )
    )
    audit.record(
        session,
        tenant_id=commune_id,
        action=f"territory.{action}",
        object_type=kind,
        object_id=str(affected[0]) if len(affected) == 1 else None,
        changes={**(changes if changes is not None else summary), "version": version},
    )
    signals.territory_changed.send(
        session, signals.TerritoryChanged(kind, affected, version), tenant_id=commune_id
    )
    return version


# --- Streets -------------------------------------------------------------------------------


async def _street(session: AsyncSession, commune_id: UUID, street_id: UUID) -> Street:
    ensure_tenant(commune_id)
    found = await session.scalar(select(Street).where(Street.tenant_id == commune_id, Street.id == street_id))
    if found is None:
        raise NotFound(gettext("This street does not exist (any more)."))
    return ensure_owned(found)


def _street_keys(names: Mapping[str, str]) -> set[str]:
    return {street_key(name) for name in names.values()}


async def _check_street_free(
    session: AsyncSession,
    commune_id: UUID,
    names: Mapping[str, str],
    postcode: str,
    *,
    exclude: UUID | None = None,
) -> None:
    keys = _street_keys(names)
    query = select(Street).where(Street.tenant_id == commune_id, Street.postcode == postcode)
    for other in await session.scalars(query):
        if other.id == exclude:
            continue
        if keys & _street_keys(other.names):
            language = next(
                code for code, name in names.items() if street_key(name) in _street_keys(other.names)
            )
            raise Invalid(
                f"names.{language}",
                gettext("The street %(name)s (%(postcode)s) already exists.")
                % {"name": _label(other.names), "postcode": postcode},
            )


async def create_street(
    session: AsyncSession,
    commune_id: UUID,
    *,
    names: Mapping[str, str],
    postcode: str,
    lon: float | None = None,
    lat: float | None = None,
) -> Street:
    languages = await _languages(session, commune_id)
    clean = check_names(names, languages)
    code = _postcode(postcode)
    x, y = _point(lon, lat)
    await _check_street_free(session, commune_id, clean, code)
    street = Street(
        tenant_id=commune_id,
        names=clean,
        postcode=code,
        match_key=street_key(clean[languages[0]]),
        lon=x,
        lat=y,
    )
    session.add(street)
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="street.create",
        kind="streets",
        ids=[street.id],
        summary={"names": clean, "postcode": code},
    )
    return street


async def update_street(
    session: AsyncSession,
    commune_id: UUID,
    street_id: UUID,
    *,
    names: Mapping[str, str] | NotGiven = NOT_GIVEN,
    postcode: str | NotGiven = NOT_GIVEN,
    point: tuple[float | None, float | None] | NotGiven = NOT_GIVEN,
) -> bool:
    """Rename a street, change its postcode or its point (``(None, None)`` removes it)."""
    languages = await _languages(session, commune_id)
    street = await _street(session, commune_id, street_id)
    new_names = dict(street.names) if isinstance(names, NotGiven) else check_names(names, languages)
    new_code = street.postcode if isinstance(postcode, NotGiven) else _postcode(postcode)
    lon, lat = (street.lon, street.lat) if isinstance(point, NotGiven) else _point(*point)
    before = {"names": dict(street.names), "postcode": street.postcode, "point": [street.lon, street.lat]}
    after = {"names": new_names, "postcode": new_code, "point": [lon, lat]}
    changes = audit.diff(before, after)
    if not changes:
        return False
    await _check_street_free(session, commune_id, new_names, new_code, exclude=street.id)
    street.names = new_names
    street.postcode = new_code
    street.match_key = street_key(new_names.get(languages[0]) or _label(new_names))
    street.lon, street.lat = lon, lat
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="street.update",
        kind="streets",
        ids=[street.id],
        summary={"names": new_names, "before": before["names"], "postcode": new_code},
        changes=changes,
    )
    return True


async def delete_street(session: AsyncSession, commune_id: UUID, street_id: UUID) -> None:
    """Remove a street (and from the neighbourhoods that list it)."""
    street = await _street(session, commune_id, street_id)
    await session.execute(
        delete(NeighbourhoodStreet).where(
            NeighbourhoodStreet.tenant_id == commune_id, NeighbourhoodStreet.street_id == street.id
        )
    )
    summary = {"names": dict(street.names), "postcode": street.postcode}
    await session.delete(street)
    await session.flush()
    await _changed(
        session, commune_id, action="street.delete", kind="streets", ids=[street_id], summary=summary
    )


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str


class ImportRefused(Invalid):
    """A street file with problems: nothing was imported; ``problems`` lists each row's."""

    def __init__(self, problems: list[RowProblem]) -> None:
        shown = "; ".join(
            gettext("line %(line)s: %(message)s") % {"line": p.line, "message": p.message}
            for p in problems[:5]
        )
        more = len(problems) - 5
        if more > 0:
            shown += " " + gettext("(and %(count)s more)") % {"count": more}
        super().__init__("file", gettext("Nothing was imported. %(problems)s") % {"problems": shown})
        self.problems = problems


@dataclass
class ImportReport:
    created: list[Street] = field(default_factory=list)
    already_present: list[tuple[int, str]] = field(default_factory=list)
    """(line, name) of rows whose street already existed: left as it is."""
    version: int | None = None


_COLUMNS = {
    "name": "name",
    "nom": "name",
    "naam": "name",
    "street": "name",
    "rue": "name",
    "straat": "name",
    "strasse": "name",
    "postcode": "postcode",
    "code postal": "postcode",
    "code_postal": "postcode",
    "postal code": "postcode",
    "postal_code": "postcode",
    "cp": "postcode",
    "postleitzahl": "postcode",
    "plz": "postcode",
    "lon": "lon",
    "lng": "lon",
    "longitude": "lon",
    "lat": "lat",
    "latitude": "lat",
}


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # spreadsheets on Windows save in cp1252


def _header(cells: list[str], languages: Sequence[str]) -> dict[str, int] | None:
    """Column positions when the first row is a header, else None."""
    labels = [cell.strip().lower() for cell in cells]
    if not any(label in _COLUMNS and _COLUMNS[label] == "postcode" for label in labels):
        return None
    columns: dict[str, int] = {}
    for position, label in enumerate(labels):
        if label in _COLUMNS:
            name = _COLUMNS[label]
            columns[f"name.{languages[0]}" if name == "name" else name] = position
        elif label in ("fr", "nl", "de", "en"):
            columns[f"name.{label}"] = position
        elif label:
            raise Invalid(
                "file",
                gettext(
                    "The header has an unknown column “%(column)s”; use name (or fr, nl, de, en), "
                    "postcode, lon and lat."
                )
                % {"column": cells[position].strip()[:40]},
            )
    if not any(key.startswith("name.") for key in columns):
        raise Invalid("file", gettext("The header has no column for the street name."))
    return columns


def _number(text: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return float("nan")


async def import_streets(session: AsyncSession, commune_id: UUID, data: bytes | str) -> ImportReport:
    """Create streets from a CSV file: ``name;postcode`` per line (optionally ``;lon;lat``),
    or with a header naming its columns (``fr;nl;postcode;lon;lat``). Separators ``;``,
    ``,`` or tab. Streets already present are left as they are and reported; any other
    problem refuses the whole file with every row's problem (:class:`ImportRefused`)."""
    languages = await _languages(session, commune_id)
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > MAX_CSV_BYTES:
        raise Invalid(
            "file",
            gettext("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
            % {"size": f"{size / 1048576:.1f}", "limit": f"{MAX_CSV_BYTES // 1048576}"},
        )
    text = _decode(data)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise Invalid("file", gettext("The file is empty."))
    delimiter = ";" if ";" in first else ("\t" if "\t" in first else ",")
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if len(rows) > MAX_CSV_ROWS + 1:
        raise Invalid(
            "file",
            gettext("The file has more than %(limit)s lines; split it.")
            % {"limit": f"{MAX_CSV_ROWS:,}".replace(",", " ")},
        )
    start = next(index for index, row in enumerate(rows) if any(cell.strip() for cell in row))
    columns = _header(rows[start], languages)
    if columns is None:
        columns = {f"name.{languages[0]}": 0, "postcode": 1, "lon": 2, "lat": 3}
    else:
        start += 1
    if "postcode" not in columns:
        raise Invalid("file", gettext("The header has no postcode column."))

    existing: dict[tuple[str, str], Street] = {}
    for street in await session.scalars(select(Street).where(Street.tenant_id == commune_id)):
        for key in _street_keys(street.names):
            existing[(street.postcode, key)] = street
    problems: list[RowProblem] = []
    seen: dict[tuple[str, str], int] = {}
    report = ImportReport()
    new_rows: list[tuple[dict[str, str], str, float | None, float | None]] = []
    for index in range(start, len(rows)):
        line = index + 1
        cells = rows[index]
        if not any(cell.strip() for cell in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            position = columns.get(name)
            return cells[position].strip() if position is not None and position < len(cells) else ""

        raw_names = {
            key.removeprefix("name."): cell(key) for key in columns if key.startswith("name.") and cell(key)
        }
        try:
            names = check_names(raw_names, languages)
        except Invalid as error:
            if not raw_names.get(languages[0]):
                message = gettext("the street name is missing")
            else:
                message = error.reason
            problems.append(RowProblem(line, message))
            continue
        code = clean_postcode(cell("postcode"))
        if code is None:
            shown = cell("postcode")
            problems.append(
                RowProblem(
                    line,
                    gettext("“%(value)s” is not a Belgian postcode (four digits, such as 4280)")
                    % {"value": shown[:20]}
                    if shown
                    else gettext("the postcode is missing"),
                )
            )
            continue
        lon, lat = _number(cell("lon")), _number(cell("lat"))
        try:
            x, y = _point(lon, lat, "point")
        except Invalid as error:
            problems.append(RowProblem(line, error.reason))
            continue
        keys = {(code, name_key) for name_key in _street_keys(names)}
        twin = next((seen[pair] for pair in keys if pair in seen), None)
        if twin is not None:
            problems.append(
                RowProblem(line, gettext("the same street is already on line %(line)s") % {"line": twin})
            )
            continue
        for pair in keys:
            seen[pair] = line
        if any(pair in existing for pair in keys):
            report.already_present.append((line, _label(names)))
            continue
        new_rows.append((names, code, x, y))
    if problems:
        raise ImportRefused(problems)
    if not new_rows and not report.already_present:
        raise Invalid("file", gettext("The file lists no street."))
    for names, code, x, y in new_rows:
        street = Street(
            tenant_id=commune_id,
            names=names,
            postcode=code,
            match_key=street_key(names[languages[0]]),
            lon=x,
            lat=y,
        )
        session.add(street)
        report.created.append(street)
    if report.created:
        await session.flush()
        report.version = await _changed(
            session,
            commune_id,
            action="streets.import",
            kind="streets",
            ids=[street.id for street in report.created],
            summary={"count": len(report.created), "already_present": len(report.already_present)},
        )
    return report


# --- Neighbourhoods ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewNeighbourhood:
    """One part of a split: its names, and an outline and/or a list of streets."""

    names: Mapping[str, str]
    geometry: GeometryInput | None = None
    street_ids: Sequence[UUID] = ()


@dataclass(frozen=True)
class Remap:
    """What a split or merge did: each retired neighbourhood → the neighbourhoods replacing it."""

    mapping: Mapping[UUID, tuple[UUID, ...]]
    created: tuple[Neighbourhood, ...]
    version: int

    @property
    def retired(self) -> tuple[UUID, ...]:
        return tuple(self.mapping)


async def _neighbourhood(session: AsyncSession, commune_id: UUID, neighbourhood_id: UUID) -> Neighbourhood:
    ensure_tenant(commune_id)
    found = await session.scalar(
        select(Neighbourhood).where(
            Neighbourhood.tenant_id == commune_id, Neighbourhood.id == neighbourhood_id
        )
    )
    if found is None:
        raise NotFound(gettext("This neighbourhood does not exist (any more)."))
    return ensure_owned(found)


async def listed_streets(session: AsyncSession, commune_id: UUID, neighbourhood_id: UUID) -> list[UUID]:
    """The streets a neighbourhood lists."""
    ensure_tenant(commune_id)
    rows = await session.scalars(
        select(NeighbourhoodStreet.street_id).where(
            NeighbourhoodStreet.tenant_id == commune_id,
            NeighbourhoodStreet.neighbourhood_id == neighbourhood_id,
        )
    )
    return list(rows)


async def _check_streets(
    session: AsyncSession,
    commune_id: UUID,
    street_ids: Iterable[UUID],
    *,
    field: str,
    ignore: Iterable[UUID] = (),
) -> list[UUID]:
    """Streets that exist in the commune and are listed in no other active neighbourhood
    (those in ``ignore`` excepted)."""
    wanted = list(dict.fromkeys(street_ids))
    if not wanted:
        return []
    found = await session.execute(
        select(Street.id, Street.names).where(Street.tenant_id == commune_id, Street.id.in_(wanted))
    )
    names = {row.id: row.names for row in found}
    if len(names) != len(wanted):
        raise Invalid(field, gettext("Some of the chosen streets do not exist any more; reload the page."))
    taken = (
        await session.execute(
            select(NeighbourhoodStreet.street_id, Neighbourhood.names)
            .join(
                Neighbourhood,
                (Neighbourhood.tenant_id == NeighbourhoodStreet.tenant_id)
                & (Neighbourhood.id == NeighbourhoodStreet.neighbourhood_id),
            )
            .where(
                NeighbourhoodStreet.tenant_id == commune_id,
                NeighbourhoodStreet.street_id.in_(wanted),
                Neighbourhood.active.is_(True),
                Neighbourhood.id.not_in(list(ignore)),
            )
        )
    ).first()
    if taken is not None:
        raise Invalid(
            field,
            gettext("%(street)s is already in the neighbourhood %(neighbourhood)s; take it out there first.")
            % {"street": _label(names[taken[0]]), "neighbourhood": _label(taken[1])},
        )
    return wanted


async def _check_name_free(
    session: AsyncSession,
    commune_id: UUID,
    names: Mapping[str, str],
    *,
    field: str = "names",
    ignore: Iterable[UUID] = (),
) -> None:
    keys = _street_keys(names)
    skip = set(ignore)
    query = select(Neighbourhood).where(Neighbourhood.tenant_id == commune_id, Neighbourhood.active.is_(True))
    for other in await session.scalars(query):
        if other.id not in skip and keys & _street_keys(other.names):
            language = next(
                code for code, name in names.items() if street_key(name) in _street_keys(other.names)
            )
            raise Invalid(
                f"{field}.{language}",
                gettext("Another neighbourhood is already called %(name)s.") % {"name": _label(other.names)},
            )


def _link(commune_id: UUID, neighbourhood_id: UUID, street_ids: Iterable[UUID]) -> list[NeighbourhoodStreet]:
    return [
        NeighbourhoodStreet(tenant_id=commune_id, neighbourhood_id=neighbourhood_id, street_id=street_id)
        for street_id in street_ids
    ]


def _needs_place(outline: Area | None, streets: Sequence[UUID], field: str) -> None:
    if outline is None and not streets:
        raise Invalid(
            field,
            gettext("Give the neighbourhood an outline (a GeoJSON file) or choose at least one street."),
        )


async def create_neighbourhood(
    session: AsyncSession,
    commune_id: UUID,
    *,
    names: Mapping[str, str],
    geometry: GeometryInput | None = None,
    street_ids: Iterable[UUID] = (),
    active: bool = True,
) -> Neighbourhood:
    languages = await _languages(session, commune_id)
    clean = check_names(names, languages)
    outline = _area(geometry, "geometry") if geometry is not None else None
    if active:
        chosen = await _check_streets(session, commune_id, street_ids, field="streets")
    else:
        chosen = list(dict.fromkeys(street_ids))
        await _check_exist(session, commune_id, chosen)
    _needs_place(outline, chosen, "streets")
    if active:
        await _check_name_free(session, commune_id, clean)
    neighbourhood = Neighbourhood(
        tenant_id=commune_id,
        names=clean,
        geometry=outline.geometry if outline else None,
        active=active,
        replaced_by=[],
    )
    session.add(neighbourhood)
    await session.flush()
    session.add_all(_link(commune_id, neighbourhood.id, chosen))
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="neighbourhood.create",
        kind="neighbourhoods",
        ids=[neighbourhood.id],
        summary={"names": clean, "streets": len(chosen), "outline": outline is not None, "active": active},
    )
    return neighbourhood


async def update_neighbourhood(
    session: AsyncSession,
    commune_id: UUID,
    neighbourhood_id: UUID,
    *,
    names: Mapping[str, str] | NotGiven = NOT_GIVEN,
    geometry: GeometryInput | NotGiven | None = NOT_GIVEN,
    street_ids: Iterable[UUID] | NotGiven = NOT_GIVEN,
    active: bool | NotGiven = NOT_GIVEN,
) -> bool:
    """Change a neighbourhood; ``geometry=None`` removes its outline."""
    languages = await _languages(session, commune_id)
    neighbourhood = await _neighbourhood(session, commune_id, neighbourhood_id)
    if neighbourhood.replaced_by:
        raise Invalid(
            "neighbourhood",
            gettext("This neighbourhood was replaced by a split or a merge; it can no longer be changed."),
        )
    new_names = dict(neighbourhood.names) if isinstance(names, NotGiven) else check_names(names, languages)
    outline: Area | None = None
    if isinstance(geometry, NotGiven):
        new_geometry = neighbourhood.geometry
    elif geometry is None:
        new_geometry = None
    else:
        outline = _area(geometry, "geometry")
        new_geometry = outline.geometry
    new_active = neighbourhood.active if isinstance(active, NotGiven) else bool(active)
    current_streets = await listed_streets(session, commune_id, neighbourhood.id)
    wanted = current_streets if isinstance(street_ids, NotGiven) else list(dict.fromkeys(street_ids))
    if new_active:
        wanted = await _check_streets(session, commune_id, wanted, field="streets", ignore=[neighbourhood.id])
        await _check_name_free(session, commune_id, new_names, ignore=[neighbourhood.id])
    else:
        await _check_exist(session, commune_id, wanted)
    if new_geometry is None and not wanted:
        raise Invalid(
            "streets",
            gettext("Give the neighbourhood an outline (a GeoJSON file) or choose at least one street."),
        )
    added = [street for street in wanted if street not in set(current_streets)]
    removed = [street for street in current_streets if street not in set(wanted)]
    geometry_changed = new_geometry != neighbourhood.geometry
    changes = audit.diff(
        {"names": dict(neighbourhood.names), "active": neighbourhood.active},
        {"names": new_names, "active": new_active},
    )
    if geometry_changed:
        changes["outline"] = [neighbourhood.geometry is not None, new_geometry is not None]
    if added or removed:
        changes["streets"] = {"added": len(added), "removed": len(removed)}
    if not changes:
        return False
    neighbourhood.names = new_names
    neighbourhood.geometry = new_geometry
    neighbourhood.active = new_active
    if removed:
        await session.execute(
            delete(NeighbourhoodStreet).where(
                NeighbourhoodStreet.tenant_id == commune_id,
                NeighbourhoodStreet.neighbourhood_id == neighbourhood.id,
                NeighbourhoodStreet.street_id.in_(removed),
            )
        )
    session.add_all(_link(commune_id, neighbourhood.id, added))
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="neighbourhood.update",
        kind="neighbourhoods",
        ids=[neighbourhood.id],
        summary={"names": new_names, **changes},
        changes=changes,
    )
    return True


async def _check_exist(session: AsyncSession, commune_id: UUID, street_ids: Sequence[UUID]) -> None:
    if not street_ids:
        return
    found = set(
        await session.scalars(
            select(Street.id).where(Street.tenant_id == commune_id, Street.id.in_(street_ids))
        )
    )
    if len(found) != len(set(street_ids)):
        raise Invalid(
            "streets", gettext("Some of the chosen streets do not exist any more; reload the page.")
        )


async def delete_neighbourhood(session: AsyncSession, commune_id: UUID, neighbourhood_id: UUID) -> None:
    neighbourhood = await _neighbourhood(session, commune_id, neighbourhood_id)
    summary = {"names": dict(neighbourhood.names)}
    await session.execute(
        delete(NeighbourhoodStreet).where(
            NeighbourhoodStreet.tenant_id == commune_id,
            NeighbourhoodStreet.neighbourhood_id == neighbourhood.id,
        )
    )
    await session.delete(neighbourhood)
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="neighbourhood.delete",
        kind="neighbourhoods",
        ids=[neighbourhood_id],
        summary=summary,
    )


async def split_neighbourhood(
    session: AsyncSession, commune_id: UUID, neighbourhood_id: UUID, parts: Sequence[NewNeighbourhood]
) -> Remap:
    """Replace one neighbourhood by several (two, usually), each given an outline and/or
    streets. Every street the old one lists must go to exactly one part, outlines of the
    parts may not overlap. The old neighbourhood is retired, not deleted."""
    languages = await _languages(session, commune_id)
    old = await _neighbourhood(session, commune_id, neighbourhood_id)
    if not old.active or old.replaced_by:
        raise Invalid("neighbourhood", gettext("Only an active neighbourhood can be split."))
    if not 2 <= len(parts) <= MAX_PARTS:
        raise Invalid(
            "parts", gettext("Split into %(low)s to %(high)s parts.") % {"low": 2, "high": MAX_PARTS}
        )
    old_streets = await listed_streets(session, commune_id, old.id)
    checked: list[tuple[dict[str, str], Area | None, list[UUID]]] = []
    owner: dict[UUID, int] = {}
    for number, part in enumerate(parts, start=1):
        prefix = f"part{number}"
        clean = check_names(part.names, languages, f"{prefix}.names")
        for earlier, (other, _, _) in enumerate(checked, start=1):
            if _street_keys(clean) & _street_keys(other):
                raise Invalid(
                    f"{prefix}.names.{languages[0]}",
                    gettext("Parts %(first)s and %(second)s have the same name.")
                    % {"first": earlier, "second": number},
                )
        await _check_name_free(session, commune_id, clean, field=f"{prefix}.names", ignore=[old.id])
        outline = _area(part.geometry, f"{prefix}.geometry") if part.geometry is not None else None
        chosen = await _check_streets(
            session, commune_id, part.street_ids, field=f"{prefix}.streets", ignore=[old.id]
        )
        for street in chosen:
            if street in owner:
                raise Invalid(
                    f"{prefix}.streets",
                    gettext("A street cannot go to two parts: one is in parts %(first)s and %(second)s.")
                    % {"first": owner[street], "second": number},
                )
            owner[street] = number
        _needs_place(outline, chosen, f"{prefix}.streets")
        if outline is not None:
            for earlier, (_, other_outline, _) in enumerate(checked, start=1):
                if other_outline is None:
                    continue
                where = overlap(outline.shape, other_outline.shape)
                if where is not None:
                    raise Invalid(
                        f"{prefix}.geometry",
                        gettext(
                            "The outlines of parts %(first)s and %(second)s overlap near longitude "
                            "%(lon)s, latitude %(lat)s."
                        )
                        % {
                            "first": earlier,
                            "second": number,
                            "lon": f"{where[0]:.5f}",
                            "lat": f"{where[1]:.5f}",
                        },
                    )
        checked.append((clean, outline, chosen))
    forgotten = [street for street in old_streets if street not in owner]
    if forgotten:
        name = await session.scalar(
            select(Street.names).where(Street.tenant_id == commune_id, Street.id == forgotten[0])
        )
        raise Invalid(
            "parts",
            gettext(
                "%(street)s is in the neighbourhood but in none of the parts: give each of its streets "
                "to one part (%(count)s left)."
            )
            % {"street": _label(name or {}), "count": len(forgotten)},
        )

    created: list[Neighbourhood] = []
    for clean, outline, _ in checked:
        created.append(
            Neighbourhood(
                tenant_id=commune_id,
                names=clean,
                geometry=outline.geometry if outline else None,
                active=True,
                replaced_by=[],
            )
        )
    session.add_all(created)
    await session.flush()
    for neighbourhood, (_, _, chosen) in zip(created, checked, strict=True):
        session.add_all(_link(commune_id, neighbourhood.id, chosen))
    old.active = False
    old.replaced_by = [str(neighbourhood.id) for neighbourhood in created]
    await session.flush()
    new_ids = tuple(neighbourhood.id for neighbourhood in created)
    version = await _changed(
        session,
        commune_id,
        action="neighbourhood.split",
        kind="neighbourhoods",
        ids=[old.id, *new_ids],
        summary={
            "names": dict(old.names),
            "into": [clean for clean, _, _ in checked],
            "mapping": {str(old.id): [str(value) for value in new_ids]},
        },
    )
    return Remap({old.id: new_ids}, tuple(created), version)


async def merge_neighbourhoods(
    session: AsyncSession, commune_id: UUID, neighbourhood_ids: Sequence[UUID], *, names: Mapping[str, str]
) -> Remap:
    """Replace several active neighbourhoods by one: the union of their outlines and of
    their streets. The merged neighbourhoods are retired, not deleted."""
    languages = await _languages(session, commune_id)
    wanted = list(dict.fromkeys(neighbourhood_ids))
    if len(wanted) < 2:
        raise Invalid("neighbourhoods", gettext("Choose at least two different neighbourhoods to merge."))
    olds = [await _neighbourhood(session, commune_id, neighbourhood_id) for neighbourhood_id in wanted]
    for old in olds:
        if not old.active or old.replaced_by:
            raise Invalid(
                "neighbourhoods",
                gettext("%(name)s is not active: only active neighbourhoods can be merged.")
                % {"name": _label(old.names)},
            )
    clean = check_names(names, languages)
    await _check_name_free(session, commune_id, clean, ignore=wanted)
    outlines = [old.geometry for old in olds if old.geometry is not None]
    outline = union(outlines) if outlines else None
    streets: list[UUID] = []
    for old in olds:
        streets += await listed_streets(session, commune_id, old.id)
    merged = Neighbourhood(
        tenant_id=commune_id,
        names=clean,
        geometry=outline.geometry if outline else None,
        active=True,
        replaced_by=[],
    )
    session.add(merged)
    await session.flush()
    session.add_all(_link(commune_id, merged.id, dict.fromkeys(streets)))
    for old in olds:
        old.active = False
        old.replaced_by = [str(merged.id)]
    await session.flush()
    version = await _changed(
        session,
        commune_id,
        action="neighbourhood.merge",
        kind="neighbourhoods",
        ids=[*wanted, merged.id],
        summary={
            "names": clean,
            "from": [dict(old.names) for old in olds],
            "mapping": {str(old.id): [str(merged.id)] for old in olds},
        },
    )
    return Remap({old.id: (merged.id,) for old in olds}, (merged,), version)


# --- Zones ---------------------------------------------------------------------------------


def check_zone_key(value: object) -> str:
    if not isinstance(value, str) or not ZONE_KEY.match(value.strip()):
        raise Invalid(
            "key",
            gettext(
                "The key identifies the zone for the modules: 1 to 63 lower-case letters, digits and "
                "inner hyphens, such as “centre”."
            ),
        )
    return value.strip()


async def _zone(session: AsyncSession, commune_id: UUID, zone_id: UUID) -> Zone:
    ensure_tenant(commune_id)
    found = await session.scalar(select(Zone).where(Zone.tenant_id == commune_id, Zone.id == zone_id))
    if found is None:
        raise NotFound(gettext("This zone does not exist (any more)."))
    return ensure_owned(found)


async def zone_by_key(session: AsyncSession, commune_id: UUID, key: str) -> Zone | None:
    ensure_tenant(commune_id)
    found = await session.scalar(select(Zone).where(Zone.tenant_id == commune_id, Zone.key == key))
    return ensure_owned(found) if found is not None else None


async def create_zone(
    session: AsyncSession, commune_id: UUID, *, key: str, names: Mapping[str, str], geometry: GeometryInput
) -> Zone:
    languages = await _languages(session, commune_id)
    clean_key = check_zone_key(key)
    clean = check_names(names, languages)
    outline = _area(geometry, "geometry")
    if await zone_by_key(session, commune_id, clean_key) is not None:
        raise Invalid("key", gettext("A zone with the key %(key)s already exists.") % {"key": clean_key})
    zone = Zone(tenant_id=commune_id, key=clean_key, names=clean, geometry=outline.geometry)
    session.add(zone)
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="zone.create",
        kind="zones",
        ids=[zone.id],
        summary={"key": clean_key, "names": clean},
    )
    return zone


async def update_zone(
    session: AsyncSession,
    commune_id: UUID,
    zone_id: UUID,
    *,
    names: Mapping[str, str] | NotGiven = NOT_GIVEN,
    geometry: GeometryInput | NotGiven = NOT_GIVEN,
) -> bool:
    """Rename a zone or replace its outline (its key never changes: modules use it)."""
    languages = await _languages(session, commune_id)
    zone = await _zone(session, commune_id, zone_id)
    new_names = dict(zone.names) if isinstance(names, NotGiven) else check_names(names, languages)
    new_geometry = zone.geometry if isinstance(geometry, NotGiven) else _area(geometry, "geometry").geometry
    changes = audit.diff({"names": dict(zone.names)}, {"names": new_names})
    if new_geometry != zone.geometry:
        changes["outline"] = ["previous", "new"]
    if not changes:
        return False
    zone.names = new_names
    zone.geometry = new_geometry
    await session.flush()
    await _changed(
        session,
        commune_id,
        action="zone.update",
        kind="zones",
        ids=[zone.id],
        summary={"key": zone.key, "names": new_names, "outline": "outline" in changes},
        changes=changes,
    )
    return True


async def delete_zone(session: AsyncSession, commune_id: UUID, zone_id: UUID) -> None:
    zone = await _zone(session, commune_id, zone_id)
    summary = {"key": zone.key, "names": dict(zone.names)}
    await session.delete(zone)
    await session.flush()
    await _changed(session, commune_id, action="zone.delete", kind="zones", ids=[zone_id], summary=summary)
