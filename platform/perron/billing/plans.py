"""Plans: the operator's offer, kept in Perron's database and mirrored to Stripe.

A plan has a code, a name per language, the modules it covers, a price per month or per
year, and a trial period. ``perron billing define-plan`` creates or changes one;
``perron billing sync-plans`` gives each plan a Stripe Product and a Price (``metadata.
perron_plan`` names the plan, ``lookup_key`` is ``perron:<code>``) and stores their ids.
Stripe prices cannot change: a new amount, currency or interval makes a new Price at the
next sync, the old one is archived at Stripe and kept in ``former_price_ids`` so the
subscriptions still on it keep their modules. A retired plan is no longer offered; its
subscribers keep what they pay for until their subscription ends.

The modules of the active plans are the billable ones: changing which modules plans contain
changes every commune's snapshot and queues a new computation of the entitlements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.billing.models import BillingPlan, Interval
from perron.billing.stripe_api import stripe_client
from perron.cache import invalidate
from perron.config import Settings
from perron.db.base import utcnow
from perron.db.engine import Database
from perron.db.scope import platform_scope
from perron.errors import Invalid, NotFound
from perron.logging import get_logger
from perron.tenancy.validation import check_names, check_slug

log = get_logger("perron.billing")

CURRENCY = re.compile(r"^[a-z]{3}$")
MAX_TRIAL_DAYS = 730
"""Stripe's longest trial."""


def parse_amount(text: str) -> int:
    """``"120"`` or ``"120.50"`` (or ``120,50``) in the currency's units -> cents."""
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise Invalid("amount", f"{text!r} is not an amount such as 120 or 120.50") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise Invalid("amount", f"{text!r} must be positive, with at most two decimals")
    return int(value * 100)


def _check_modules(modules: Iterable[str]) -> list[str]:
    from perron.modules.registry import registry

    names = sorted(set(modules))
    if not names:
        raise Invalid("modules", "a plan covers at least one module")
    for name in names:
        if registry.get(name) is None:
            known = ", ".join(sorted(registry.modules)) or "none"
            raise Invalid("modules", f"no module named {name!r} is installed (installed: {known})")
    return names


async def get_plan(session: AsyncSession, code: str) -> BillingPlan:
    plan = await session.scalar(select(BillingPlan).where(BillingPlan.code == code))
    if plan is None:
        raise NotFound(f"no plan has the code {code!r}")
    return plan


async def list_plans(session: AsyncSession, *, include_retired: bool = False) -> list[BillingPlan]:
    query = select(BillingPlan).order_by(BillingPlan.code)
    if not include_retired:
        query = query.where(BillingPlan.active.is_(True))
    return list(await session.scalars(query))


def _plan_state(plan: BillingPlan) -> dict[str, object]:
    return {
        "names": dict(plan.names),
        "modules": list(plan.modules),
        "interval": plan.interval.value,
        "unit_amount": plan.unit_amount,
        "currency": plan.currency,
        "trial_days": plan.trial_days,
        "active": plan.active,
    }


def _billable_changed(session: AsyncSession) -> None:
    """Which modules are billable changed: every commune's snapshot and entitlements."""
    from perron.billing.jobs import queue_refresh

    invalidate(session, None)
    queue_refresh(session, None)


async def define_plan(
    session: AsyncSession,
    *,
    code: str,
    names: Mapping[str, str],
    modules: Iterable[str],
    interval: str,
    unit_amount: int,
    currency: str = "eur",
    trial_days: int = 0,
) -> tuple[BillingPlan, bool]:
    """Create a plan, or change the one with this code (a retired plan is offered again).
    Returns the plan and whether anything changed. Stripe follows at the next sync."""
    check_slug(code, "code")
    clean_names = check_names(names, [next(iter(names), "fr")] if names else ["fr"])
    clean_modules = _check_modules(modules)
    try:
        period = Interval(interval)
    except ValueError:
        raise Invalid("interval", f"{interval!r} is not month or year") from None
    if isinstance(unit_amount, bool) or not isinstance(unit_amount, int) or unit_amount <= 0:
        raise Invalid("amount", "the price must be a positive number of cents")
    money = currency.strip().lower()
    if not CURRENCY.match(money):
        raise Invalid("currency", f"{currency!r} is not a three-letter currency code such as eur")
    whole = isinstance(trial_days, int) and not isinstance(trial_days, bool)
    if not whole or not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise Invalid("trial_days", f"the trial lasts 0 to {MAX_TRIAL_DAYS} days")
    plan = await session.scalar(select(BillingPlan).where(BillingPlan.code == code))
    created = plan is None
    if plan is None:
        plan = BillingPlan(code=code, former_price_ids=[])
        session.add(plan)
        before: dict[str, object] = {}
        modules_before: list[str] = []
        was_active = False
    else:
        before = _plan_state(plan)
        modules_before = list(plan.modules)
        was_active = plan.active
    plan.names, plan.modules, plan.interval = clean_names, clean_modules, period
    plan.unit_amount, plan.currency, plan.trial_days, plan.active = unit_amount, money, trial_days, True
    changes = audit.diff(before, _plan_state(plan))
    if not changes:
        return plan, False
    await session.flush()
    audit.record_platform(
        session,
        action="billing.plan_create" if created else "billing.plan_update",
        object_type="billing_plan",
        object_id=code,
        changes=changes,
    )
    if modules_before != clean_modules or not was_active:
        _billable_changed(session)
    return plan, True


