"""``perron adoption``: the activity days behind the adoption figures."""

from __future__ import annotations

import click
from sqlalchemy import select

from perron.adoption import RETENTION_DAYS, brussels_today, prune_activity
from perron.cli.common import out, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.tenancy import actions
from perron.tenancy.models import Commune


@click.group()
def adoption() -> None:
    """Adoption figures: the activity days they are counted from."""


@adoption.command("prune")
@click.option("--commune", "slug", metavar="SLUG", help="Only this commune (default: every commune).")
@click.pass_context
@run_async
async def prune(ctx: click.Context, slug: str | None) -> None:
    """Delete activity days older than the retention (about 13 months).

    Each server already does it for a commune on the first activity of every day; run this
    daily (cron or a systemd timer, beside `perron notifications send-digests`) so that a
    commune whose citizens stopped logging in is pruned too. Running it twice deletes
    nothing more.
    """
    settings = settings_from(ctx)
    reason = f"perron adoption prune{f' --commune {slug}' if slug else ''}"
    today = brussels_today()
    async with platform_transaction(settings, reason) as session:
        if slug is not None:
            communes = [await actions.get_commune(session, slug)]
        else:
            communes = list(await session.scalars(select(Commune).order_by(Commune.slug)))
        removed = {
            commune.slug: await prune_activity(session, commune.id, today=today) for commune in communes
        }
    total = sum(removed.values())
    details = ", ".join(f"{name}: {count}" for name, count in removed.items() if count)
    out.print(
        f"Deleted {total} activity day(s) older than {RETENTION_DAYS} days"
        + (f" ({details})." if details else f" in {len(communes)} commune(s).")
    )
