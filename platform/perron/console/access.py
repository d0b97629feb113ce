"""What a console user may see: every lookup of the console goes through here.

The console runs in the platform scope (it manages many communes), so the isolation between
intercommunales is this module's job: an intercommunale administrator finds only their own
intercommunales and member communes; anything else is :class:`~perron.errors.NotFound`,
exactly as if it did not exist. Operators find everything.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.console.auth import ConsoleUser
from perron.console.models import BulkOnboarding, Onboarding
from perron.errors import NotFound
from perron.i18n import gettext
from perron.tenancy.models import Commune, CommuneStatus, Domain, Intercommunale
from perron.web.auth import Forbidden


def require_operator(user: ConsoleUser) -> None:
    if not user.operator:
        raise Forbidden(gettext("This page is for the platform's operators."))


Q = TypeVar("Q", bound=Select[Any])


def _visible(query: Q, user: ConsoleUser) -> Q:
    if user.operator:
        return query
    return query.where(Commune.intercommunale_id.in_(user.intercommunale_ids))


async def visible_communes(
    session: AsyncSession,
    user: ConsoleUser,
    *,
    intercommunale_id: UUID | None = None,
    status: CommuneStatus | None = None,
) -> list[tuple[Commune, str]]:
    """The communes the person may see (of one intercommunale, of one status), with their
    primary domain, by slug."""
    query = _visible(
        select(Commune, Domain.host)
        .outerjoin(Domain, (Domain.commune_id == Commune.id) & Domain.is_primary.is_(True))
        .order_by(Commune.slug),
        user,
    )
    if intercommunale_id is not None:
        query = query.where(Commune.intercommunale_id == intercommunale_id)
    if status is not None:
        query = query.where(Commune.status == status)
    return [(commune, host or "") for commune, host in (await session.execute(query)).tuples()]


async def commune_for(session: AsyncSession, user: ConsoleUser, slug: str) -> Commune:
    commune: Commune | None = await session.scalar(
        _visible(select(Commune).where(Commune.slug == slug), user)
    )
    if commune is None:
        raise NotFound(f"no commune {slug!r} for this person")
    return commune


async def visible_intercommunales(session: AsyncSession, user: ConsoleUser) -> list[Intercommunale]:
    query = select(Intercommunale).order_by(Intercommunale.slug)
    if not user.operator:
        query = query.where(Intercommunale.id.in_(user.intercommunale_ids))
    return list(await session.scalars(query))


async def intercommunale_for(session: AsyncSession, user: ConsoleUser, slug: str) -> Intercommunale:
    body = await session.scalar(select(Intercommunale).where(Intercommunale.slug == slug))
    if body is None or not user.administers(body.id):
        raise NotFound(f"no intercommunale {slug!r} for this person")
    return body


def _sees_body_of(user: ConsoleUser, intercommunale_id: UUID | None) -> bool:
    return user.operator or (intercommunale_id is not None and intercommunale_id in user.intercommunale_ids)


async def onboarding_for(session: AsyncSession, user: ConsoleUser, onboarding_id: UUID) -> Onboarding:
    onboarding = await session.get(Onboarding, onboarding_id)
    if onboarding is None or not _sees_body_of(user, onboarding.intercommunale_id):
        raise NotFound(f"no onboarding {onboarding_id} for this person")
    return onboarding


async def bulk_for(session: AsyncSession, user: ConsoleUser, bulk_id: UUID) -> BulkOnboarding:
    bulk = await session.get(BulkOnboarding, bulk_id)
    if bulk is None or not _sees_body_of(user, bulk.intercommunale_id):
        raise NotFound(f"no CSV import {bulk_id} for this person")
    return bulk


async def visible_onboardings(
    session: AsyncSession, user: ConsoleUser, *, limit: int = 50
) -> list[Onboarding]:
    query = select(Onboarding).order_by(Onboarding.created_at.desc()).limit(limit)
    if not user.operator:
        query = query.where(Onboarding.intercommunale_id.in_(user.intercommunale_ids))
    return list(await session.scalars(query))
