"""One row of each tenant-owned table beyond the core's, per commune, for the generic attacks
of this folder (``conftest.FACTORIES``). A new table gets its factory here, or
``test_every_tenant_table_is_attacked`` fails."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from perron_news.models import Article
from sqlalchemy.ext.asyncio import AsyncSession

from perron.adoption.models import ActivityDay, week_of
from perron.billing.models import ModuleEntitlement
from perron.db.base import Base, new_id, utcnow
from perron.identity.models import Account, LoginAttempt, ResidencyCode, WebSession
from perron.mail import EmailStatus, OutgoingEmail
from perron.notifications import Channel, Delivery, DeliveryStatus, EmailFrequency, Notification, Preference
from perron.tenancy.legal import LegalTexts
from perron.territory.models import (
    Neighbourhood,
    NeighbourhoodStreet,
    Street,
    TerritoryChange,
    TerritoryState,
    Zone,
)

ALPHA_CENTRE = [[5.070, 50.665], [5.090, 50.665], [5.090, 50.678], [5.070, 50.678], [5.070, 50.665]]


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


async def _account(session: AsyncSession, tenant_id: UUID) -> Account:
    account = Account(tenant_id=tenant_id, display_name=f"Seed {str(tenant_id)[:8]}", roles=[])
    session.add(account)
    await session.flush()
    return account


async def _notification(session: AsyncSession, tenant_id: UUID) -> Base:
    row = Notification(
        tenant_id=tenant_id,
        module="core",
        kind="announcement",
        title={"fr": f"Seed {str(tenant_id)[:8]}"},
        body={"fr": "seed"},
        audience={"kind": "commune"},
        recipients=0,
    )
    session.add(row)
    await session.flush()
    return row


async def _delivery(session: AsyncSession, tenant_id: UUID) -> Base:
    account = await _account(session, tenant_id)
    notification = await _notification(session, tenant_id)
    row = Delivery(
        tenant_id=tenant_id,
        notification_id=notification.id,
        account_id=account.id,
        channel=Channel.INBOX,
        status=DeliveryStatus.SENT,
    )
    session.add(row)
    return row


async def _preference(session: AsyncSession, tenant_id: UUID) -> Base:
    account = await _account(session, tenant_id)
    row = Preference(tenant_id=tenant_id, account_id=account.id, module="core", email=EmailFrequency.OFF)
    session.add(row)
    return row


async def _email(session: AsyncSession, tenant_id: UUID) -> Base:
    row = OutgoingEmail(
        tenant_id=tenant_id,
        category="seed",
        to_address="seed@example.be",
        from_name="Seed",
        language="fr",
        subject="Seed",
        text_body="seed",
        html_body="<p>seed</p>",
        message_id=f"<{tenant_id}@perron.test>",
        status=EmailStatus.QUEUED,
        attempts=0,
    )
    session.add(row)
    return row


NOTIFICATION_FACTORIES: dict[type[Base], Any] = {
    Notification: _notification,
    Delivery: _delivery,
    Preference: _preference,
    OutgoingEmail: _email,
}


async def _web_session(session: AsyncSession, tenant_id: UUID) -> Base:
    account = await _account(session, tenant_id)
    row = WebSession(
        tenant_id=tenant_id,
        id=f"{tenant_id.hex}{'0' * 32}",
        account_id=account.id,
        assurance=2,
        expires_at=utcnow() + dt.timedelta(hours=1),
    )
    session.add(row)
    return row


async def _login_attempt(session: AsyncSession, tenant_id: UUID) -> Base:
    row = LoginAttempt(
        tenant_id=tenant_id,
        id=new_id().hex * 2,
        browser_key="b" * 64,
        realm="citizens",
        nonce="n" * 32,
        code_verifier="v" * 64,
        level=1,
        next_path="/",
        expires_at=utcnow() + dt.timedelta(minutes=10),
    )
    session.add(row)
    return row


async def _residency_code(session: AsyncSession, tenant_id: UUID) -> Base:
    account = await _account(session, tenant_id)
    row = ResidencyCode(
        tenant_id=tenant_id,
        account_id=account.id,
        code_hash=new_id().hex * 2,
        street="Rue de la Station",
        postcode="4280",
        created_by="Agent",
        expires_at=utcnow() + dt.timedelta(days=30),
    )
    session.add(row)
    return row


async def _street(session: AsyncSession, tenant_id: UUID) -> Base:
    key = f"rue {new_id().hex}"
    row = Street(tenant_id=tenant_id, names={"fr": key}, postcode="4280", match_key=key)
    session.add(row)
    return row


async def _neighbourhood(session: AsyncSession, tenant_id: UUID) -> Base:
    row = Neighbourhood(
        tenant_id=tenant_id, names={"fr": "Centre"}, geometry=polygon(ALPHA_CENTRE), replaced_by=[]
    )
    session.add(row)
    return row


async def _listing(session: AsyncSession, tenant_id: UUID) -> Base:
    street = await _street(session, tenant_id)
    neighbourhood = await _neighbourhood(session, tenant_id)
    await session.flush()
    row = NeighbourhoodStreet(tenant_id=tenant_id, neighbourhood_id=neighbourhood.id, street_id=street.id)  # type: ignore[attr-defined]
    session.add(row)
    return row


async def _zone(session: AsyncSession, tenant_id: UUID) -> Base:
    row = Zone(
        tenant_id=tenant_id,
        key=f"z{new_id().hex[:8]}",
        names={"fr": "Centre"},
        geometry=polygon(ALPHA_CENTRE),
    )
    session.add(row)
    return row


async def _state(session: AsyncSession, tenant_id: UUID) -> Base:
    row = TerritoryState(tenant_id=tenant_id, version=1)
    session.add(row)
    return row


async def _change(session: AsyncSession, tenant_id: UUID) -> Base:
    row = TerritoryChange(
        tenant_id=tenant_id,
        version=1,
        actor_label="seed",
        action="zone.create",
        kind="zones",
        object_ids=[],
        summary={},
    )
    session.add(row)
    return row


TERRITORY_FACTORIES = {
    Street: _street,
    Neighbourhood: _neighbourhood,
    NeighbourhoodStreet: _listing,
    Zone: _zone,
    TerritoryState: _state,
    TerritoryChange: _change,
}


async def _article(session: AsyncSession, tenant_id: UUID) -> Base:
    row = Article(tenant_id=tenant_id, title={"fr": f"Nouvelle {str(tenant_id)[:8]}"})
    session.add(row)
    return row


async def _legal_texts(session: AsyncSession, tenant_id: UUID) -> Base:
    row = LegalTexts(tenant_id=tenant_id, privacy_extra={"fr": f"Texte de {str(tenant_id)[:8]}"})
    session.add(row)
    return row


async def _entitlement(session: AsyncSession, tenant_id: UUID) -> Base:
    row = ModuleEntitlement(tenant_id=tenant_id, module="news", reason="active", subscription_ref="sub_seed")
    session.add(row)
    return row


async def _activity_day(session: AsyncSession, tenant_id: UUID) -> Base:
    account = await _account(session, tenant_id)
    day = dt.date(2026, 11, 30)
    row = ActivityDay(tenant_id=tenant_id, week=week_of(day), module="", account_id=account.id, day=day)
    session.add(row)
    return row


MORE_FACTORIES: dict[type[Base], Any] = {
    Account: _account,
    WebSession: _web_session,
    LoginAttempt: _login_attempt,
    ResidencyCode: _residency_code,
    **NOTIFICATION_FACTORIES,
    **TERRITORY_FACTORIES,
    Article: _article,
    LegalTexts: _legal_texts,
    ModuleEntitlement: _entitlement,
    ActivityDay: _activity_day,
}
