"""What billing keeps: plans, Stripe customers, subscriptions, invoices, the webhook events
received, and (per commune) what citizens may use.

Every table is a platform table (a subscription of an intercommunale pays for several
communes) except :class:`ModuleEntitlement`, which is each commune's own view of its
billable modules: the site snapshot reads it in the commune's scope.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantOwned, Timestamps, new_id, utcnow


class Interval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class BillingPlan(Timestamps, Base):
    """What a paying body can subscribe to: a price per month or per year for a set of
    modules. Platform data, defined by the operator and mirrored to a Stripe Product and
    Price (``perron billing sync-plans``)."""

    __tablename__ = "billing_plans"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(63), unique=True, comment="the plan's name in commands")
    names: Mapped[dict[str, str]]
    modules: Mapped[list[str]] = mapped_column(comment="the modules a subscription to it covers")
    interval: Mapped[Interval] = mapped_column(
        Enum(
            Interval,
            native_enum=False,
            create_constraint=True,
            length=8,
            name="billing_interval",
            values_callable=lambda members: [member.value for member in members],
        )
    )
    unit_amount: Mapped[int] = mapped_column(Integer, comment="price per interval, in cents")
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True, comment="offered to new subscribers")
    stripe_product_id: Mapped[str | None] = mapped_column(String(255))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), index=True)
    price_signature: Mapped[str | None] = mapped_column(
        String(64), comment="amount:currency:interval of the synchronised price"
    )
    former_price_ids: Mapped[list[str]] = mapped_column(
        default=list, comment="prices replaced by a later sync: old subscriptions still use them"
    )
    synced_at: Mapped[dt.datetime | None]

    def name(self, language: str) -> str:
        return self.names.get(language) or next(iter(self.names.values()), self.code)

    @property
    def signature(self) -> str:
        """What makes a Stripe Price: a change needs a new one (prices are immutable)."""
        return f"{self.unit_amount}:{self.currency}:{self.interval.value}"

    @property
    def synced(self) -> bool:
        return self.stripe_price_id is not None and self.price_signature == self.signature


class BillingCustomer(Base):
    """The Stripe customer of one paying body: a commune, or an intercommunale paying for
    its member communes."""

    __tablename__ = "billing_customers"
    __table_args__ = (
        CheckConstraint("(commune_id IS NULL) <> (intercommunale_id IS NULL)", name="one_body"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    commune_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("communes.id", ondelete="RESTRICT"), unique=True
    )
    intercommunale_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BillingSubscription(Base):
    """A Stripe subscription as the webhooks described it (see
    :mod:`perron.billing.ledger` for how its events are folded into this state)."""

    __tablename__ = "billing_subscriptions"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="RESTRICT"),
        index=True,
        comment="the paying body; none while no event links it to one",
    )
    status: Mapped[str] = mapped_column(String(32), comment="Stripe's status")
    plan_codes: Mapped[list[str]] = mapped_column(default=list)
    price_ids: Mapped[list[str]] = mapped_column(default=list)
    current_period_end: Mapped[dt.datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_at: Mapped[dt.datetime | None]
    canceled_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    trial_end: Mapped[dt.datetime | None]
    failing_since: Mapped[dt.datetime | None] = mapped_column(
        comment="when a payment first failed, for the grace period; none when in good standing"
    )
    state_at: Mapped[dt.datetime | None] = mapped_column(
        comment="Stripe time of the latest event that set the status"
    )
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BillingInvoice(Base):
    """A Stripe invoice, kept so the console lists invoices even while Stripe is down."""

    __tablename__ = "billing_invoices"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="RESTRICT"), index=True
    )
    subscription_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(Integer, default=0, comment="cents")
    amount_due: Mapped[int] = mapped_column(Integer, default=0)
    amount_paid: Mapped[int] = mapped_column(Integer, default=0)
    period_start: Mapped[dt.datetime | None]
    period_end: Mapped[dt.datetime | None]
    hosted_invoice_url: Mapped[str | None] = mapped_column(Text)
    invoice_pdf: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[dt.datetime | None] = mapped_column(comment="Stripe's creation time of the invoice")
    state_at: Mapped[dt.datetime] = mapped_column(comment="Stripe time of the event that set the status")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BillingEvent(Base):
    """A verified Stripe webhook event, stored once (its id is Stripe's)."""

    __tablename__ = "billing_events"

    stripe_event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[dt.datetime] = mapped_column(comment="when Stripe created the event")
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    subscription_ref: Mapped[str | None] = mapped_column(
        String(255), index=True, comment="the subscription the event is about, if any"
    )
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32), comment="applied, unchanged, unlinked or ignored")


class ModuleEntitlement(TenantOwned, Base):
    """Until when the commune's citizens may use a billable module, as its payers'
    subscriptions allow (the best of them). Written by the billing jobs; a billable module
    without a row is not paid for."""

    __tablename__ = "module_entitlements"

    module: Mapped[str] = mapped_column(String(63), primary_key=True)
    reason: Mapped[str] = mapped_column(
        String(32), comment="active, trialing, ending, payment_failed, canceled, incomplete, paused"
    )
    subscription_ref: Mapped[str | None] = mapped_column(String(255))
    citizens_until: Mapped[dt.datetime | None] = mapped_column(comment="none: no end in sight")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
