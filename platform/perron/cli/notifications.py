"""``perron notifications``: the daily e-mail summaries, for cron."""

from __future__ import annotations

import click
from sqlalchemy import select

from perron.cli.common import fail, out, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.jobs import enqueue
from perron.notifications.service import DIGEST_JOB
from perron.tenancy import actions
from perron.tenancy.models import Commune, CommuneStatus


@click.group()
def notifications() -> None:
    """Notifications: the daily e-mail summaries."""


@notifications.command("send-digests")
@click.option("--commune", "slug", metavar="SLUG", help="Only this commune (default: every active commune).")
@click.pass_context
@run_async
async def send_digests(ctx: click.Context, slug: str | None) -> None:
    """Queue the daily summaries: each person with e-mail waiting gets one message.

    Run it once a day (cron or a systemd timer). Running it twice sends nothing twice: a
    summary takes only what is still waiting for one.
    """
    settings = settings_from(ctx)
    reason = f"perron notifications send-digests{f' --commune {slug}' if slug else ''}"
    async with platform_transaction(settings, reason) as session:
        if slug is not None:
            commune = await actions.get_commune(session, slug)
            if commune.status is not CommuneStatus.ACTIVE:
                fail(f"{slug} is {commune.status.value}: its summaries wait until it is active again")
            communes = [commune]
        else:
            communes = list(
                await session.scalars(
                    select(Commune).where(Commune.status == CommuneStatus.ACTIVE).order_by(Commune.slug)
                )
            )
        for commune in communes:
            enqueue(session, DIGEST_JOB, tenant_id=commune.id)
    if not communes:
        out.print("No active commune: nothing to send.")
        return
    where = "the workers" if settings.redis_url else "the running server"
    names = ", ".join(commune.slug for commune in communes)
    out.print(f"Queued the daily summaries of {len(communes)} commune(s) ({names}); {where} send them.")
