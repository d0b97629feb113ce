"""From Stripe's events to the state of a subscription or an invoice, whatever order the
events arrived in.

Stripe delivers webhooks at least once and in no guaranteed order. Perron therefore never
applies an event to the stored state as it arrives; it keeps every event and **folds** all
the events of one subscription (or invoice) in the order Stripe created them. The result
depends only on the set of events received, so a replay changes nothing and a shuffled
delivery ends in the same state as an orderly one.

The order is the event's ``created`` time (seconds), then, for events of the same second,
the order in which Stripe emits them in a payment cycle (:data:`EVENT_ORDER`: checkout,
subscription created, invoice created and finalized, payment failed, subscription updated,
invoice paid, ..., subscription deleted), then the event id (arbitrary but the same on every
server).

Folding a subscription:

* a ``customer.subscription.*`` event sets the status and the fields it carries; once the
  subscription has ended (``canceled``, ``incomplete_expired``) an older-looking event can
  never revive it;
* ``invoice.payment_failed`` starts the grace period at its time if none is running
  (``failing_since``); a subscription turning ``past_due``/``unpaid`` without a failure seen
  starts it at that event's time;
* ``invoice.paid`` ends the grace period and brings a ``past_due``/``unpaid``/``incomplete``
  subscription back to ``active`` (what Stripe itself does when the latest invoice is paid),
  so an ``invoice.paid`` arriving before the matching ``customer.subscription.updated``
  already switches the modules back on; an ``invoice.payment_failed`` created before the
  ``invoice.paid`` of the same invoice is folded before it, so it starts nothing;
* a good status (``active``, ``trialing``) ends any grace period.

Folding an invoice: its status only moves forward (draft → open → uncollectible → paid or
void); the fields come from the event that set the furthest status, the latest one among
equals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

GOOD = frozenset({"active", "trialing"})
DELINQUENT = frozenset({"past_due", "unpaid"})
ENDED = frozenset({"canceled", "incomplete_expired"})

EVENT_ORDER: Mapping[str, int] = {
    "checkout.session.completed": 0,
    "customer.subscription.created": 1,
    "invoice.created": 2,
    "invoice.finalized": 3,
    "invoice.payment_failed": 4,
    "customer.subscription.updated": 5,
    "customer.subscription.trial_will_end": 6,
    "invoice.paid": 7,
    "invoice.marked_uncollectible": 8,
    "invoice.voided": 9,
    "customer.subscription.deleted": 10,
}
"""How events of the same second are ordered: the order of a payment cycle."""

HANDLED = frozenset(EVENT_ORDER)
"""Event types Perron acts on; others are stored and ignored."""

INVOICE_RANK: Mapping[str, int] = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}


class StoredEvent(Protocol):
    stripe_event_id: str
    type: str
    created: dt.datetime
    payload: dict[str, Any]


def order_key(event: StoredEvent) -> tuple[dt.datetime, int, str]:
    return (_aware(event.created), EVENT_ORDER.get(event.type, 50), event.stripe_event_id)


def data_object(payload: Mapping[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    return obj if isinstance(obj, dict) else {}


def ref(value: Any) -> str | None:
    """A Stripe reference, expanded (``{"id": ...}``) or not."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def subscription_of(event_type: str, obj: Mapping[str, Any]) -> str | None:
    """The subscription an event is about (invoices name it at the top in older API
    versions, under ``parent.subscription_details`` since 2025)."""
    if event_type.startswith("customer.subscription."):
        return ref(obj.get("id"))
    if event_type.startswith("invoice."):
        found = ref(obj.get("subscription"))
        if found:
            return found
        parent = obj.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
        return ref(details.get("subscription")) if isinstance(details, Mapping) else None
    if event_type.startswith("checkout.session."):
        return ref(obj.get("subscription"))
    return None


