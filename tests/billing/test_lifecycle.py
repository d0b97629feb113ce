"""A subscription's life, through the webhooks, as citizens and staff see it: subscribed →
the module opens; a payment fails → grace; the grace ends (the clock moves, nobody acts) →
closed to citizens, staff still work in it with a notice; paid → open again."""

from __future__ import annotations

import datetime as dt
import html

from sqlalchemy import select

from perron import clock
from perron.audit import AuditEntry
from perron.billing import PayingBody
from perron.billing.models import BillingEvent, BillingSubscription, ModuleEntitlement
from perron.db.scope import platform_scope, tenant_scope
from perron.testing.harness import Tenant
from tests.billing.conftest import PLAN, BillingSite


def _text(response: object) -> str:
    return html.unescape(response.text)  # type: ignore[attr-defined]


async def _entitlement(site: BillingSite, tenant: Tenant) -> ModuleEntitlement | None:
    with tenant_scope(tenant.id):
        async with site.database.session() as session:
            return await session.get(ModuleEntitlement, (tenant.id, "news"))


async def test_a_subscription_opens_the_module_a_failed_payment_closes_it_after_the_grace(
    site: BillingSite, alpha: Tenant
) -> None:
    body = PayingBody("commune", alpha.id)
    price = await site.plan()
    visitor = site.client(alpha)
    staff = await site.staff(alpha)
    admin = site.client(alpha, person=staff)

    # Billable and nobody pays: closed to citizens, open to staff with the reason.
    assert (await visitor.get("/news")).status_code == 404
    assert 'href="/news"' not in (await visitor.get("/")).text
    page = await admin.get("/admin/news")
    assert page.status_code == 200
    assert "Aucun abonnement ne couvre ce module" in _text(page)

    url = await site.billing.start_checkout(
        body, PLAN, success_url="https://console.test/ok", cancel_url="https://console.test/back"
    )
    assert url.startswith("https://checkout.stripe.com/")
    scenario = await site.scenario(body, price)
    await site.deliver_all(scenario.subscribe())

    assert (await visitor.get("/news")).status_code == 200
    assert 'href="/news"' in (await visitor.get("/")).text
    assert "Facturation :" not in _text(await admin.get("/admin/news"))
    with platform_scope("test: read"):
        async with site.database.session() as session:
            outcomes = set(await session.scalars(select(BillingEvent.outcome)))
            subscription = await session.scalar(select(BillingSubscription))
    assert outcomes <= {"applied", "unchanged"}
    assert subscription is not None and subscription.status == "active"

    invoice, failing = scenario.payment_fails()
    await site.deliver_all(failing)
    failed_at = dt.datetime.fromtimestamp(failing[2]["created"], dt.UTC)
    row = await _entitlement(site, alpha)
    assert row is not None and row.reason == "payment_failed"
    assert row.citizens_until is not None
    assert abs(row.citizens_until - (failed_at + dt.timedelta(days=14))) < dt.timedelta(seconds=1)
    assert (await visitor.get("/news")).status_code == 200  # the grace period
    assert "Un paiement pour ce module a échoué" in _text(await admin.get("/admin/news"))

    with clock.travel(dt.timedelta(days=15)):
        # Nobody acted: the grace ended by itself, even for the page cached a moment ago.
        assert (await visitor.get("/news")).status_code == 404
        home = await visitor.get("/")
        assert 'href="/news"' not in home.text
        page = await admin.get("/admin/news")
        assert page.status_code == 200
        assert "mis en pause pour défaut de paiement" in _text(page)
        assert 'href="/admin/news"' in page.text

        await site.deliver_all(scenario.payment_succeeds(invoice))
        assert (await visitor.get("/news")).status_code == 200
        assert "Facturation :" not in _text(await admin.get("/admin/news"))

    invoices = await site.billing.invoices_of(body)
    assert [item.status for item in invoices] == ["paid", "paid"]
    assert all(item.hosted_invoice_url and item.number and item.total == 12000 for item in invoices)

    with tenant_scope(alpha.id):
        async with site.database.session() as session:
            changes = list(
                await session.scalars(
                    select(AuditEntry.changes)
                    .where(AuditEntry.action == "billing.module_access")
                    .order_by(AuditEntry.occurred_at)
                )
            )
    assert [entry["reason"][1] for entry in changes] == ["active", "payment_failed", "active"]
