"""How each commune is doing, for the operator's overview: its jobs' failures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.db.base import utcnow
from perron.jobs.deadletters import DeadLetter
from perron.jobs.status import JobRun, JobState

RECENT = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Health:
    failed_jobs: int = 0
    """Jobs that failed for good and wait for an operator (dead letters not retried)."""
    retrying_jobs: int = 0
    """Jobs waiting to be tried again right now."""
    last_failure: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.failed_jobs == 0 and self.retrying_jobs == 0


async def health_of(session: AsyncSession, commune_ids: list[UUID]) -> dict[UUID, Health]:
    """Each commune's health, in two grouped queries (platform scope)."""
    if not commune_ids:
        return {}
    rows = await session.execute(
        select(DeadLetter.commune_id, func.count(), func.max(DeadLetter.last_failed_at))
        .where(DeadLetter.commune_id.in_(commune_ids), DeadLetter.retried_at.is_(None))
        .group_by(DeadLetter.commune_id)
    )
    failed = {commune: (count, last) for commune, count, last in rows.tuples() if commune is not None}
    return _combine(commune_ids, failed, await _retrying(session, commune_ids))


async def _retrying(session: AsyncSession, commune_ids: list[UUID]) -> dict[UUID, int]:
    rows = await session.execute(
        select(JobRun.tenant_id, func.count())
        .where(
            JobRun.tenant_id.in_(commune_ids),
            JobRun.status == JobState.RETRYING,
            JobRun.updated_at > utcnow() - RECENT,
        )
        .group_by(JobRun.tenant_id)
    )
    return dict(rows.tuples().all())


def _combine(
    commune_ids: list[UUID], failed: dict[UUID, tuple[int, dt.datetime]], retrying: dict[UUID, int]
) -> dict[UUID, Health]:
    result = {}
    for commune_id in commune_ids:
        count, last = failed.get(commune_id, (0, None))
        result[commune_id] = Health(count, retrying.get(commune_id, 0), last)
    return result