def moment(value: Any) -> dt.datetime | None:
    """A Stripe timestamp (seconds since the epoch) as an aware datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def body_key_of(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("perron_body"), str):
        return str(metadata["perron_body"])
    return None


@dataclass
class SubscriptionFacts:
    """A subscription as its events describe it."""

    stripe_id: str
    status: str | None = None
    customer_ref: str | None = None
    body_key: str | None = None
    price_ids: list[str] = field(default_factory=list)
    plan_codes: list[str] = field(default_factory=list)
    """Plans named in the prices' metadata (``perron_plan``), in case a price id is unknown."""
    current_period_end: dt.datetime | None = None
    cancel_at_period_end: bool = False
    cancel_at: dt.datetime | None = None
    canceled_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    trial_end: dt.datetime | None = None
    failing_since: dt.datetime | None = None
    state_at: dt.datetime | None = None

    def _apply_object(self, obj: Mapping[str, Any], at: dt.datetime, deleted: bool) -> None:
        status = "canceled" if deleted else str(obj.get("status") or self.status or "incomplete")
        if self.status in ENDED and status not in ENDED:
            return  # an ended subscription never comes back
        self.status = status
        self.state_at = at
        self.customer_ref = ref(obj.get("customer")) or self.customer_ref
        self.body_key = body_key_of(obj) or self.body_key
        items = obj.get("items")
        rows = items.get("data") if isinstance(items, Mapping) else None
        if isinstance(rows, list):
            prices = [row.get("price") for row in rows if isinstance(row, Mapping)]
            self.price_ids = [pid for pid in (ref(price) for price in prices) if pid]
            self.plan_codes = sorted(
                {
                    str(price["metadata"]["perron_plan"])
                    for price in prices
                    if isinstance(price, Mapping)
                    and isinstance(price.get("metadata"), Mapping)
                    and isinstance(price["metadata"].get("perron_plan"), str)
                }
            )
            ends = [moment(row.get("current_period_end")) for row in rows if isinstance(row, Mapping)]
            item_end = max((end for end in ends if end), default=None)
        else:
            item_end = None
        self.current_period_end = moment(obj.get("current_period_end")) or item_end or self.current_period_end
        self.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
        self.cancel_at = moment(obj.get("cancel_at"))
        self.canceled_at = moment(obj.get("canceled_at"))
        self.ended_at = moment(obj.get("ended_at"))
        self.trial_end = moment(obj.get("trial_end"))
        if status in GOOD:
            self.failing_since = None
        elif status in DELINQUENT and self.failing_since is None:
            self.failing_since = at

    def apply(self, event: StoredEvent) -> None:
        obj = data_object(event.payload)
        at = _aware(event.created)
        kind = event.type
        if kind.startswith("customer.subscription."):
            self._apply_object(obj, at, deleted=kind == "customer.subscription.deleted")
        elif kind == "checkout.session.completed":
            self.body_key = self.body_key or ref(obj.get("client_reference_id")) or body_key_of(obj)
            self.customer_ref = self.customer_ref or ref(obj.get("customer"))
        elif kind.startswith("invoice."):
            self.customer_ref = self.customer_ref or ref(obj.get("customer"))
            if self.status in ENDED:
                return
            if kind == "invoice.payment_failed" and self.failing_since is None:
                self.failing_since = at
            elif kind == "invoice.paid":
                self.failing_since = None
                if self.status in DELINQUENT or self.status == "incomplete":
                    self.status = "active"
                    self.state_at = at


def fold_subscription(stripe_id: str, events: Iterable[StoredEvent]) -> SubscriptionFacts:
    facts = SubscriptionFacts(stripe_id)
    for event in sorted(events, key=order_key):
        facts.apply(event)
    return facts


@dataclass
class InvoiceFacts:
    stripe_id: str
    status: str
    object: dict[str, Any]
    state_at: dt.datetime


def fold_invoice(stripe_id: str, events: Iterable[StoredEvent]) -> InvoiceFacts | None:
    """The invoice as its furthest-along event describes it (None without invoice events)."""
    facts: InvoiceFacts | None = None
    for event in sorted(events, key=order_key):
        if not event.type.startswith("invoice."):
            continue
        obj = data_object(event.payload)
        status = str(obj.get("status") or "draft")
        if facts is None or INVOICE_RANK.get(status, 0) >= INVOICE_RANK.get(facts.status, 0):
            facts = InvoiceFacts(stripe_id, status, obj, _aware(event.created))
    return facts


@dataclass(frozen=True)
class Access:
    """Until when a subscription lets citizens use its modules (``until`` None: no end in
    sight; a moment in the past: already closed)."""

    until: dt.datetime | None
    reason: str

    def better_than(self, other: Access) -> bool:
        if other.until is None:
            return False
        return self.until is None or self.until > other.until


def access_of(
    status: str,
    *,
    state_at: dt.datetime | None,
    failing_since: dt.datetime | None,
    cancel_at_period_end: bool,
    current_period_end: dt.datetime | None,
    cancel_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    canceled_at: dt.datetime | None,
    grace: dt.timedelta,
) -> Access:
    """What a subscription in this state allows (see docs/architecture.md, Billing)."""
    since = state_at or dt.datetime.fromtimestamp(0, dt.UTC)
    if status in GOOD:
        ends = cancel_at or (current_period_end if cancel_at_period_end else None)
        if ends is not None:
            return Access(ends, "ending")
        return Access(None, status)
    if status in DELINQUENT:
        return Access((failing_since or since) + grace, "payment_failed")
    if status in ENDED:
        return Access(ended_at or canceled_at or since, "canceled")
    if status == "paused":
        return Access(since, "paused")
    return Access(since, "incomplete")
