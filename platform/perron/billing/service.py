"""Billing's API: what the console, the commands and the jobs call.

* :func:`ensure_customer` (jobs, e.g. a commune's onboarding): the body's Stripe customer,
  created once. Stripe unreachable raises :class:`StripeUnavailable` (temporary: the job is
  retried); the idempotency key ``perron-customer-<body>`` makes a retry return the
  customer the first attempt created, so a body never gets two.
* :class:`Billing` (``runtime.billing``), for people: :meth:`Billing.start_checkout`,
  :meth:`Billing.portal_url`, :meth:`Billing.invoices_of`, :meth:`Billing.billing_overview`,
  :meth:`Billing.plans`. Stripe is never called inside a database transaction. Stripe
  unreachable raises :class:`StripeUnavailable`, whose message (translated) says that
  nothing was changed and to try again in a few minutes.

Every function raises :class:`BillingOff` when billing is switched off. None of them checks
who is asking: the caller (the console) decides who may see or pay for which body.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit, clock
from perron.billing.bodies import (
    Body,
    PayingBody,
    body_language,
    communes_covered,
    customer_of,
    load_body,
)
from perron.billing.entitlements import (
    NOT_SUBSCRIBED,
    billable_modules,
    plans_index,
    plans_of,
    subscription_access,
)
from perron.billing.ledger import ENDED
from perron.billing.models import (
    BillingCustomer,
    BillingInvoice,
    BillingPlan,
    BillingSubscription,
    Interval,
    ModuleEntitlement,
)
from perron.billing.plans import get_plan, list_plans
from perron.billing.stripe_api import BillingOff, StripeRefused, stripe_client
from perron.config import Settings
from perron.db.engine import Database
from perron.db.repository import ensure_tenant
from perron.db.scope import CrossTenantAccess, current_scope, platform_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.i18n import gettext
from perron.logging import get_logger
from perron.modules.registry import registry
from perron.tenancy.models import Commune, Intercommunale, ModuleActivation
from perron.tenancy.settings import resolve
from perron.tenancy.site import PaidAccess

log = get_logger("perron.billing")

STRIPE_LOCALES = frozenset({"fr", "nl", "de", "en"})

# The settings of this process's runtimes that bill (a stack: tests start several) -------

_processes: list[Settings] = []


def configure(settings: Settings) -> None:
    """Called by the runtime at start: jobs and hooks of this process bill with these."""
    if settings.billing_enabled:
        _processes.append(settings)


def unconfigure(settings: Settings) -> None:
    if settings in _processes:
        _processes.remove(settings)


def process_settings() -> Settings | None:
    """The settings billing jobs use; None where this process does not bill."""
    return _processes[-1] if _processes else None


def grace_of(settings: Settings) -> dt.timedelta:
    return dt.timedelta(days=settings.billing_grace_days)


# Customers ----------------------------------------------------------------------------------


def _check_scope(body: PayingBody) -> None:
    """Lock 3: a commune's scope may only act for that commune; an intercommunale needs the
    platform scope."""
    if body.kind == "commune":
        ensure_tenant(body.id)
        return
    scope = current_scope()
    if scope is None or not scope.is_platform:
        raise CrossTenantAccess("an intercommunale's billing is handled in the platform scope")


async def _customer_details(session: AsyncSession, body: PayingBody) -> dict[str, Any]:
    found = await load_body(session, body)
    email: str | None
    if isinstance(found, Intercommunale):
        email = found.contact_email
    else:
        email = (await resolve(session, found.id, "core")).contact_email
    language = body_language(found)
    details: dict[str, Any] = {
        "name": found.name(language),
        "metadata": {"perron_body": body.key, "perron_slug": found.slug},
        "preferred_locales": [language],
    }
    if email:
        details["email"] = str(email)
    return details


async def _create_at_stripe(settings: Settings, body: PayingBody, details: dict[str, Any]) -> str:
    async with stripe_client(settings, f"create the customer of {body.key}") as client:
        customer = await client.v1.customers.create_async(
            params=details,  # type: ignore[arg-type]
            options={"idempotency_key": f"perron-customer-{body.key}"},
        )
    return str(customer.id)


async def _store_customer(session: AsyncSession, body: PayingBody, stripe_id: str) -> BillingCustomer:
    """Record the body's customer (a concurrent caller may have recorded it first)."""
    row = BillingCustomer(
        stripe_customer_id=stripe_id,
        commune_id=body.id if body.kind == "commune" else None,
        intercommunale_id=body.id if body.kind == "intercommunale" else None,
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = await customer_of(session, body)
        if existing is None:
            raise
        if existing.stripe_customer_id != stripe_id:
            log.warning(
                "billing.customer_duplicate", body=body.key, kept=existing.stripe_customer_id, extra=stripe_id
            )
        return existing
    audit.record_platform(
        session,
        action="billing.customer_create",
        object_type=body.kind,
        object_id=str(body.id),
        intercommunale_id=body.id if body.kind == "intercommunale" else None,
        changes={"stripe_customer": [None, stripe_id]},
    )
    return row


async def ensure_customer(session: AsyncSession, body: Body, *, settings: Settings | None = None) -> str:
    """The Stripe customer id of a paying body, created at Stripe and recorded the first time.

    For jobs (a commune's onboarding): it works in the job's session, in the platform scope
    or the scope of the commune itself. Calling it again returns the same id. Stripe
    unreachable raises :class:`StripeUnavailable`, a temporary error (the job is retried);
    the idempotency key ``perron-customer-<body>`` makes Stripe answer a retry with the
    customer the failed attempt may have created (Stripe keeps keys 24 hours), so the body
    never gets two. On SQLite the job's write transaction is held during the Stripe call:
    call it before the job's other writes.
    """
    settings = settings or process_settings()
    if settings is None or not settings.billing_enabled:
        raise BillingOff()
    ref = PayingBody.of(body)
    _check_scope(ref)
    existing = await customer_of(session, ref)
    if existing is not None:
        return existing.stripe_customer_id
    stripe_id = await _create_at_stripe(settings, ref, await _customer_details(session, ref))
    row = await _store_customer(session, ref, stripe_id)
    log.info("billing.customer_ready", body=ref.key, customer=row.stripe_customer_id)
    return row.stripe_customer_id


# What the console shows ---------------------------------------------------------------------

ModuleState = Literal["free", "on", "grace", "ending", "off"]


@dataclass(frozen=True)
class PlanView:
    code: str
    name: str
    modules: tuple[str, ...]
    interval: Interval
    unit_amount: int
    """Cents per interval."""
    currency: str
    trial_days: int
    active: bool
    in_stripe: bool
    """Synchronised: new subscriptions can start."""


@dataclass(frozen=True)
class SubscriptionView:
    stripe_id: str
    status: str
    """Stripe's status: trialing, active, past_due, unpaid, canceled, incomplete, ..."""
    plans: tuple[PlanView, ...]
    modules: tuple[str, ...]
    current_period_end: dt.datetime | None
    cancel_at_period_end: bool
    cancel_at: dt.datetime | None
    trial_end: dt.datetime | None
    payment_failed_at: dt.datetime | None
    citizens_until: dt.datetime | None
    """When its modules close to citizens (the grace deadline, the end of a cancelled
    period); none while it runs without end in sight."""


@dataclass(frozen=True)
class Charge:
    """What a body pays: one line per plan of its running subscriptions."""

    plan: str
    unit_amount: int
    currency: str
    interval: Interval


@dataclass(frozen=True)
class ModuleAccess:
    module: str
    title: str
    enabled: bool
    """The commune switched it on."""
    state: ModuleState
    """free (no plan contains it), on, grace (payment failed, still open), ending (open until
    a cancellation date), off (closed to citizens, data and staff pages kept)."""
    reason: str
    until: dt.datetime | None


@dataclass(frozen=True)
class CommuneAccess:
    commune_id: UUID
    slug: str
    name: str
    modules: tuple[ModuleAccess, ...]


@dataclass(frozen=True)
class BillingOverview:
    body: PayingBody
    name: str
    stripe_customer: str | None
    subscriptions: tuple[SubscriptionView, ...]
    charges: tuple[Charge, ...]
    communes: tuple[CommuneAccess, ...]


@dataclass(frozen=True)
class InvoiceView:
    stripe_id: str
    number: str | None
    status: str
    """draft, open, paid, uncollectible or void."""
    total: int
    amount_due: int
    amount_paid: int
    currency: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    issued_at: dt.datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None


def _plan_view(plan: BillingPlan, language: str) -> PlanView:
    return PlanView(
        plan.code,
        plan.name(language),
        tuple(plan.modules),
        plan.interval,
        plan.unit_amount,
        plan.currency,
        plan.trial_days,
        plan.active,
        plan.synced,
    )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def module_state(access: PaidAccess | None, now: float) -> ModuleState:
    if access is None:
        return "free"
    if not access.open_at(now):
        return "off"
    if access.until is None:
        return "on"
    return "grace" if access.reason == "payment_failed" else "ending"


def _check_url(value: str, field: str) -> str:
    text = value.strip()
    if not text.startswith(("https://", "http://")) or any(c.isspace() for c in text) or len(text) > 2000:
        raise Invalid(field, gettext("This must be a full web address, starting with https://."))
    return text


class Billing:
    """The billing of one deployment (``runtime.billing``)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    @property
    def enabled(self) -> bool:
        return self.settings.billing_enabled

    def _require(self) -> None:
        if not self.enabled:
            raise BillingOff()

    @property
    def grace(self) -> dt.timedelta:
        return grace_of(self.settings)

    async def plans(self, *, language: str = "fr", include_retired: bool = False) -> list[PlanView]:
        """The plans bodies can subscribe to (and the retired ones, if asked)."""
        self._require()
        with platform_scope("billing: list the plans"):
            async with self.database.session() as session:
                plans = await list_plans(session, include_retired=include_retired)
        return [_plan_view(plan, language) for plan in plans]

    async def ensure_customer(self, body: Body) -> str:
        """:func:`ensure_customer` for a person or a command: reads, then calls Stripe outside
        any transaction, then records the customer in a short one."""
        self._require()
        ref = PayingBody.of(body)
        with platform_scope(f"billing: the Stripe customer of {ref.key}"):
            async with self.database.session() as session:
                existing = await customer_of(session, ref)
                if existing is not None:
                    return existing.stripe_customer_id
                details = await _customer_details(session, ref)
            stripe_id = await _create_at_stripe(self.settings, ref, details)
            async with self.database.transaction() as session:
                row = await _store_customer(session, ref, stripe_id)
                kept = row.stripe_customer_id
        log.info("billing.customer_ready", body=ref.key, customer=kept)
        return kept

    async def start_checkout(
        self,
        body: Body,
        plan: str,
        *,
        success_url: str,
        cancel_url: str,
        language: str = "fr",
    ) -> str:
        """Start a subscription of ``body`` to ``plan`` (its code) with Stripe Checkout;
        returns the Checkout page's address to send the person to.

        The trial is the plan's; ``client_reference_id`` and the subscription's metadata
        (``perron_body``) let the webhooks link the subscription to the body. Raises
        :class:`Invalid` (a wrong address, a plan not offered or not yet in Stripe),
        :class:`Conflict` (the body already has that plan running: the customer portal
        changes it), :class:`StripeUnavailable` (nothing was changed, try again).
        """
        self._require()
        ref = PayingBody.of(body)
        success = _check_url(success_url, "success_url")
        cancel = _check_url(cancel_url, "cancel_url")
        with platform_scope(f"billing: start a checkout for {ref.key}"):
            async with self.database.session() as session:
                found = await load_body(session, ref)
                try:
                    chosen = await get_plan(session, plan)
                except NotFound:
                    chosen = None
                if chosen is None or not chosen.active:
                    raise Invalid("plan", gettext("This plan is not offered."))
                if not chosen.synced or chosen.stripe_price_id is None:
                    raise Invalid(
                        "plan", gettext("This plan is not yet available for subscription; try again later.")
                    )
                if await self._running(session, ref, chosen):
                    raise Conflict(
                        gettext("This plan is already running; change or cancel it in the billing portal.")
                    )
                price, code, trial = chosen.stripe_price_id, chosen.code, chosen.trial_days
            customer = await self.ensure_customer(ref)
            metadata = {"perron_body": ref.key, "perron_plan": code}
            subscription_data: dict[str, Any] = {"metadata": metadata}
            if trial > 0:
                subscription_data["trial_period_days"] = trial
            params: dict[str, Any] = {
                "mode": "subscription",
                "customer": customer,
                "line_items": [{"price": price, "quantity": 1}],
                "success_url": success,
                "cancel_url": cancel,
                "client_reference_id": ref.key,
                "metadata": metadata,
                "subscription_data": subscription_data,
                "locale": language if language in STRIPE_LOCALES else "auto",
            }
            async with stripe_client(self.settings, f"start a checkout for {ref.key}") as client:
                checkout = await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
            if not checkout.url:
                log.error("billing.checkout_without_url", body=ref.key, session=checkout.id)
                raise StripeRefused()
            async with self.database.transaction() as session:
                audit.record_platform(
                    session,
                    action="billing.checkout_start",
                    object_type=ref.kind,
                    object_id=found.slug,
                    intercommunale_id=ref.id if ref.kind == "intercommunale" else None,
                    changes={"plan": [None, code], "checkout_session": [None, checkout.id]},
                )
        log.info("billing.checkout_started", body=ref.key, plan=code, session=checkout.id)
        return str(checkout.url)

    async def _running(self, session: AsyncSession, body: PayingBody, plan: BillingPlan) -> bool:
        customer = await customer_of(session, body)
        if customer is None:
            return False
        subscriptions = await session.scalars(
            select(BillingSubscription).where(BillingSubscription.customer_id == customer.id)
        )
        prices = {plan.stripe_price_id, *plan.former_price_ids}
        return any(
            subscription.status not in ENDED
            and (plan.code in subscription.plan_codes or prices & set(subscription.price_ids))
            for subscription in subscriptions
        )

    async def portal_url(self, body: Body, *, return_url: str, language: str = "fr") -> str:
        """The address of Stripe's customer portal for ``body`` (payment method, invoices,
        cancellation), coming back to ``return_url``. Raises :class:`NotFound` when the body
        never subscribed, :class:`StripeUnavailable` when Stripe cannot be reached."""
        self._require()
        ref = PayingBody.of(body)
        back = _check_url(return_url, "return_url")
        with platform_scope(f"billing: open the customer portal of {ref.key}"):
            async with self.database.session() as session:
                customer = await customer_of(session, ref)
        if customer is None:
            raise NotFound(gettext("There is nothing to manage yet: subscribe to a plan first."))
        async with stripe_client(self.settings, f"open the customer portal of {ref.key}") as client:
            portal = await client.v1.billing_portal.sessions.create_async(
                params={
                    "customer": customer.stripe_customer_id,
                    "return_url": back,
                    "locale": language if language in STRIPE_LOCALES else "auto",
                }
            )
        log.info("billing.portal_opened", body=ref.key)
        return str(portal.url)

    async def invoices_of(self, body: Body, *, limit: int = 100) -> list[InvoiceView]:
        """The body's invoices, newest first, from Perron's copy (works while Stripe is down)."""
        self._require()
        ref = PayingBody.of(body)
        with platform_scope(f"billing: the invoices of {ref.key}"):
            async with self.database.session() as session:
                customer = await customer_of(session, ref)
                if customer is None:
                    return []
                rows = await session.scalars(
                    select(BillingInvoice)
                    .where(BillingInvoice.customer_id == customer.id)
                    .order_by(BillingInvoice.issued_at.desc(), BillingInvoice.stripe_invoice_id)
                    .limit(max(1, min(limit, 1000)))
                )
                return [
                    InvoiceView(
                        row.stripe_invoice_id,
                        row.number,
                        row.status,
                        row.total,
                        row.amount_due,
                        row.amount_paid,
                        row.currency,
                        _aware(row.period_start),
                        _aware(row.period_end),
                        _aware(row.issued_at),
                        row.hosted_invoice_url,
                        row.invoice_pdf,
                    )
                    for row in rows
                ]

    async def billing_overview(self, body: Body, *, language: str = "fr") -> BillingOverview:
        """What a body pays, the state of each of its subscriptions, and what each commune it
        pays for may use, module by module (entitlements as citizens see them now)."""
        self._require()
        ref = PayingBody.of(body)
        now = clock.now()
        with platform_scope(f"billing: the overview of {ref.key}"):
            async with self.database.session() as session:
                found = await load_body(session, ref)
                customer = await customer_of(session, ref)
                plans = list(await session.scalars(select(BillingPlan)))
                by_code, by_price = plans_index(plans)
                subscriptions: Sequence[BillingSubscription] = []
                if customer is not None:
                    subscriptions = list(
                        await session.scalars(
                            select(BillingSubscription)
                            .where(BillingSubscription.customer_id == customer.id)
                            .order_by(BillingSubscription.stripe_subscription_id)
                        )
                    )
                views, charges = [], []
                for subscription in subscriptions:
                    covered = plans_of(subscription, by_code, by_price)
                    access = subscription_access(subscription, self.grace)
                    views.append(
                        SubscriptionView(
                            subscription.stripe_subscription_id,
                            subscription.status,
                            tuple(_plan_view(plan, language) for plan in covered),
                            tuple(sorted({module for plan in covered for module in plan.modules})),
                            _aware(subscription.current_period_end),
                            subscription.cancel_at_period_end,
                            _aware(subscription.cancel_at),
                            _aware(subscription.trial_end),
                            _aware(subscription.failing_since),
                            access.until,
                        )
                    )
                    if subscription.status not in ENDED and subscription.status != "incomplete":
                        charges += [
                            Charge(plan.code, plan.unit_amount, plan.currency, plan.interval)
                            for plan in covered
                        ]
                communes = [
                    await self._commune_access(session, commune, language, now)
                    for commune in await communes_covered(session, ref)
                ]
                return BillingOverview(
                    ref,
                    found.name(language),
                    customer.stripe_customer_id if customer else None,
                    tuple(views),
                    tuple(charges),
                    tuple(communes),
                )

    @staticmethod
    async def _commune_access(
        session: AsyncSession, commune: Commune, language: str, now: float
    ) -> CommuneAccess:
        enabled = set(
            await session.scalars(
                select(ModuleActivation.module).where(
                    ModuleActivation.tenant_id == commune.id, ModuleActivation.enabled.is_(True)
                )
            )
        )
        rows = {
            row.module: row
            for row in await session.scalars(
                select(ModuleEntitlement).where(ModuleEntitlement.tenant_id == commune.id)
            )
        }
        billable = await billable_modules(session)
        modules = []
        for name in sorted(enabled | billable | set(rows)):
            access: PaidAccess | None = None
            row = rows.get(name)
            if name in billable:
                until = _aware(row.citizens_until) if row else None
                access = NOT_SUBSCRIBED
                if row is not None:
                    access = PaidAccess(until.timestamp() if until else None, row.reason)
            manifest = registry.get(name)
            modules.append(
                ModuleAccess(
                    name,
                    manifest.title(language) if manifest else name,
                    name in enabled,
                    module_state(access, now),
                    access.reason if access else "free",
                    _aware(row.citizens_until) if row and access else None,
                )
            )
        return CommuneAccess(commune.id, commune.slug, commune.name(language), tuple(modules))
