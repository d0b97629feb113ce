"""Fixtures of the adoption tests: the harness, two communes with the news module, and
helpers to read and write activity days directly."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select, update

from perron.adoption.models import ActivityDay
from perron.adoption.recording import write_activity
from perron.identity.models import Account
from perron.testing.harness import Harness, Person, Tenant


@pytest.fixture
async def harness(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    harness.runtime.activity.forget()  # the memo belongs to the process, which outlives tests
    yield harness
    harness.runtime.activity.forget()
    await harness.close()
    await harness.settle()


@pytest.fixture
async def hannut(harness: Harness) -> Tenant:
    tenant = await harness.commune("hannut", languages=["fr", "nl"], names={"fr": "Hannut", "nl": "Hannuit"})
    await harness.enable(tenant, "news")
    return tenant


@pytest.fixture
async def eupen(harness: Harness) -> Tenant:
    tenant = await harness.commune("eupen", languages=["de", "fr"], names={"de": "Eupen", "fr": "Eupen"})
    await harness.enable(tenant, "news")
    return tenant


async def activity_rows(harness: Harness, tenant: Tenant) -> list[tuple[UUID, str, dt.date]]:
    async with harness.transaction(tenant) as session:
        rows = await session.execute(
            select(ActivityDay.account_id, ActivityDay.module, ActivityDay.day).order_by(
                ActivityDay.day, ActivityDay.module, ActivityDay.account_id
            )
        )
        return list(rows.tuples())


async def seed_activity(
    harness: Harness, tenant: Tenant, person: Person, entries: Iterable[tuple[str, dt.date]]
) -> None:
    """Activity days written as the recorder writes them: ``(module, day)``, "" for the site."""
    async with harness.transaction(tenant) as session:
        for module, day in entries:
            await write_activity(session, person.id, day, [module], tenant_id=tenant.id)


async def set_created_at(harness: Harness, tenant: Tenant, person: Person, moment: dt.datetime) -> None:
    async with harness.transaction(tenant) as session:
        await session.execute(update(Account).where(Account.id == person.id).values(created_at=moment))