async def retire_plan(session: AsyncSession, code: str) -> bool:
    """Stop offering a plan (its subscribers keep it until their subscription ends)."""
    plan = await get_plan(session, code)
    if not plan.active:
        return False
    plan.active = False
    audit.record_platform(
        session,
        action="billing.plan_retire",
        object_type="billing_plan",
        object_id=code,
        changes={"active": [True, False]},
    )
    _billable_changed(session)
    return True


@dataclass(frozen=True)
class PlanSync:
    code: str
    product: str
    price: str | None
    """The price new subscriptions use; none for a retired plan."""
    created_price: bool


async def sync_plans(settings: Settings, database: Database) -> list[PlanSync]:
    """Give every plan its Stripe Product and current Price, and archive the prices a plan no
    longer uses. Safe to run again: idempotency keys make a retried call return what the
    first one created, and a plan already in step costs one product update."""
    with platform_scope("billing: read the plans to synchronise with Stripe"):
        async with database.session() as session:
            plans = await list_plans(session, include_retired=True)
    return [await _sync_one(settings, database, plan) for plan in plans]


async def _sync_one(settings: Settings, database: Database, plan: BillingPlan) -> PlanSync:
    metadata = {"perron_plan": plan.code}
    details = {"name": plan.name("fr"), "active": plan.active, "metadata": metadata}
    new_price: str | None = None
    archived: str | None = None
    async with stripe_client(settings, f"synchronise plan {plan.code}") as client:
        if plan.stripe_product_id is None:
            product = await client.v1.products.create_async(
                params=details,  # type: ignore[arg-type]
                options={"idempotency_key": f"perron-product-{plan.id}"},
            )
        else:
            product = await client.v1.products.update_async(plan.stripe_product_id, params=details)  # type: ignore[arg-type]
        if plan.active and not plan.synced:
            generation = len(plan.former_price_ids)
            price = await client.v1.prices.create_async(
                params={
                    "product": product.id,
                    "unit_amount": plan.unit_amount,
                    "currency": plan.currency,
                    "recurring": {"interval": plan.interval.value},
                    "lookup_key": f"perron:{plan.code}",
                    "transfer_lookup_key": True,
                    "metadata": metadata,
                },
                options={"idempotency_key": f"perron-price-{plan.id}-{plan.signature}-{generation}"},
            )
            new_price, archived = price.id, plan.stripe_price_id
        elif not plan.active:
            archived = plan.stripe_price_id
        if archived:
            await client.v1.prices.update_async(archived, params={"active": False})
    with platform_scope(f"billing: store the Stripe ids of plan {plan.code}"):
        async with database.transaction() as session:
            stored = await get_plan(session, plan.code)
            before = {"product": stored.stripe_product_id, "price": stored.stripe_price_id}
            stored.stripe_product_id = product.id
            if archived:
                stored.former_price_ids = [*stored.former_price_ids, archived]
                stored.stripe_price_id, stored.price_signature = None, None
            if new_price:
                stored.stripe_price_id, stored.price_signature = new_price, plan.signature
            stored.synced_at = utcnow()
            after = {"product": stored.stripe_product_id, "price": stored.stripe_price_id}
            changes = audit.diff(before, after)
            if changes:
                audit.record_platform(
                    session,
                    action="billing.plan_sync",
                    object_type="billing_plan",
                    object_id=plan.code,
                    changes=changes,
                )
            current = stored.stripe_price_id
    log.info("billing.plan_synced", plan=plan.code, product=product.id, price=current, archived=archived)
    return PlanSync(plan.code, product.id, current, created_price=new_price is not None)
