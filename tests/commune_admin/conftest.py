"""Fixtures of the commune admin console's tests: the harness over the suite's application,
two communes (``alpha`` in French, ``bravo`` in French and Dutch), an administrator of each,
and what a person reads on a page."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from perron.audit import AuditEntry
from perron.testing.harness import Harness, Person, Tenant


@pytest.fixture
async def perron(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    yield harness
    await harness.close()
    await harness.quiesce()


@pytest.fixture
async def two_tenants(perron: Harness) -> tuple[Tenant, Tenant]:
    return await perron.commune("alpha"), await perron.commune("bravo", languages=["fr", "nl"])


@pytest.fixture
async def alpha_admin(perron: Harness, two_tenants: tuple[Tenant, Tenant]) -> Person:
    return await perron.staff(two_tenants[0], roles=["admin"], name="Ada Admin")


@pytest.fixture
async def bravo_admin(perron: Harness, two_tenants: tuple[Tenant, Tenant]) -> Person:
    return await perron.staff(two_tenants[1], roles=["admin"], name="Bruno Beheerder")


def text(response: httpx.Response) -> str:
    """What a person reads on the page: tags out, entities decoded, spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", response.text)
    return re.sub(r"\s+", " ", html.unescape(without_tags))


async def entries(perron: Harness, tenant: Tenant, action: str | None = None) -> list[AuditEntry]:
    async with perron.transaction(tenant) as session:
        query = select(AuditEntry).order_by(AuditEntry.occurred_at, AuditEntry.id)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        return list(await session.scalars(query))
