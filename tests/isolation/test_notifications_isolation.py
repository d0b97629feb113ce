"""Notifications never cross communes: audiences, jobs, e-mails, the inbox and its forms.

Every attack runs as ``alpha`` and aims at ``bravo``. ``NOTIFICATION_FACTORIES`` builds one row
of each notification and e-mail table per commune, for the generic attacks of this folder
(``tests/isolation/conftest.py`` ``FACTORIES``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from perron.db.scope import CrossTenantAccess, platform_scope, tenant_scope
from perron.errors import Invalid, NotFound
from perron.jobs import OutboxMessage
from perron.mail import OutgoingEmail
from perron.notifications import (
    Audience,
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    notify,
    service,
)
from perron.testing.harness import Harness, Person, Tenant
from tests.integration.conftest_smtp import SMTPServer, run_jobs, smtp_mail, smtp_server
from tests.isolation.factories import NOTIFICATION_FACTORIES

__all__ = ["smtp_mail", "smtp_server"]  # fixtures used by the tests below


# --- Two communes with people -------------------------------------------------------------------


@pytest.fixture
async def harness(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    yield harness
    await harness.close()


class Communes:
    def __init__(self, alpha: Tenant, bravo: Tenant, people: dict[str, Person]) -> None:
        self.alpha, self.bravo, self.people = alpha, bravo, people


@pytest.fixture
async def communes(harness: Harness) -> Communes:
    alpha = await harness.commune("alpha")
    bravo = await harness.commune("bravo", languages=["fr", "nl"])
    people = {
        "alpha_resident": await harness.citizen(alpha, email="a@alpha.example"),
        "alpha_editor": await harness.staff(alpha, roles=["news.editor"], email="editor@alpha.example"),
        "bravo_resident": await harness.citizen(bravo, email="b@bravo.example"),
        "bravo_editor": await harness.staff(bravo, roles=["news.editor"], email="editor@bravo.example"),
    }
    return Communes(alpha, bravo, people)


async def send(harness: Harness, tenant: Tenant, audience: Audience, title: str) -> Notification:
    async with harness.transaction(tenant) as session:
        notification = await notify(
            session, module="core", audience=audience, title={"fr": title}, body={"fr": "Texte"}
        )
    await run_jobs(harness.runtime)
    return notification


async def all_deliveries(harness: Harness) -> list[Delivery]:
    with platform_scope("test: every commune's deliveries"):
        async with harness.database.session() as session:
            return list(await session.scalars(select(Delivery)))


async def test_an_audience_in_alpha_never_reaches_bravos_people(
    harness: Harness, communes: Communes, smtp_mail: SMTPServer
) -> None:
    people = communes.people
    await send(harness, communes.alpha, Audience.commune(), "Pour Alpha")
    await send(harness, communes.alpha, Audience.role("news.editor"), "Pour les éditeurs d'Alpha")
    rows = await all_deliveries(harness)
    assert rows and {row.tenant_id for row in rows} == {communes.alpha.id}
    assert {row.account_id for row in rows} == {people["alpha_resident"].id, people["alpha_editor"].id}
    recipients = {address for received in smtp_mail.messages for address in received.recipients}
    assert recipients == {"a@alpha.example", "editor@alpha.example"}
    with tenant_scope(communes.bravo.id):
        async with harness.database.session() as session:
            assert await session.scalar(select(func.count(Notification.id))) == 0
            assert await session.scalar(select(func.count(OutgoingEmail.id))) == 0


async def test_alpha_cannot_address_a_person_of_bravo(harness: Harness, communes: Communes) -> None:
    bravo_person = communes.people["bravo_resident"]
    with pytest.raises(Invalid, match="no such person"):
        async with harness.transaction(communes.alpha) as session:
            await notify(
                session,
                module="core",
                audience=Audience.person(bravo_person.id),
                title={"fr": "x"},
                body={"fr": "y"},
            )
    assert await all_deliveries(harness) == []


async def test_a_fan_out_in_alphas_scope_cannot_deliver_bravos_notification(
    harness: Harness, communes: Communes
) -> None:
    async with harness.transaction(communes.bravo) as session:
        bravo_notification = await notify(
            session, module="core", audience=Audience.commune(), title={"fr": "Bravo"}, body={"fr": "y"}
        )
    # Its own fan-out is not run: only the attack below could deliver it.
    with platform_scope("test: drop bravo's queued fan-out"):
        async with harness.database.transaction() as session:
            for row in await session.scalars(select(OutboxMessage)):
                await session.delete(row)
    async with harness.transaction(communes.alpha) as session:
        assert await service.fan_out_batch(session, bravo_notification.id, None) is None
    assert await all_deliveries(harness) == []


async def test_alphas_inbox_never_shows_bravos_notifications(harness: Harness, communes: Communes) -> None:
    await send(harness, communes.alpha, Audience.commune(), "Nouvelles d'Alpha")
    await send(harness, communes.bravo, Audience.commune(), "Secret de Bravo")
    bravo_row = next(row for row in await all_deliveries(harness) if row.tenant_id == communes.bravo.id)
    client = harness.client(communes.alpha, person=communes.people["alpha_resident"])
    page = await client.get("/inbox")
    assert page.status_code == 200
    assert "Nouvelles d&#39;Alpha" in page.text and "Secret de Bravo" not in page.text
    # Bravo's delivery as a page cursor is ignored, not followed.
    paged = await client.get("/inbox", params={"before": str(bravo_row.id)})
    assert paged.status_code == 200 and "Secret de Bravo" not in paged.text
    # A bravo session cookie means nothing on alpha's host.
    stranger = harness.client(communes.alpha, person=communes.people["bravo_resident"])
    assert (await stranger.get("/inbox")).status_code == 401


async def test_a_delivery_id_of_bravo_on_alphas_host_is_not_found(
    harness: Harness, communes: Communes
) -> None:
    await send(harness, communes.bravo, Audience.commune(), "Secret de Bravo")
    [bravo_row] = [row for row in await all_deliveries(harness) if row.channel is Channel.INBOX]
    client = harness.client(communes.alpha, person=communes.people["alpha_resident"])
    response = await harness.post_form(client, "/inbox", f"/inbox/{bravo_row.id}/read", {})
    assert response.status_code == 404
    [after] = [row for row in await all_deliveries(harness) if row.id == bravo_row.id]
    assert after.status is DeliveryStatus.SENT and after.read_at is None


async def test_services_refuse_bravos_rows_in_alphas_scope(harness: Harness, communes: Communes) -> None:
    await send(harness, communes.bravo, Audience.commune(), "Secret de Bravo")
    [bravo_row] = [row for row in await all_deliveries(harness) if row.channel is Channel.INBOX]
    bravo_person = communes.people["bravo_resident"]
    async with harness.transaction(communes.alpha) as session:
        with pytest.raises(NotFound):
            await service.mark_read(session, bravo_person.id, bravo_row.id)
        with pytest.raises(NotFound):
            await service.set_preferences(session, bravo_person.id, {"core": "off"}, modules=["core"])
        with pytest.raises(CrossTenantAccess):
            await service.send_digests_batch(session, communes.bravo.id, None)
    with tenant_scope(communes.bravo.id):
        async with harness.database.session() as session:
            assert await service.preferences_of(session, bravo_person.id) == {}


@pytest.mark.parametrize("model", list(NOTIFICATION_FACTORIES), ids=lambda model: model.__name__)
async def test_each_table_shows_alpha_only_its_own_rows(
    harness: Harness, communes: Communes, model: Any
) -> None:
    with platform_scope("test: seed both communes"):
        async with harness.database.transaction() as session:
            for tenant in (communes.alpha, communes.bravo):
                await NOTIFICATION_FACTORIES[model](session, tenant.id)
    with tenant_scope(communes.alpha.id):
        async with harness.database.session() as session:
            rows = list(await session.scalars(select(model)))
    assert rows and {row.tenant_id for row in rows} == {communes.alpha.id}
