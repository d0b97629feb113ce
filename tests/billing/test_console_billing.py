"""Billing from the console: what a paying body pays and subscribes to (Stripe Checkout, the
customer portal, its invoices), and the paying body's Stripe customer made while a commune is
onboarded (Stripe unreachable: the provisioning waits, and says why)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perron.billing.bodies import PayingBody
from perron.billing.stripe_api import StripeUnavailable
from perron.console import provisioning
from perron.db.scope import platform_scope
from perron.tenancy.actions import get_intercommunale
from tests.billing.conftest import BillingSite
from tests.console.conftest import console, submit, text
from tests.console.test_wizard import fill_wizard, start


async def _bep(site: BillingSite) -> tuple[Any, Any]:
    await site.intercommunale("bep", names={"fr": "BEP"})
    await site.intercommunale("idelux", names={"fr": "Idelux"})
    await site.commune("ciney", intercommunale="bep")
    bep = await site.console_person(intercommunales=["bep"], language="en")
    idelux = await site.console_person(intercommunales=["idelux"], language="en")
    return bep, idelux


async def test_an_intercommunale_subscribes_and_manages_its_billing_from_the_console(
    site: BillingSite,
) -> None:
    await site.plan()
    bep, idelux = await _bep(site)
    client = console(site, bep)
    page = await client.get("/billing/intercommunale/bep")
    assert page.status_code == 200, page.text
    seen = text(page)
    assert "Plan news-yearly" in seen and "No subscription yet" in seen and "Ciney" in seen
    go = await submit(
        site,
        client,
        "/billing/intercommunale/bep",
        "/billing/intercommunale/bep/checkout",
        {"plan": "news-yearly"},
    )
    assert go.status_code == 303 and go.headers["location"].startswith("https://"), go.text
    unknown = await submit(
        site, client, "/billing/intercommunale/bep", "/billing/intercommunale/bep/checkout", {"plan": "nope"}
    )
    assert unknown.status_code == 400 and "plan" in text(unknown).lower()
    portal = await submit(
        site, client, "/billing/intercommunale/bep", "/billing/intercommunale/bep/portal", {}
    )
    assert portal.status_code == 303 and portal.headers["location"].startswith("https://")
    assert (await client.get("/billing/commune/ciney")).status_code == 200
    # Another intercommunale's administrator sees nothing of it.
    other = console(site, idelux)
    for path in ("/billing/intercommunale/bep", "/billing/commune/ciney"):
        assert (await other.get(path)).status_code == 404, path
    assert (
        await submit(site, other, "/billing/intercommunale/idelux", "/billing/intercommunale/bep/portal", {})
    ).status_code == 404


async def test_onboarding_makes_the_paying_bodys_customer_and_waits_while_stripe_is_down(
    site: BillingSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    bep, _ = await _bep(site)
    calls: list[str] = []
    real = provisioning._ACTIONS["billing"]

    async def stripe_down(run: Any) -> None:
        calls.append("billing")
        if len(calls) == 1:
            raise StripeUnavailable()
        await real(run)

    monkeypatch.setitem(provisioning._ACTIONS, "billing", stripe_down)
    client = console(site, bep)
    draft = await start(site, client)
    await fill_wizard(site, client, draft)
    await submit(site, client, f"/onboardings/{draft}/step/review", f"/onboardings/{draft}/launch", {})
    seen = ""
    for _ in range(100):
        seen = text(await client.get(f"/onboardings/{draft}/progress"))
        if "cannot be reached" in seen:
            break
        await asyncio.sleep(0.05)
    assert "The payment service (Stripe) cannot be reached" in seen, seen
    await site.run_jobs()
    assert len(calls) == 2
    assert "The commune is on board" in text(await client.get(f"/onboardings/{draft}"))
    with platform_scope("test: look"):
        async with site.database.session() as session:
            body = await get_intercommunale(session, "bep")
    assert (await site.customer_of(PayingBody.of(body))).startswith("cus_")
