"""``perron modules``: what is installed, where it is switched on, and its settings."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from sqlalchemy import select

from perron.audit import acting_as, command_line_actor
from perron.cli.common import fail, out, run_async, settings_from
from perron.db.scope import platform_scope, tenant_scope
from perron.modules import activation
from perron.modules.registry import registry
from perron.runtime import command_runtime
from perron.tenancy.models import Commune, ModuleActivation


@click.group()
def modules() -> None:
    """Installed modules and where they are switched on."""


@modules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
@run_async
async def list_(ctx: click.Context, as_json: bool) -> None:
    """Installed modules, their versions, the communes where they are on, and refused ones."""
    settings = settings_from(ctx)
    async with command_runtime(settings) as runtime, runtime.database.session() as session:
        with platform_scope("perron modules list"):
            rows = (
                await session.execute(
                    select(ModuleActivation.module, Commune.slug)
                    .join(Commune, Commune.id == ModuleActivation.tenant_id)
                    .where(ModuleActivation.enabled.is_(True))
                    .order_by(Commune.slug)
                )
            ).all()
    where: dict[str, list[str]] = {}
    for module, slug in rows:
        where.setdefault(module, []).append(slug)
    installed: list[dict[str, Any]] = [
        {
            "name": manifest.name,
            "version": manifest.version,
            "platform": manifest.platform,
            "distribution": registry.distributions.get(manifest.name, ""),
            "title": manifest.title("fr"),
            "enabled_in": where.get(manifest.name, []),
        }
        for manifest in registry.ordered()
    ]
    refused: list[dict[str, Any]] = [
        {"name": b.name, "source": b.source, "reason": b.reason} for b in registry.broken.values()
    ]
    if as_json:
        out.print_json(json.dumps({"installed": installed, "refused": refused}))
        return
    table = Table(title="Installed modules")
    for column in ("Module", "Version", "Needs Perron", "Package", "Switched on in"):
        table.add_column(column)
    for item in installed:
        table.add_row(
            item["name"],
            item["version"],
            item["platform"],
            item["distribution"],
            ", ".join(item["enabled_in"]) or "(no commune)",
        )
    out.print(table if installed else "No module is installed.")
    for item in refused:
        out.print(f"[bold red]Refused[/] {item['name']} ({item['source']}): {item['reason']}", markup=True)


async def _commune(session: Any, slug: str) -> Commune:
    commune = await session.scalar(select(Commune).where(Commune.slug == slug))
    if commune is None:
        fail(f"no commune has the slug {slug!r}")
    assert commune is not None
    return commune  # type: ignore[no-any-return]


async def _in_commune(ctx: click.Context, slug: str, reason: str, work: Any) -> Any:
    settings = settings_from(ctx)
    async with command_runtime(settings) as runtime:
        with acting_as(command_line_actor()):
            with platform_scope(reason):
                async with runtime.database.session() as session:
                    commune = await _commune(session, slug)
            with tenant_scope(commune.id):
                async with runtime.database.transaction() as session:
                    return await work(session, commune)


@modules.command()
@click.argument("module")
@click.option("--commune", "slug", required=True, help="Slug of the commune.")
@click.option("--demo", is_flag=True, help="Also add the module's demo content.")
@click.pass_context
@run_async
async def enable(ctx: click.Context, module: str, slug: str, demo: bool) -> None:
    """Switch a module on for one commune."""
    activation.installed(module)

    async def work(session: Any, commune: Commune) -> bool:
        changed = await activation.enable(session, commune.id, module)
        if demo:
            await activation.seed(session, commune.id, module)
        return changed

    changed = await _in_commune(ctx, slug, f"perron modules enable {module} --commune {slug}", work)
    out.print(f"{module} is {'now' if changed else 'already'} on for {slug}.")


@modules.command()
@click.argument("module")
@click.option("--commune", "slug", required=True, help="Slug of the commune.")
@click.pass_context
@run_async
async def disable(ctx: click.Context, module: str, slug: str) -> None:
    """Switch a module off for one commune (its data is kept)."""

    async def work(session: Any, commune: Commune) -> bool:
        return await activation.disable(session, commune.id, module)

    changed = await _in_commune(ctx, slug, f"perron modules disable {module} --commune {slug}", work)
    out.print(f"{module} is {'now' if changed else 'already'} off for {slug}.")


@modules.command("settings")
@click.argument("module")
@click.option("--commune", "slug", required=True, help="Slug of the commune.")
@click.option(
    "--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Change a value (JSON or text)."
)
@click.option("--unset", "removals", multiple=True, metavar="KEY", help="Go back to the inherited value.")
@click.pass_context
@run_async
async def settings_(
    ctx: click.Context, module: str, slug: str, assignments: tuple[str, ...], removals: tuple[str, ...]
) -> None:
    """Show a module's effective settings for a commune, or change the commune's own values."""
    activation.installed(module)
    updates: dict[str, Any] = {}
    for assignment in assignments:
        key, separator, raw = assignment.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{assignment!r}: write it as key=value", param_hint="--set")
        try:
            updates[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            updates[key.strip()] = raw

    async def work(session: Any, commune: Commune) -> dict[str, Any]:
        if updates or removals:
            _, _, own, _ = await activation.settings_layers(session, commune.id, module)
            values = {k: v for k, v in {**own, **updates}.items() if k not in removals}
            await activation.update_settings(session, commune.id, module, values)
        effective = await activation.settings_of(session, commune.id, module)
        return dict(effective.model_dump(mode="json"))

    effective = await _in_commune(ctx, slug, f"perron modules settings {module} --commune {slug}", work)
    out.print_json(json.dumps(effective))


@modules.command()
@click.argument("module")
@click.option("--commune", "slug", required=True, help="Slug of the commune.")
@click.pass_context
@run_async
async def seed(ctx: click.Context, module: str, slug: str) -> None:
    """Add a module's demo content to a commune."""
    activation.installed(module)

    async def work(session: Any, commune: Commune) -> bool:
        return await activation.seed(session, commune.id, module)

    added = await _in_commune(ctx, slug, f"perron modules seed {module} --commune {slug}", work)
    out.print(f"Demo content of {module} {'added to' if added else 'is not offered for'} {slug}.")


from perron.cli.scaffold import new  # noqa: E402  (`perron modules new`, in its own file)

modules.add_command(new)
