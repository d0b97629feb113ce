"""Customers, Checkout, the customer portal and plans, against stripe-mock; and what happens
when Stripe cannot be reached."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from sqlalchemy import select

from perron.audit import SYSTEM, PlatformAuditEntry, acting_as
from perron.billing import Billing, BillingOff, PayingBody, StripeUnavailable, ensure_customer
from perron.billing.models import BillingCustomer, BillingPlan
from perron.billing.plans import define_plan, parse_amount, retire_plan, sync_plans
from perron.db.scope import CrossTenantAccess, platform_scope, tenant_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.i18n import using_language
from perron.testing.harness import Tenant
from tests.billing.conftest import MODULE, PLAN, BillingSite, billing_settings

URLS = {"success_url": "https://console.test/paid", "cancel_url": "https://console.test/billing"}


async def _platform_audit(site: BillingSite) -> list[str]:
    with platform_scope("test: read the platform audit"):
        async with site.database.session() as session:
            return list(
                await session.scalars(
                    select(PlatformAuditEntry.action).order_by(PlatformAuditEntry.occurred_at)
                )
            )


async def _customers(site: BillingSite) -> list[BillingCustomer]:
    with platform_scope("test: read customers"):
        async with site.database.session() as session:
            return list(await session.scalars(select(BillingCustomer)))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_checkout_creates_the_customer_and_returns_the_checkout_address(
    site: BillingSite, alpha: Tenant
) -> None:
    await site.plan()
    body = PayingBody("commune", alpha.id)
    url = await site.billing.start_checkout(body, PLAN, language="nl", **URLS)
    assert url.startswith("https://checkout.stripe.com/")
    customers = await _customers(site)
    assert [(row.commune_id, row.stripe_customer_id[:4]) for row in customers] == [(alpha.id, "cus_")]
    assert (await site.billing.start_checkout(body, PLAN, **URLS)).startswith("https://")
    assert len(await _customers(site)) == 1  # the second checkout reuses the customer
    actions = await _platform_audit(site)
    assert actions.count("billing.customer_create") == 1
    assert actions.count("billing.checkout_start") == 2


async def test_ensure_customer_twice_gives_one_customer(site: BillingSite, alpha: Tenant) -> None:
    body = PayingBody("commune", alpha.id)
    first = await site.billing.ensure_customer(body)
    second = await site.billing.ensure_customer(alpha.commune)
    # The job's way (a commune's onboarding): in the commune's own scope, in the job's session.
    with tenant_scope(alpha.id), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            third = await ensure_customer(session, alpha.commune, settings=site.runtime.settings)
    assert first == second == third
    assert len(await _customers(site)) == 1


async def test_a_commune_cannot_create_another_communes_customer(site: BillingSite, alpha: Tenant) -> None:
    bravo = await site.commune("bravo")
    with tenant_scope(alpha.id), pytest.raises(CrossTenantAccess):
        async with site.database.transaction() as session:
            await ensure_customer(session, bravo.commune, settings=site.runtime.settings)
    assert await _customers(site) == []


async def test_the_portal_opens_for_a_body_that_has_a_customer(site: BillingSite, alpha: Tenant) -> None:
    body = PayingBody("commune", alpha.id)
    with pytest.raises(NotFound):
        await site.billing.portal_url(body, return_url="https://console.test/billing")
    await site.billing.ensure_customer(body)
    url = await site.billing.portal_url(body, return_url="https://console.test/billing", language="de")
    assert url.startswith("https://")


async def test_checkout_refuses_what_cannot_be_sold(site: BillingSite, alpha: Tenant) -> None:
    body = PayingBody("commune", alpha.id)
    with pytest.raises(Invalid) as unknown:
        await site.billing.start_checkout(body, "no-such-plan", **URLS)
    assert unknown.value.field == "plan"
    with platform_scope("test: a plan not yet in Stripe"), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            await define_plan(
                session,
                code="later",
                names={"fr": "Plus tard"},
                modules=[MODULE],
                interval="month",
                unit_amount=1000,
            )
    with pytest.raises(Invalid, match="pas encore disponible"):
        await site.billing.start_checkout(body, "later", **URLS)
    with pytest.raises(Invalid) as address:
        await site.billing.start_checkout(body, "later", success_url="javascript:alert(1)", cancel_url="x")
    assert address.value.field == "success_url"
    assert await _customers(site) == []


async def test_a_running_plan_cannot_be_bought_twice(site: BillingSite, alpha: Tenant) -> None:
    price = await site.plan()
    body = PayingBody("commune", alpha.id)
    scenario = await site.scenario(body, price)
    await site.deliver_all(scenario.subscribe())
    with pytest.raises(Conflict):
        await site.billing.start_checkout(body, PLAN, **URLS)


async def test_stripe_unreachable_changes_nothing_and_says_so(site: BillingSite, alpha: Tenant) -> None:
    await site.plan()
    body = PayingBody("commune", alpha.id)
    before = await _platform_audit(site)
    unreachable = Billing(
        billing_settings(site.runtime.settings, f"http://127.0.0.1:{_closed_port()}"), site.database
    )
    with using_language("fr"), pytest.raises(StripeUnavailable) as checkout:
        await unreachable.start_checkout(body, PLAN, **URLS)
    assert checkout.value.message == (
        "Stripe ne répond pas ; rien n'a été modifié ; réessayez dans quelques minutes."
    )
    assert checkout.value.status_code == 503
    assert await _customers(site) == []
    assert await _platform_audit(site) == before

    # For a job (a commune's onboarding) the same failure is temporary: the job is retried.
    with platform_scope("test: onboarding job"), pytest.raises(StripeUnavailable) as job:
        async with site.database.transaction() as session:
            await ensure_customer(session, body, settings=unreachable.settings)
    assert job.value.temporary
    assert await _customers(site) == []

    await site.billing.ensure_customer(body)
    with pytest.raises(StripeUnavailable):
        await unreachable.portal_url(body, return_url="https://console.test/billing")
    # Invoices come from Perron's own copy: listed while Stripe is down.
    assert await unreachable.invoices_of(body) == []


async def test_with_billing_off_the_console_functions_say_so(site: BillingSite, alpha: Tenant) -> None:
    off = Billing(site.runtime.settings.model_copy(update={"billing_enabled": False}), site.database)
    body = PayingBody("commune", alpha.id)
    calls: list[Any] = [
        off.start_checkout(body, PLAN, **URLS),
        off.portal_url(body, return_url="https://console.test/"),
        off.invoices_of(body),
        off.billing_overview(body),
        off.plans(),
        off.ensure_customer(body),
    ]
    for call in calls:
        with using_language("nl"), pytest.raises(BillingOff) as refused:
            await call
        assert refused.value.message == "Facturatie is uitgeschakeld op dit platform."


async def test_plans_are_synchronised_with_stripe_and_follow_their_changes(site: BillingSite) -> None:
    price = await site.plan()
    assert price.startswith("price_")
    with platform_scope("test: change the price"), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            _, changed = await define_plan(
                session,
                code=PLAN,
                names={"fr": f"Plan {PLAN}"},
                modules=[MODULE],
                interval="year",
                unit_amount=15000,
            )
    assert changed
    results = await sync_plans(site.runtime.settings, site.database)
    assert [(result.code, result.created_price) for result in results] == [(PLAN, True)]
    assert results[0].price != price
    again = await sync_plans(site.runtime.settings, site.database)
    assert [(result.price, result.created_price) for result in again] == [(results[0].price, False)]
    with platform_scope("test: retire"), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            assert await retire_plan(session, PLAN)
    await sync_plans(site.runtime.settings, site.database)
    with platform_scope("test: read the plan"):
        async with site.database.session() as session:
            plan = await session.scalar(select(BillingPlan))
    assert plan is not None and not plan.active and plan.stripe_price_id is None
    assert plan.former_price_ids == [price, results[0].price]
    assert await site.billing.plans() == []
    assert [view.code for view in await site.billing.plans(include_retired=True)] == [PLAN]
    actions = await _platform_audit(site)
    assert {"billing.plan_create", "billing.plan_update", "billing.plan_sync", "billing.plan_retire"} <= set(
        actions
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"modules": ["no-such-module"]}, "modules"),
        ({"modules": []}, "modules"),
        ({"interval": "week"}, "interval"),
        ({"unit_amount": 0}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"trial_days": 1000}, "trial_days"),
        ({"code": "Not A Slug"}, "code"),
        ({"names": {"xx": "?"}}, "names.xx"),
    ],
)
async def test_a_plan_that_cannot_be_sold_is_refused_with_the_reason(
    site: BillingSite, values: dict[str, Any], field: str
) -> None:
    plan: dict[str, Any] = {
        "code": "basic",
        "names": {"fr": "Base"},
        "modules": [MODULE],
        "interval": "month",
        "unit_amount": 1000,
    }
    with platform_scope("test: a wrong plan"), pytest.raises(Invalid) as refused:
        async with site.database.transaction() as session:
            await define_plan(session, **(plan | values))
    assert refused.value.field == field
    assert await site.billing.plans() == []


def test_amounts_are_read_as_people_write_them() -> None:
    assert parse_amount("120") == 12000
    assert parse_amount("120,50") == 12050
    assert parse_amount(" 9.99 ") == 999
    for wrong in ("", "abc", "-5", "0", "1.234", "nan"):
        with pytest.raises(Invalid):
            parse_amount(wrong)
