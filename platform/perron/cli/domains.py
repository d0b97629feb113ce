"""``perron domains``: the host names a commune's site answers on."""

from __future__ import annotations

import click

from perron.cli.common import out, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.runtime import command_runtime
from perron.tenancy import actions
from perron.tenancy.hosts import display_host


@click.group()
def domains() -> None:
    """Domains of a commune: one primary, aliases redirect to it."""


@domains.command("list")
@click.argument("slug")
@click.pass_context
@run_async
async def list_(ctx: click.Context, slug: str) -> None:
    """List a commune's domains."""
    async with command_runtime(settings_from(ctx)) as runtime, runtime.database.session() as session:
        from perron.db.scope import platform_scope

        with platform_scope(f"perron domains list {slug}"):
            commune = await actions.get_commune(session, slug)
            hosts = await actions.commune_domains(session, commune.id)
    for domain in hosts:
        out.print(f"{display_host(domain.host)}  {'primary' if domain.is_primary else 'alias → primary'}")


@domains.command()
@click.argument("slug")
@click.argument("host")
@click.option("--primary", is_flag=True, help="Make it the primary domain (the others then redirect to it).")
@click.pass_context
@run_async
async def add(ctx: click.Context, slug: str, host: str, primary: bool) -> None:
    """Add a domain to a commune."""
    settings = settings_from(ctx)
    async with platform_transaction(settings, f"perron domains add {slug} {host}") as session:
        commune = await actions.get_commune(session, slug)
        domain = await actions.add_domain(
            session, commune, host, primary=primary, console_host=settings.console_host
        )
    if domain is None:
        out.print(f"{host} already belongs to {slug}{' and is now primary' if primary else ''}.")
    else:
        role = "primary domain" if domain.is_primary else "alias (redirects to the primary domain)"
        out.print(f"Added {display_host(domain.host)} to {slug} as {role}.")


@domains.command()
@click.argument("slug")
@click.argument("host")
@click.pass_context
@run_async
async def primary(ctx: click.Context, slug: str, host: str) -> None:
    """Make one of a commune's domains its primary domain."""
    async with platform_transaction(settings_from(ctx), f"perron domains primary {slug} {host}") as session:
        commune = await actions.get_commune(session, slug)
        changed = await actions.set_primary_domain(session, commune, host)
    out.print(f"{host} is now the primary domain of {slug}." if changed else f"{host} was already primary.")


@domains.command()
@click.argument("slug")
@click.argument("host")
@click.pass_context
@run_async
async def remove(ctx: click.Context, slug: str, host: str) -> None:
    """Remove an alias domain from a commune."""
    async with platform_transaction(settings_from(ctx), f"perron domains remove {slug} {host}") as session:
        commune = await actions.get_commune(session, slug)
        await actions.remove_domain(session, commune, host)
    out.print(f"Removed {host} from {slug}: it no longer answers.")
