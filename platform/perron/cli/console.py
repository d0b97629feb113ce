"""``perron console``: who may use the platform console (the first operator is made here)."""

from __future__ import annotations

import click
from rich.table import Table
from sqlalchemy import select

from perron.cli.common import out, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.console import invitations
from perron.errors import NotFound
from perron.identity import roles
from perron.identity.models import PlatformRole
from perron.tenancy import actions
from perron.tenancy.models import Intercommunale


@click.group()
def console() -> None:
    """Operators and intercommunale administrators of the console."""


@console.command("list")
@click.pass_context
@run_async
async def list_(ctx: click.Context) -> None:
    """Everyone holding a console role."""
    async with platform_transaction(settings_from(ctx), "perron console list") as session:
        rows = (
            await session.execute(
                select(PlatformRole, Intercommunale.slug)
                .outerjoin(Intercommunale, Intercommunale.id == PlatformRole.intercommunale_id)
                .order_by(PlatformRole.role, PlatformRole.email)
            )
        ).all()
    if not rows:
        out.print("Nobody holds a console role yet: `perron console add-operator EMAIL --name NAME`.")
        return
    table = Table("role", "e-mail", "name", "intercommunale", "logged in")
    for role, slug in rows:
        table.add_row(
            role.role, role.email, role.display_name, slug or "", "yes" if role.subject else "not yet"
        )
    out.print(table)


@console.command("add-operator")
@click.argument("email")
@click.option("--name", required=True, help="First and last name.")
@click.option("--language", default="fr", show_default=True, type=click.Choice(["fr", "nl", "de", "en"]))
@click.pass_context
@run_async
async def add_operator(ctx: click.Context, email: str, name: str, language: str) -> None:
    """Make someone an operator (their staff login is created if they have none)."""
    async with platform_transaction(settings_from(ctx), f"perron console add-operator {email}") as session:
        granted = await invitations.give_operator(session, email, name, language)
    out.print(f"{granted.email} is an operator; they log in at the console with their staff login.")


@console.command("add-admin")
@click.argument("intercommunale")
@click.argument("email")
@click.option("--name", required=True, help="First and last name.")
@click.option("--language", default="fr", show_default=True, type=click.Choice(["fr", "nl", "de", "en"]))
@click.pass_context
@run_async
async def add_admin(ctx: click.Context, intercommunale: str, email: str, name: str, language: str) -> None:
    """Make someone an administrator of an intercommunale (its member communes only)."""
    async with platform_transaction(
        settings_from(ctx), f"perron console add-admin {intercommunale}"
    ) as session:
        body = await actions.get_intercommunale(session, intercommunale)
        granted = await invitations.give_intercommunale_admin(session, body.id, email, name, language)
    out.print(f"{granted.email} administers {intercommunale}.")


@console.command("remove")
@click.argument("email")
@click.option("--intercommunale", help="Only their administration of this intercommunale.")
@click.pass_context
@run_async
async def remove(ctx: click.Context, email: str, intercommunale: str | None) -> None:
    """Take someone's console roles away (the deployment keeps at least one operator)."""
    async with platform_transaction(settings_from(ctx), f"perron console remove {email}") as session:
        held = await roles.platform_roles(session, email=email)
        if intercommunale:
            body = await actions.get_intercommunale(session, intercommunale)
            held = [role for role in held if role.intercommunale_id == body.id]
        if not held:
            raise NotFound(f"{email} holds no such console role")
        for role in held:
            await roles.revoke_platform_role(session, role.id)
    out.print(f"Removed {len(held)} role(s) of {email}.")
