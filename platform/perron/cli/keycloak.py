"""``perron keycloak``: bring Keycloak's realms and clients in step with the deployment."""

from __future__ import annotations

import click
from rich.table import Table

from perron.cli.common import out, run_async, settings_from
from perron.config import Settings
from perron.db.scope import platform_scope, tenant_scope
from perron.identity import keycloak as kc
from perron.runtime import command_runtime
from perron.tenancy import actions
from perron.tenancy.hosts import display_host


@click.group()
def keycloak() -> None:
    """Keycloak: realms, one client per commune, the itsme sandbox."""


async def commune_logins(settings: Settings) -> list[kc.CommuneLogin]:
    """Every commune of the database, as Keycloak needs to know it."""
    logins: list[kc.CommuneLogin] = []
    async with command_runtime(settings) as runtime:
        with platform_scope("keycloak: list the communes"):
            async with runtime.database.session() as session:
                ids = [commune.id for commune, _ in await actions.communes_with_primary_host(session)]
        for commune_id in ids:
            with tenant_scope(commune_id):
                async with runtime.database.session() as session:
                    login = await kc.commune_login(session, commune_id)
            if login is not None:
                logins.append(login)
    return logins


async def provision_all(settings: Settings, port: int | None) -> tuple[list[str], list[kc.CommuneLogin]]:
    """The realms, then the clients of every commune and of the console (``perron keycloak
    provision`` and ``perron dev``); returns the realms and the communes."""
    realms = await kc.provision_realms(settings)
    logins = await commune_logins(settings)
    for login in logins:
        await kc.sync_commune_clients(settings, login, port=port)
    await kc.ensure_console_client(settings, settings.console_host, port)
    return realms, logins


@keycloak.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port in the sites' redirect URIs (development); default PERRON_PUBLIC_PORT.",
)
@click.option("--prune", is_flag=True, help="Also disable commune-* clients whose commune no longer exists.")
@click.pass_context
@run_async
async def provision(ctx: click.Context, port: int | None, prune: bool) -> None:
    """Create or update the realms, then the clients of every commune and of the console."""
    settings = settings_from(ctx)
    port = port if port is not None else settings.public_port
    realms, logins = await provision_all(settings, port)
    out.print(f"Realms up to date: {', '.join(realms)}.")
    if settings.uses_itsme_sandbox:
        people = kc.sandbox_citizens()
        out.print(f"itsme sandbox: {len(people)} fictitious citizens (infra/keycloak/sandbox-citizens.json).")
    for login in logins:
        state = "enabled" if login.active else "disabled (archived)"
        hosts = ", ".join(display_host(host) for host in login.hosts)
        out.print(f"Client {login.client_id} {state}: {hosts}")
    out.print(f"Client {kc.CONSOLE_CLIENT}: {display_host(settings.console_host)}")
    if prune:
        for client in await kc.disable_orphan_clients(settings, {login.slug for login in logins}):
            out.print(f"Disabled {client}: its commune no longer exists.")
    out.print(f"{len(logins)} commune(s) in step with Keycloak at {settings.keycloak_url}.")


@keycloak.command()
@click.pass_context
@run_async
async def status(ctx: click.Context) -> None:
    """Keycloak's version and what each realm holds."""
    settings = settings_from(ctx)
    version, states = await kc.status(settings)
    out.print(f"Keycloak {version} at {settings.keycloak_url}")
    table = Table("realm", "exists", "commune clients", "identity providers", "users")
    for state in states:
        table.add_row(
            state.realm,
            "yes" if state.exists else "[red]no[/] (run `perron keycloak provision`)",
            f"{state.enabled_commune_clients} enabled / {state.commune_clients}"
            if state.exists and state.realm != kc.SANDBOX
            else "",
            ", ".join(state.identity_providers),
            "" if state.users is None else str(state.users),
        )
    out.print(table)
