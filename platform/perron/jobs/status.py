"""What became of a queued job: one status record per job, from queued to done.

The record is written with the outbox row, in the transaction of the change that queued
the job (so a page can show "queued" at once), then updated as the job runs: ``running``
with its attempt, progress reports (:meth:`perron.jobs.JobContext.progress`), ``retrying``
after a failed attempt, and finally ``done`` (in the job's own last transaction, with its
result summary), ``failed`` (its dead letter written in the same transaction) or
``refused`` (a module job for a commune where the module is off).

A per-commune job's record is tenant-owned (:class:`JobRun`): a commune reads only its own,
under the three isolation locks like any commune data. A platform job's record
(:class:`PlatformJobRun`) holds no commune's data and is read in the platform scope, like
the platform audit log.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import Enum, Index, Integer, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, new_id, utcnow
from perron.db.repository import ensure_owned
from perron.db.scope import NoTenantScope, current_scope


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.REFUSED})
ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.RETRYING})

RESULT_TEXT_LENGTH = 500
RESULT_JSON_LENGTH = 4000


class _RunColumns:
    """Columns shared by the per-commune and the platform job records."""

    job: Mapped[str] = mapped_column(String(200))
    status: Mapped[JobState] = mapped_column(
        Enum(
            JobState,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="job_state",
            values_callable=lambda members: [member.value for member in members],
        ),
        default=JobState.QUEUED,
    )
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(500), default="", comment="the job's last progress note")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000), comment="the last failure, type: message")
    result: Mapped[Any] = mapped_column(JsonB, nullable=True, comment="what the job returned (a summary)")
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    first_failed_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobRun(TenantModel, _RunColumns, Base):
    """The status of one job queued for a commune; its id is the job's id."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_tenant_id_queued_at", "tenant_id", "queued_at"),)


class PlatformJobRun(_RunColumns, Base):
    """The status of one platform job (``per_tenant=False``)."""

    __tablename__ = "platform_job_runs"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)

    __table_args__ = (Index("ix_platform_job_runs_queued_at", "queued_at"),)


RunModel = type[JobRun] | type[PlatformJobRun]


def new_run(job_id: UUID, job: str, tenant_id: UUID | None) -> JobRun | PlatformJobRun:
    if tenant_id is None:
        return PlatformJobRun(id=job_id, job=job, status=JobState.QUEUED, queued_at=utcnow())
    return JobRun(tenant_id=tenant_id, id=job_id, job=job, status=JobState.QUEUED, queued_at=utcnow())


def result_summary(value: Any) -> Any:
    """What is kept of a job's return value: short JSON as is, anything else as short text."""
    if value is None:
        return None
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError):
        text = str(value)
    else:
        if len(encoded) <= RESULT_JSON_LENGTH:
            return value
        text = encoded
    return text if len(text) <= RESULT_TEXT_LENGTH else text[: RESULT_TEXT_LENGTH - 1] + "…"


@dataclass(frozen=True)
class JobStatus:
    """A job's status as the UI and the CLI show it."""

    id: UUID
    job: str
    commune_id: UUID | None
    status: JobState
    done: int
    total: int | None
    message: str
    attempts: int
    error: str | None
    result: Any
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int | None:
        """Whole percent done, when the job said how many steps it has."""
        if not self.total:
            return 100 if self.status is JobState.DONE else None
        return min(100, self.done * 100 // self.total)

    @classmethod
    def of(cls, run: JobRun | PlatformJobRun) -> JobStatus:
        return cls(
            id=run.id,
            job=run.job,
            commune_id=run.tenant_id if isinstance(run, JobRun) else None,
            status=JobState(run.status),
            done=run.progress_done,
            total=run.progress_total,
            message=run.message,
            attempts=run.attempts,
            error=run.error,
            result=run.result,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            updated_at=run.updated_at,
        )

    def as_json(self) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": str(self.id),
            "job": self.job,
            "commune_id": str(self.commune_id) if self.commune_id else None,
            "status": self.status.value,
            "progress": {"done": self.done, "total": self.total, "percent": self.percent},
            "message": self.message,
            "attempts": self.attempts,
            "error": self.error,
            "result": self.result,
            "queued_at": when(self.queued_at),
            "started_at": when(self.started_at),
            "finished_at": when(self.finished_at),
            "updated_at": when(self.updated_at),
        }


def _require_scope() -> bool:
    """True in the platform scope; False in a commune's; raises with no scope."""
    scope = current_scope()
    if scope is None:
        raise NoTenantScope("reading job statuses needs a scope")
    return scope.is_platform


async def status(session: AsyncSession, job_id: UUID) -> JobStatus | None:
    """The status of a job, or None when there is none this scope may see.

    In a commune's scope only that commune's jobs are found (the others' answer None, as an
    unknown id does); the platform scope finds every job, platform jobs included.
    """
    platform = _require_scope()
    run = await session.scalar(select(JobRun).where(JobRun.id == job_id))
    if run is not None:
        return JobStatus.of(ensure_owned(run))
    if platform:
        platform_run = await session.get(PlatformJobRun, job_id)
        if platform_run is not None:
            return JobStatus.of(platform_run)
    return None


async def list_statuses(
    session: AsyncSession,
    *,
    commune_id: UUID | None = None,
    active_only: bool = False,
    include_platform: bool = True,
    limit: int = 50,
) -> list[JobStatus]:
    """The latest jobs, newest first. A commune's scope lists its own jobs only; the
    platform scope lists every commune's (or ``commune_id``'s) and the platform's."""
    platform = _require_scope()
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = select(JobRun).order_by(JobRun.queued_at.desc()).limit(limit)
    if commune_id is not None:
        query = query.where(JobRun.tenant_id == commune_id)
    if active_only:
        query = query.where(JobRun.status.in_(ACTIVE))
    found = [JobStatus.of(ensure_owned(run)) for run in await session.scalars(query)]
    if platform and include_platform and commune_id is None:
        platform_query = select(PlatformJobRun).order_by(PlatformJobRun.queued_at.desc()).limit(limit)
        if active_only:
            platform_query = platform_query.where(PlatformJobRun.status.in_(ACTIVE))
        found += [JobStatus.of(run) for run in await session.scalars(platform_query)]
        found.sort(key=lambda item: item.queued_at, reverse=True)
    return found[:limit]


async def prune_finished(session: AsyncSession, before: dt.datetime) -> int:
    """Forget the records of jobs finished before ``before`` (platform scope)."""
    scope = current_scope()
    if scope is None or not scope.is_platform:
        raise NoTenantScope("pruning job records needs the platform scope")
    removed = 0
    for model in (JobRun, PlatformJobRun):
        outcome = await session.execute(
            delete(model).where(model.finished_at.is_not(None), model.finished_at < before)
        )
        removed += getattr(outcome, "rowcount", 0) or 0
    return removed
