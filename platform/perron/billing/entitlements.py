"""What each commune's citizens may use, following the subscriptions that pay for it.

* A module that no active plan contains is free: billing never touches it.
* A billable module is open to citizens while a subscription of the commune, or of its
  intercommunale, allows it (the best of them wins): ``active``/``trialing`` without end;
  ``past_due``/``unpaid`` until the grace period ends (``PERRON_BILLING_GRACE_DAYS`` after
  the payment first failed); a cancellation at period end until that end; ``canceled``,
  ``incomplete`` and ``paused`` not at all. No subscription at all: closed.
* Closed means closed to citizens only: the module stays switched on, its data is kept, its
  staff pages work (with a notice), its jobs and signal receivers run.

The jobs write one :class:`~perron.billing.models.ModuleEntitlement` row per commune and
covered module, with the moment access ends (``citizens_until``). The commune's snapshot
(:class:`~perron.tenancy.site.TenantSite`) carries those moments and every citizen-facing
surface compares them with :func:`perron.clock.now`, so a grace period ends on time without
anyone acting and without a timer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.billing.ledger import Access, access_of
from perron.billing.models import BillingCustomer, BillingPlan, BillingSubscription, ModuleEntitlement
from perron.cache import invalidate
from perron.i18n import format_date, gettext
from perron.tenancy.models import Commune
from perron.tenancy.site import PaidAccess

NOT_SUBSCRIBED = PaidAccess(0.0, "not_subscribed")


async def billable_modules(session: AsyncSession) -> frozenset[str]:
    """Modules some active plan contains (the others are free)."""
    rows = await session.scalars(select(BillingPlan.modules).where(BillingPlan.active.is_(True)))
    return frozenset(module for modules in rows for module in modules)


async def paid_access(
    session: AsyncSession, tenant_id: UUID, enabled: frozenset[str]
) -> dict[str, PaidAccess]:
    """For a commune's snapshot: its switched-on billable modules and until when citizens may
    use each (read in the commune's scope)."""
    billable = (await billable_modules(session)) & enabled
    if not billable:
        return {}
    rows = await session.scalars(
        select(ModuleEntitlement).where(
            ModuleEntitlement.tenant_id == tenant_id, ModuleEntitlement.module.in_(sorted(billable))
        )
    )
    found = {row.module: row for row in rows}
    access: dict[str, PaidAccess] = {}
    for module in billable:
        row = found.get(module)
        if row is None:
            access[module] = NOT_SUBSCRIBED
        else:
            until = _aware(row.citizens_until).timestamp() if row.citizens_until else None
            access[module] = PaidAccess(until, row.reason)
    return access


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Coverage:
    access: Access
    subscription: str


def plans_index(plans: Iterable[BillingPlan]) -> tuple[dict[str, BillingPlan], dict[str, BillingPlan]]:
    """Plans by code and by every Stripe price they ever had."""
    by_code: dict[str, BillingPlan] = {}
    by_price: dict[str, BillingPlan] = {}
    for plan in plans:
        by_code[plan.code] = plan
        for price in [plan.stripe_price_id, *plan.former_price_ids]:
            if price:
                by_price[price] = plan
    return by_code, by_price


def plans_of(
    subscription: BillingSubscription,
    by_code: Mapping[str, BillingPlan],
    by_price: Mapping[str, BillingPlan],
) -> list[BillingPlan]:
    """The plans a subscription's items are prices of (by price id, else the price's
    ``perron_plan`` metadata)."""
    found = {by_price[price].code: by_price[price] for price in subscription.price_ids if price in by_price}
    for code in subscription.plan_codes:
        if code in by_code:
            found.setdefault(code, by_code[code])
    return [found[code] for code in sorted(found)]


def subscription_access(subscription: BillingSubscription, grace: dt.timedelta) -> Access:
    return access_of(
        subscription.status,
        state_at=_maybe(subscription.state_at),
        failing_since=_maybe(subscription.failing_since),
        cancel_at_period_end=subscription.cancel_at_period_end,
        current_period_end=_maybe(subscription.current_period_end),
        cancel_at=_maybe(subscription.cancel_at),
        ended_at=_maybe(subscription.ended_at),
        canceled_at=_maybe(subscription.canceled_at),
        grace=grace,
    )


def _maybe(value: dt.datetime | None) -> dt.datetime | None:
    return _aware(value) if value is not None else None


async def coverage_of(session: AsyncSession, commune: Commune, grace: dt.timedelta) -> dict[str, Coverage]:
    """What the subscriptions of the commune and of its intercommunale allow, per module."""
    bodies = [BillingCustomer.commune_id == commune.id]
    if commune.intercommunale_id is not None:
        bodies.append(BillingCustomer.intercommunale_id == commune.intercommunale_id)
    subscriptions = list(
        await session.scalars(
            select(BillingSubscription)
            .join(BillingCustomer, BillingCustomer.id == BillingSubscription.customer_id)
            .where(or_(*bodies))
            .order_by(BillingSubscription.stripe_subscription_id)
        )
    )
    if not subscriptions:
        return {}
    by_code, by_price = plans_index(await session.scalars(select(BillingPlan)))
    best: dict[str, Coverage] = {}
    for subscription in subscriptions:
        access = subscription_access(subscription, grace)
        for plan in plans_of(subscription, by_code, by_price):
            for module in plan.modules:
                current = best.get(module)
                if current is None or access.better_than(current.access):
                    best[module] = Coverage(access, subscription.stripe_subscription_id)
    return best


def _state(row: ModuleEntitlement | None) -> dict[str, object]:
    if row is None:
        return {"reason": None, "citizens_until": None, "subscription": None}
    until = _aware(row.citizens_until) if row.citizens_until else None
    return {"reason": row.reason, "citizens_until": until, "subscription": row.subscription_ref}


async def refresh_entitlements(
    session: AsyncSession, commune_ids: Iterable[UUID], *, grace: dt.timedelta
) -> set[UUID]:
    """Bring the communes' entitlement rows in line with their payers' subscriptions (platform
    scope). Each module whose access changes is audited in the commune's own log, and the
    commune's caches are invalidated. Returns the communes that changed."""
    changed: set[UUID] = set()
    for commune_id in sorted(set(commune_ids)):
        commune = await session.get(Commune, commune_id)
        if commune is None:
            continue
        desired = await coverage_of(session, commune, grace)
        existing = {
            row.module: row
            for row in await session.scalars(
                select(ModuleEntitlement).where(ModuleEntitlement.tenant_id == commune_id)
            )
        }
        for module in sorted(set(desired) | set(existing)):
            row = existing.get(module)
            before = _state(row)
            wanted = desired.get(module)
            if wanted is None:
                assert row is not None
                await session.delete(row)
                after: dict[str, object] = _state(None)
            else:
                if row is None:
                    row = ModuleEntitlement(tenant_id=commune_id, module=module)
                    session.add(row)
                row.reason = wanted.access.reason
                row.citizens_until = wanted.access.until
                row.subscription_ref = wanted.subscription
                after = {
                    "reason": wanted.access.reason,
                    "citizens_until": wanted.access.until,
                    "subscription": wanted.subscription,
                }
            changes = audit.diff(before, after)
            if changes:
                audit.record(
                    session,
                    tenant_id=commune_id,
                    action="billing.module_access",
                    object_type="module",
                    object_id=module,
                    changes=changes,
                )
                changed.add(commune_id)
        if commune_id in changed:
            invalidate(session, commune_id)
    return changed


def staff_notice(access: PaidAccess | None, now: float) -> str | None:
    """What a module's staff pages say when billing limits what citizens see (translated in
    the current language); None when citizens use it without end in sight."""
    if access is None:
        return None
    if access.open_at(now):
        if access.until is None:
            return None
        date = format_date(dt.datetime.fromtimestamp(access.until, dt.UTC))
        if access.reason == "payment_failed":
            return gettext(
                "A payment for this module failed. Citizens can still use it until %(date)s; "
                "then it is paused until the payment is made. Its data is kept."
            ) % {"date": date}
        return gettext(
            "The subscription covering this module ends on %(date)s: citizens will no longer "
            "see it after that date. Its data is kept."
        ) % {"date": date}
    if access.reason == "payment_failed":
        return gettext(
            "This module is paused for non-payment: citizens no longer see it. Its data is kept, "
            "and it comes back as soon as the payment is made."
        )
    if access.reason in ("canceled", "ending"):
        return gettext(
            "The subscription covering this module has ended: citizens no longer see it. Its data is kept."
        )
    return gettext(
        "No subscription covers this module: citizens do not see it. Its data is kept, and it "
        "opens to citizens as soon as a subscription covers it."
    )
