"""Billing's jobs (platform jobs, one at a time: :func:`perron.billing.processing.serialize`).

* :func:`process_event`: queued by the webhook in the transaction that stored the event.
  An event already processed is not processed again; processing recomputes its
  subscription or invoice from every event kept for it, so a retry or a late event cannot
  move anything backwards.
* :func:`refresh_entitlements`: recompute communes' entitlements when something other than
  a Stripe event changes them: a commune joining or leaving an intercommunale, a plan's
  modules changing.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.billing import entitlements
from perron.billing.models import BillingCustomer, BillingEvent, ModuleEntitlement
from perron.billing.processing import apply_event, serialize
from perron.billing.service import grace_of, process_settings
from perron.db.base import utcnow
from perron.jobs import JobContext, enqueue, job
from perron.logging import get_logger
from perron.tenancy.models import Commune

log = get_logger("perron.billing")

PROCESS_EVENT_JOB = "perron.billing.process_event"
REFRESH_JOB = "perron.billing.refresh_entitlements"


@job(PROCESS_EVENT_JOB, per_tenant=False, max_retries=10, min_backoff_ms=5_000)
async def process_event(ctx: JobContext, event_id: str) -> dict[str, str] | None:
    settings = process_settings()
    if settings is None:
        log.warning("billing.event_left", stripe_event=event_id, reason="billing is switched off")
        return None
    await serialize(ctx.session)
    event = await ctx.session.get(BillingEvent, event_id)
    if event is None:
        log.warning("billing.event_missing", stripe_event=event_id)
        return None
    if event.processed_at is not None:
        log.info("billing.event_already_processed", stripe_event=event_id)
        return {"outcome": event.outcome or ""}
    outcome = await apply_event(ctx.session, event, grace=grace_of(settings))
    event.processed_at = utcnow()
    event.outcome = outcome
    log.info("billing.event_processed", stripe_event=event_id, type=event.type, outcome=outcome)
    return {"outcome": outcome}


@job(REFRESH_JOB, per_tenant=False, max_retries=10, min_backoff_ms=5_000)
async def refresh_entitlements(
    ctx: JobContext, commune_ids: list[str] | None = None
) -> dict[str, int] | None:
    """Recompute the entitlements of these communes (all the communes billing concerns when
    None)."""
    settings = process_settings()
    if settings is None:
        return None
    await serialize(ctx.session)
    ids = [UUID(value) for value in commune_ids] if commune_ids is not None else await concerned(ctx.session)
    changed = await entitlements.refresh_entitlements(ctx.session, ids, grace=grace_of(settings))
    return {"communes": len(ids), "changed": len(changed)}


async def concerned(session: AsyncSession) -> list[UUID]:
    """Communes with a paying body (themselves or their intercommunale) or entitlements."""
    bodies = select(BillingCustomer.intercommunale_id).where(BillingCustomer.intercommunale_id.is_not(None))
    payers = select(BillingCustomer.commune_id).where(BillingCustomer.commune_id.is_not(None))
    rows = await session.scalars(
        select(Commune.id).where(or_(Commune.intercommunale_id.in_(bodies), Commune.id.in_(payers)))
    )
    found = set(rows) | set(await session.scalars(select(ModuleEntitlement.tenant_id).distinct()))
    return sorted(found)


def queue_refresh(session: AsyncSession, commune_ids: list[UUID] | None) -> None:
    """Queue a recomputation of entitlements (after the commit), where this process bills."""
    if process_settings() is None:
        return
    enqueue(
        session,
        REFRESH_JOB,
        commune_ids=None if commune_ids is None else [str(value) for value in commune_ids],
    )


def membership_changed(session: AsyncSession, commune_id: UUID) -> None:
    """A commune joined or left an intercommunale: what it may use follows its new payer."""
    queue_refresh(session, [commune_id])
