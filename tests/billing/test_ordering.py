"""Stripe delivers at least once and in any order: a replay changes nothing, a late event
never moves anything backwards, and a shuffled delivery ends where an orderly one does."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import random
import re
from typing import Any

from sqlalchemy import select

from perron import clock
from perron.audit import AuditEntry, PlatformAuditEntry
from perron.billing import PayingBody
from perron.billing.models import BillingEvent, BillingInvoice, BillingSubscription, ModuleEntitlement
from perron.db.scope import platform_scope
from perron.testing.harness import Tenant
from tests.billing.conftest import MODULE, BillingSite
from tests.billing.stripe_events import Scenario


def _life(scenario: Scenario) -> list[dict[str, Any]]:
    """Subscribed; a renewal fails, then is paid; the next renewal fails and stays unpaid."""
    events = scenario.subscribe()
    first, failing = scenario.payment_fails()
    events += failing + scenario.payment_succeeds(first)
    _, failing_again = scenario.payment_fails()
    return events + failing_again


def _rebrand(events: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """The same events about another body: every id of the template replaced."""
    text = json.dumps(events)
    for old, new in names.items():
        text = text.replace(old, new)
    text = re.sub(r"\b(in_test\d+)\b", lambda found: f"{found.group(1)}_{names['#suffix']}", text)
    copies: list[dict[str, Any]] = json.loads(text)
    for index, event in enumerate(copies):
        event["id"] = f"{event['id']}_{names['#suffix']}_{index}"
    return copies


async def _state(site: BillingSite, tenant: Tenant) -> dict[str, Any]:
    """What a body's events led to, without the ids that differ from one body to another."""
    with platform_scope("test: read the billing state"):
        async with site.database.session() as session:
            subscription = await session.scalar(
                select(BillingSubscription).where(
                    BillingSubscription.stripe_subscription_id.like(f"%{tenant.slug}")
                )
            )
            assert subscription is not None
            invoices = list(
                await session.scalars(
                    select(BillingInvoice)
                    .where(BillingInvoice.subscription_ref == subscription.stripe_subscription_id)
                    .order_by(BillingInvoice.issued_at)
                )
            )
            entitlement = await session.get(ModuleEntitlement, (tenant.id, MODULE))
    assert entitlement is not None
    return {
        "subscription": {
            name: getattr(subscription, name)
            for name in ("status", "failing_since", "state_at", "current_period_end", "cancel_at_period_end")
        },
        "invoices": [(invoice.status, invoice.amount_paid, invoice.state_at) for invoice in invoices],
        "entitlement": (entitlement.reason, entitlement.citizens_until),
    }


async def test_the_same_events_shuffled_end_in_the_same_state_as_in_order(site: BillingSite) -> None:
    price = await site.plan()
    ordered = await site.commune("ordered")
    template_body = PayingBody("commune", ordered.id)
    scenario = await site.scenario(template_body, price)
    scenario.subscription_id = f"sub_life_{ordered.slug}"
    events = _life(scenario)
    await site.deliver_all(events)
    expected = await _state(site, ordered)
    assert expected["subscription"]["status"] == "past_due"
    assert expected["entitlement"][0] == "payment_failed"

    orders = [list(reversed(events))]
    for seed in (1, 2, 3, 4):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        orders.append(shuffled)
    assert all(order != events for order in orders)
    for number, order in enumerate(orders):
        tenant = await site.commune(f"shuffled{number}")
        body = PayingBody("commune", tenant.id)
        customer = await site.billing.ensure_customer(body)
        names = {
            scenario.subscription_id: f"sub_life_{tenant.slug}",
            scenario.customer: customer,
            template_body.key: body.key,
            "#suffix": tenant.slug,
        }
        for event in _rebrand(order, names):
            assert (await site.deliver(event)).status_code == 200
            await site.run_jobs()  # each event processed before the next one arrives
        assert await _state(site, tenant) == expected, f"order {number}"


async def _snapshot(site: BillingSite) -> dict[str, Any]:
    with platform_scope("test: everything billing wrote"):
        async with site.database.session() as session:
            return {
                "subscriptions": [
                    (row.stripe_subscription_id, row.status, row.failing_since, row.state_at, row.updated_at)
                    for row in await session.scalars(select(BillingSubscription))
                ],
                "invoices": [
                    (row.stripe_invoice_id, row.status, row.updated_at)
                    for row in await session.scalars(select(BillingInvoice))
                ],
                "entitlements": [
                    (row.tenant_id, row.module, row.reason, row.citizens_until, row.updated_at)
                    for row in await session.scalars(select(ModuleEntitlement))
                ],
                "events": len(list(await session.scalars(select(BillingEvent.stripe_event_id)))),
                "audit": len(list(await session.scalars(select(AuditEntry.id)))),
                "platform_audit": len(list(await session.scalars(select(PlatformAuditEntry.id)))),
            }


async def test_every_event_replayed_changes_nothing(site: BillingSite, alpha: Tenant) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    events = _life(scenario)
    await site.deliver_all(events)
    before = await _snapshot(site)
    await site.deliver_all(events)
    await site.deliver_all(list(reversed(events)))
    assert await _snapshot(site) == before


async def test_an_older_subscription_update_arriving_after_a_newer_one_is_not_applied(
    site: BillingSite, alpha: Tenant
) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    await site.deliver_all(scenario.subscribe())
    older = scenario.event("customer.subscription.updated", scenario.subscription("past_due"))
    newer = scenario.event("customer.subscription.updated", scenario.subscription("active"))
    await site.deliver_all([newer, older])
    with platform_scope("test: read"):
        async with site.database.session() as session:
            subscription = await session.scalar(select(BillingSubscription))
            entitlement = await session.get(ModuleEntitlement, (alpha.id, MODULE))
    assert subscription is not None and subscription.status == "active"
    assert subscription.failing_since is None
    assert entitlement is not None and entitlement.reason == "active" and entitlement.citizens_until is None
    with clock.travel(dt.timedelta(days=30)):
        assert (await site.client(alpha).get("/news")).status_code == 200


