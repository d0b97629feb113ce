"""Processing a stored Stripe event: recompute what it is about from all the events kept for
it (:mod:`perron.billing.ledger`), store the result, and bring the entitlements of the
communes it pays for in line."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.billing.bodies import PayingBody, body_of_customer, communes_covered, customer_of, load_body
from perron.billing.entitlements import refresh_entitlements
from perron.billing.ledger import (
    HANDLED,
    SubscriptionFacts,
    fold_invoice,
    fold_subscription,
    moment,
    ref,
    subscription_of,
)
from perron.billing.models import BillingCustomer, BillingEvent, BillingInvoice, BillingSubscription
from perron.errors import NotFound
from perron.logging import get_logger

log = get_logger("perron.billing")

LOCK_KEY = 0x7065_7272_6F6E
"""PostgreSQL advisory lock serialising billing's jobs (``perron`` in ASCII)."""


async def serialize(session: AsyncSession) -> None:
    """One billing job at a time changes subscriptions and entitlements (held until the job's
    transaction ends). Two jobs folding events of the same subscription, or computing the
    same commune from two subscriptions, could otherwise each miss the other's change.
    SQLite's write transactions are serialised already."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


async def apply_event(session: AsyncSession, event: BillingEvent, *, grace: dt.timedelta) -> str:
    """Apply one stored event; returns its outcome (applied, unchanged, unlinked, ignored)."""
    if event.type not in HANDLED:
        return "ignored"
    affected: set[UUID] = set()
    changed = False
    linked = True
    if event.subscription_ref:
        sub_changed, communes, linked = await sync_subscription(session, event.subscription_ref)
        changed |= sub_changed
        affected |= communes
    if event.type.startswith("invoice.") and event.object_id:
        changed |= await sync_invoice(session, event.object_id)
    if affected:
        await refresh_entitlements(session, affected, grace=grace)
    if not linked:
        return "unlinked"
    return "applied" if changed else "unchanged"


async def _link(session: AsyncSession, facts: SubscriptionFacts) -> BillingCustomer | None:
    """The paying body of a subscription: its Stripe customer if Perron knows it, else the
    body named in Perron's metadata (``perron_body``, ``client_reference_id``)."""
    if facts.customer_ref:
        known = await session.scalar(
            select(BillingCustomer).where(BillingCustomer.stripe_customer_id == facts.customer_ref)
        )
        if known is not None:
            return known
    body = PayingBody.parse(facts.body_key)
    if body is None:
        return None
    try:
        await load_body(session, body)
    except NotFound:
        log.warning("billing.unknown_body", subscription=facts.stripe_id, body=facts.body_key)
        return None
    customer = await customer_of(session, body)
    if customer is None and facts.customer_ref:
        customer = BillingCustomer(
            stripe_customer_id=facts.customer_ref,
            commune_id=body.id if body.kind == "commune" else None,
            intercommunale_id=body.id if body.kind == "intercommunale" else None,
        )
        session.add(customer)
        await session.flush()
        audit.record_platform(
            session,
            action="billing.customer_link",
            object_type=body.kind,
            object_id=str(body.id),
            intercommunale_id=body.id if body.kind == "intercommunale" else None,
            changes={"stripe_customer": [None, facts.customer_ref]},
        )
    elif customer is not None and facts.customer_ref and customer.stripe_customer_id != facts.customer_ref:
        log.warning(
            "billing.customer_mismatch",
            subscription=facts.stripe_id,
            body=body.key,
            known=customer.stripe_customer_id,
            event=facts.customer_ref,
        )
    return customer


SUBSCRIPTION_FIELDS = (
    "status",
    "plan_codes",
    "price_ids",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_end",
    "failing_since",
    "state_at",
)


def _subscription_state(row: BillingSubscription | None) -> dict[str, Any]:
    if row is None:
        return {}
    state: dict[str, Any] = {name: getattr(row, name) for name in SUBSCRIPTION_FIELDS}
    state["customer"] = row.customer_id
    for name, value in state.items():
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            state[name] = value.replace(tzinfo=dt.UTC)
    return state


async def _communes_of(session: AsyncSession, customer_id: UUID | None) -> set[UUID]:
    if customer_id is None:
        return set()
    customer = await session.get(BillingCustomer, customer_id)
    if customer is None:
        return set()
    return {commune.id for commune in await communes_covered(session, body_of_customer(customer))}


