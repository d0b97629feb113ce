"""``perron intercommunales``: the bodies that onboard communes."""

from __future__ import annotations

import click
from rich.table import Table
from sqlalchemy import func, select

from perron.cli.common import out, parse_pairs, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.runtime import command_runtime
from perron.tenancy import actions
from perron.tenancy.models import Commune, Intercommunale


@click.group()
def intercommunales() -> None:
    """Intercommunales and their member communes."""


@intercommunales.command("list")
@click.pass_context
@run_async
async def list_(ctx: click.Context) -> None:
    """List intercommunales and how many communes each has."""
    async with command_runtime(settings_from(ctx)) as runtime, runtime.database.session() as session:
        rows = (
            await session.execute(
                select(Intercommunale, func.count(Commune.id))
                .outerjoin(Commune, Commune.intercommunale_id == Intercommunale.id)
                .group_by(Intercommunale.id)
                .order_by(Intercommunale.slug)
            )
        ).all()
    if not rows:
        out.print("No intercommunale yet.")
        return
    table = Table("slug", "name", "communes", "contact")
    for body, members in rows:
        table.add_row(body.slug, body.name("fr"), str(members), body.contact_email or "")
    out.print(table)


@intercommunales.command()
@click.argument("slug")
@click.option("--name", "names", multiple=True, required=True, metavar="LANG=NAME", help="Name per language.")
@click.option("--email", "contact_email", help="Address communes write to.")
@click.pass_context
@run_async
async def create(ctx: click.Context, slug: str, names: tuple[str, ...], contact_email: str | None) -> None:
    """Create an intercommunale."""
    async with platform_transaction(settings_from(ctx), f"perron intercommunales create {slug}") as session:
        await actions.create_intercommunale(
            session, slug=slug, names=parse_pairs(names, "--name"), contact_email=contact_email
        )
    out.print(f"Created intercommunale {slug}.")