async def test_a_payment_failure_arriving_after_the_invoice_was_paid_starts_no_grace(
    site: BillingSite, alpha: Tenant
) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    await site.deliver_all(scenario.subscribe())
    invoice = "in_renewal_alpha"
    failed = scenario.event("invoice.payment_failed", scenario.invoice(invoice, "open", number="PERRON-9"))
    paid = scenario.event("invoice.paid", scenario.invoice(invoice, "paid", number="PERRON-9"))
    await site.deliver_all([paid, failed])
    with platform_scope("test: read"):
        async with site.database.session() as session:
            stored = await session.scalar(
                select(BillingInvoice).where(BillingInvoice.stripe_invoice_id == invoice)
            )
            subscription = await session.scalar(select(BillingSubscription))
            entitlement = await session.get(ModuleEntitlement, (alpha.id, MODULE))
    assert stored is not None and stored.status == "paid"
    assert subscription is not None and subscription.status == "active" and subscription.failing_since is None
    assert entitlement is not None and entitlement.reason == "active"


async def test_an_invoice_paid_before_the_subscription_update_arrives_already_reopens(
    site: BillingSite, alpha: Tenant
) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    await site.deliver_all(scenario.subscribe())
    invoice, failing = scenario.payment_fails()
    await site.deliver_all(failing)
    paid, _update = scenario.payment_succeeds(invoice)
    with clock.travel(dt.timedelta(days=20)):
        assert (await site.client(alpha).get("/news")).status_code == 404
        await site.deliver_all([paid])  # Stripe's customer.subscription.updated is late
        # The commune's snapshot is refreshed by a notice the job's thread hands to the site's
        # event loop: give it a moment (the platform's promise is "within a tenth of a second").
        for _ in range(40):
            if (await site.client(alpha).get("/news")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await site.client(alpha).get("/news")).status_code == 200


async def test_a_cancellation_at_period_end_closes_the_module_at_that_end(
    site: BillingSite, alpha: Tenant
) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    await site.deliver_all(scenario.subscribe())
    end = int(clock.now()) + 10 * 86400
    await site.deliver_all(
        [
            scenario.event(
                "customer.subscription.updated",
                scenario.subscription("active", cancel_at_period_end=True, period_end=end),
            )
        ]
    )
    visitor = site.client(alpha)
    admin = site.client(alpha, person=await site.staff(alpha))
    assert (await visitor.get("/news")).status_code == 200
    assert "prend fin le" in html.unescape((await admin.get("/admin/news")).text)
    with clock.travel(dt.timedelta(days=11)):
        assert (await visitor.get("/news")).status_code == 404
    await site.deliver_all(
        [
            scenario.event(
                "customer.subscription.deleted", scenario.subscription("canceled", ended_at=end), at=end
            )
        ]
    )
    with platform_scope("test: read"):
        async with site.database.session() as session:
            entitlement = await session.get(ModuleEntitlement, (alpha.id, MODULE))
    assert entitlement is not None and entitlement.reason == "canceled"


async def test_a_subscription_cancelled_now_closes_at_once_and_never_comes_back(
    site: BillingSite, alpha: Tenant
) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    await site.deliver_all(scenario.subscribe())
    now = int(clock.now())
    deleted = scenario.event(
        "customer.subscription.deleted",
        scenario.subscription("canceled", canceled_at=now, ended_at=now),
        at=now,
    )
    late_update = scenario.event("customer.subscription.updated", scenario.subscription("active"), at=now + 5)
    await site.deliver_all([deleted, late_update])
    assert (await site.client(alpha).get("/news")).status_code == 404
    admin = site.client(alpha, person=await site.staff(alpha))
    page = await admin.get("/admin/news")
    assert page.status_code == 200 and "a pris fin" in html.unescape(page.text)


async def test_a_trial_opens_the_module(site: BillingSite, alpha: Tenant) -> None:
    price = await site.plan(trial_days=30)
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    trial_end = int(clock.now()) + 30 * 86400
    await site.deliver_all(
        [
            scenario.checkout_completed(),
            scenario.event(
                "customer.subscription.created", scenario.subscription("trialing", trial_end=trial_end)
            ),
            scenario.event(
                "customer.subscription.trial_will_end", scenario.subscription("trialing", trial_end=trial_end)
            ),
        ]
    )
    assert (await site.client(alpha).get("/news")).status_code == 200
    overview = await site.billing.billing_overview(PayingBody("commune", alpha.id))
    assert [item.status for item in overview.subscriptions] == ["trialing"]
    assert overview.subscriptions[0].trial_end == dt.datetime.fromtimestamp(trial_end, dt.UTC)


async def test_a_subscription_of_an_unknown_customer_is_kept_and_opens_nothing(
    site: BillingSite, alpha: Tenant
) -> None:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    scenario.customer, scenario.body_key = "cus_someone_else", "commune:not-a-uuid"
    await site.deliver_all([scenario.event("customer.subscription.created", scenario.subscription("active"))])
    with platform_scope("test: read"):
        async with site.database.session() as session:
            outcome = await session.scalar(select(BillingEvent.outcome))
            entitlements = list(await session.scalars(select(ModuleEntitlement)))
    assert outcome == "unlinked"
    assert entitlements == []
    assert (await site.client(alpha).get("/news")).status_code == 404