async def sync_subscription(session: AsyncSession, stripe_id: str) -> tuple[bool, set[UUID], bool]:
    """Fold the subscription's events into its row. Returns (changed, communes affected,
    linked to a paying body)."""
    events = list(
        await session.scalars(select(BillingEvent).where(BillingEvent.subscription_ref == stripe_id))
    )
    facts = fold_subscription(stripe_id, events)
    if facts.status is None:
        return False, set(), True  # nothing but a checkout or invoices so far: wait for Stripe
    customer = await _link(session, facts)
    row = await session.scalar(
        select(BillingSubscription).where(BillingSubscription.stripe_subscription_id == stripe_id)
    )
    before = _subscription_state(row)
    previous_customer = row.customer_id if row is not None else None
    if row is None:
        row = BillingSubscription(stripe_subscription_id=stripe_id)
        session.add(row)
    for name in SUBSCRIPTION_FIELDS:
        setattr(row, name, getattr(facts, name))
    row.customer_id = customer.id if customer is not None else None
    after = _subscription_state(row)
    changes = audit.diff(before, after)
    if not changes:
        return False, set(), customer is not None
    await session.flush()
    audit.record_platform(
        session,
        action="billing.subscription",
        object_type="subscription",
        object_id=stripe_id,
        intercommunale_id=customer.intercommunale_id if customer is not None else None,
        changes=changes,
    )
    affected = await _communes_of(session, previous_customer) | await _communes_of(session, row.customer_id)
    if customer is None:
        log.warning("billing.subscription_unlinked", subscription=stripe_id, customer=facts.customer_ref)
    return True, affected, customer is not None


INVOICE_FIELDS = (
    "status",
    "number",
    "currency",
    "total",
    "amount_due",
    "amount_paid",
    "period_start",
    "period_end",
    "hosted_invoice_url",
    "invoice_pdf",
    "issued_at",
    "subscription_ref",
    "customer_id",
)


def _cents(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:limit] if limit else value


async def sync_invoice(session: AsyncSession, stripe_id: str) -> bool:
    """Fold the invoice's events into Perron's copy; returns whether it changed."""
    events = await session.scalars(
        select(BillingEvent).where(BillingEvent.object_id == stripe_id, BillingEvent.type.like("invoice.%"))
    )
    facts = fold_invoice(stripe_id, events)
    if facts is None:
        return False
    obj = facts.object
    customer_ref = ref(obj.get("customer"))
    customer = None
    if customer_ref:
        customer = await session.scalar(
            select(BillingCustomer).where(BillingCustomer.stripe_customer_id == customer_ref)
        )
    row = await session.scalar(select(BillingInvoice).where(BillingInvoice.stripe_invoice_id == stripe_id))
    before = {name: getattr(row, name) for name in INVOICE_FIELDS} if row is not None else {}
    if row is None:
        row = BillingInvoice(stripe_invoice_id=stripe_id)
        session.add(row)
    row.status = facts.status
    row.number = _text(obj.get("number"), 64)
    row.currency = (_text(obj.get("currency"), 3) or "eur").lower()
    row.total = _cents(obj.get("total"))
    row.amount_due = _cents(obj.get("amount_due"))
    row.amount_paid = _cents(obj.get("amount_paid"))
    row.period_start = moment(obj.get("period_start"))
    row.period_end = moment(obj.get("period_end"))
    row.hosted_invoice_url = _text(obj.get("hosted_invoice_url"), 2000)
    row.invoice_pdf = _text(obj.get("invoice_pdf"), 2000)
    row.issued_at = moment(obj.get("created"))
    row.subscription_ref = subscription_of("invoice.", obj)
    row.customer_id = customer.id if customer is not None else None
    row.state_at = facts.state_at
    after = {name: getattr(row, name) for name in INVOICE_FIELDS}
    for state in (before, after):
        for name, value in state.items():
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                state[name] = value.replace(tzinfo=dt.UTC)
    changes = audit.diff(before, after)
    if not changes:
        return False
    audit.record_platform(
        session,
        action="billing.invoice",
        object_type="invoice",
        object_id=stripe_id,
        intercommunale_id=customer.intercommunale_id if customer is not None else None,
        changes=changes,
    )
    return True
