"""Who a subscription pays for: a commune's covers that commune only; an intercommunale's
covers exactly its member communes, and follows them when they join or leave."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from perron import clock
from perron.audit import SYSTEM, AuditEntry, acting_as
from perron.billing import PayingBody
from perron.billing.models import ModuleEntitlement
from perron.db.scope import platform_scope, tenant_scope
from perron.tenancy import actions
from perron.testing.harness import Tenant
from tests.billing.conftest import MODULE, BillingSite


async def _news_status(site: BillingSite, *tenants: Tenant) -> dict[str, int]:
    return {tenant.slug: (await site.client(tenant).get("/news")).status_code for tenant in tenants}


async def _entitled(site: BillingSite) -> set[str]:
    with platform_scope("test: who may use news"):
        async with site.database.session() as session:
            rows = await session.execute(
                select(ModuleEntitlement.tenant_id, ModuleEntitlement.reason).where(
                    ModuleEntitlement.module == MODULE
                )
            )
            return {str(tenant) for tenant, reason in rows if reason == "active"}


async def test_one_communes_subscription_never_reaches_another(site: BillingSite) -> None:
    alpha, bravo = await site.commune("alpha"), await site.commune("bravo")
    for tenant in (alpha, bravo):
        await site.enable(tenant, MODULE)
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    await site.deliver_all(scenario.subscribe())
    assert await _news_status(site, alpha, bravo) == {"alpha": 200, "bravo": 404}
    assert await _entitled(site) == {str(alpha.id)}

    _, failing = scenario.payment_fails()
    await site.deliver_all(failing)
    with clock.travel(dt.timedelta(days=15)):
        assert await _news_status(site, alpha, bravo) == {"alpha": 404, "bravo": 404}
    # bravo's own log records nothing of alpha's payments; its own subscription opens it.
    with tenant_scope(bravo.id):
        async with site.database.session() as session:
            logged = list(
                await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("billing.%")))
            )
            seen = list(await session.scalars(select(ModuleEntitlement)))
    assert logged == []
    assert seen == []
    other = await site.scenario(PayingBody("commune", bravo.id), price)
    await site.deliver_all(other.subscribe())
    with clock.travel(dt.timedelta(days=15)):
        assert await _news_status(site, alpha, bravo) == {"alpha": 404, "bravo": 200}


async def test_an_intercommunales_subscription_covers_exactly_its_members(site: BillingSite) -> None:
    with platform_scope("test: an intercommunale"), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            body = await actions.create_intercommunale(session, slug="bep", names={"fr": "BEP"})
    alpha = await site.commune("alpha")
    bravo = await site.commune("bravo")
    charlie = await site.commune("charlie")
    with platform_scope("test: members"), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            for tenant in (alpha, bravo):
                await actions.update_commune(
                    session, await actions.get_commune(session, tenant.slug), intercommunale="bep"
                )
    await site.run_jobs()
    for tenant in (alpha, bravo, charlie):
        await site.enable(tenant, MODULE)
    price = await site.plan()
    payer = PayingBody("intercommunale", body.id)
    scenario = await site.scenario(payer, price)
    await site.deliver_all(scenario.subscribe())
    assert await _news_status(site, alpha, bravo, charlie) == {"alpha": 200, "bravo": 200, "charlie": 404}

    overview = await site.billing.billing_overview(payer)
    assert [commune.slug for commune in overview.communes] == ["alpha", "bravo"]
    assert all(
        module.state == "on"
        for commune in overview.communes
        for module in commune.modules
        if module.module == MODULE
    )
    assert [(charge.plan, charge.unit_amount) for charge in overview.charges] == [("news-yearly", 12000)]

    # charlie joins, alpha leaves: the subscription follows the membership.
    with platform_scope("test: membership changes"), acting_as(SYSTEM):
        async with site.database.transaction() as session:
            await actions.update_commune(
                session, await actions.get_commune(session, "charlie"), intercommunale="bep"
            )
            await actions.update_commune(
                session, await actions.get_commune(session, "alpha"), intercommunale=None
            )
    await site.run_jobs()
    assert await _news_status(site, alpha, bravo, charlie) == {"alpha": 404, "bravo": 200, "charlie": 200}
    with tenant_scope(charlie.id):
        async with site.database.session() as session:
            changes = list(
                await session.scalars(
                    select(AuditEntry.changes).where(AuditEntry.action == "billing.module_access")
                )
            )
    assert [entry["reason"] for entry in changes] == [[None, "active"]]
