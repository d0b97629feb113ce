"""Two communes, ``alpha`` and ``bravo``, each holding a row of every tenant-owned model.

Every attack in this folder runs as ``alpha`` and aims at ``bravo``'s rows. ``FACTORIES``
must cover every tenant-owned table (``test_every_tenant_table_is_attacked`` fails
otherwise), so a new table cannot escape the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import AuditEntry
from perron.db.base import Base
from perron.db.engine import Database
from perron.db.guard import LOCKS
from perron.db.repository import TenantRepository
from perron.db.scope import platform_scope
from perron.jobs.status import JobRun, JobState
from perron.tenancy.models import Branding, CommuneSettings, ModuleActivation
from tests.conftest import POSTGRES, MakeCommune
from tests.isolation.factories import MORE_FACTORIES


async def _branding(session: AsyncSession, tenant_id: UUID) -> Base:
    found = await session.scalar(select(Branding).where(Branding.tenant_id == tenant_id))
    assert found is not None
    return found


async def _module(session: AsyncSession, tenant_id: UUID) -> Base:
    row = ModuleActivation(tenant_id=tenant_id, module="news", enabled=True)
    session.add(row)
    return row


async def _settings(session: AsyncSession, tenant_id: UUID) -> Base:
    row = CommuneSettings(tenant_id=tenant_id, namespace="core", values={"contact_phone": str(tenant_id)[:8]})
    session.add(row)
    return row


async def _audit(session: AsyncSession, tenant_id: UUID) -> Base:
    row = AuditEntry(
        tenant_id=tenant_id, actor_kind="system", actor_label="seed", action="seed.row", object_type="seed"
    )
    session.add(row)
    return row


async def _job_run(session: AsyncSession, tenant_id: UUID) -> Base:
    row = JobRun(tenant_id=tenant_id, job="seed.job", status=JobState.RUNNING, message="seeded")
    session.add(row)
    return row


Factory = Callable[[AsyncSession, UUID], Any]
FACTORIES: dict[type[Base], Factory] = {
    Branding: _branding,
    ModuleActivation: _module,
    CommuneSettings: _settings,
    AuditEntry: _audit,
    JobRun: _job_run,
    **MORE_FACTORIES,
}


def primary_key(row: Base) -> dict[str, Any]:
    mapper = inspect(type(row))
    return {column.key: getattr(row, column.key) for column in mapper.primary_key}


def repository_for(model: type[Base], session: AsyncSession) -> TenantRepository[Any]:
    repository_class = type(f"{model.__name__}Repository", (TenantRepository,), {"model_type": model})
    return repository_class(session=session)


@dataclass
class Seeded:
    alpha: UUID
    bravo: UUID
    rows: dict[type[Base], dict[UUID, dict[str, Any]]]
    """model -> commune id -> primary key of that commune's row"""

    def key(self, model: type[Base], commune: UUID) -> dict[str, Any]:
        return self.rows[model][commune]


@pytest.fixture
async def seeded(make_commune: MakeCommune, database: Database) -> Seeded:
    alpha = await make_commune("alpha")
    bravo = await make_commune("bravo")
    rows: dict[type[Base], dict[UUID, dict[str, Any]]] = {}
    with platform_scope("test: seed both communes"):
        async with database.transaction() as session:
            for model, factory in FACTORIES.items():
                rows[model] = {}
                for commune in (alpha, bravo):
                    row = await factory(session, commune.id)
                    await session.flush()
                    rows[model][commune.id] = primary_key(row)
    return Seeded(alpha.id, bravo.id, rows)


LOCK_NAMES = ("orm", "rls", "service")


@contextmanager
def only_lock(name: str | None) -> Iterator[None]:
    """Switch every lock off but ``name`` (None: all off, to show the attack would work)."""
    for lock in LOCK_NAMES:
        setattr(LOCKS, lock, lock == name)
    try:
        yield
    finally:
        for lock in LOCK_NAMES:
            setattr(LOCKS, lock, True)


def locks_available() -> list[str]:
    """RLS exists only on PostgreSQL."""
    return list(LOCK_NAMES) if POSTGRES else ["orm", "service"]
