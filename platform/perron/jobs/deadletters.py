"""Jobs that will not succeed by themselves: kept in the database for an operator.

A job lands here when its last retry failed, or at once when it was refused as invalid
(arguments its function does not take, a per-commune job without a commune, or one of
Perron's own errors raised by the job: the same input would fail the same way). The record
is written by the worker in the job's scope, in the same transaction that marks the job's
status ``failed``; it lives in the database, so operators see it in the embedded mode too,
where the broker's own dead-letter queue is memory that dies with the process.

Like the outbox, the table is written from a commune's scope but read only in the platform
scope (PostgreSQL enforces it with a write-only policy). Operators list, retry and discard
dead letters (``perron jobs failed|retry|discard``); each change is in the platform audit log.
"""

from __future__ import annotations

import datetime as dt
import traceback
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Enum, ForeignKey, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from perron import audit
from perron.db.base import Base, new_id, utcnow
from perron.db.scope import CrossTenantAccess, NoTenantScope, current_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.jobs.outbox import QueuedJob, queue_message
from perron.jobs.registry import JOBS, argument_problem

TRACEBACK_LENGTH = 4000
ERROR_MESSAGE_LENGTH = 2000


class DeadLetterReason(StrEnum):
    EXHAUSTED = "exhausted"
    """Every retry failed."""
    INVALID = "invalid"
    """Refused without retrying: the same input would fail the same way."""


class DeadLetter(Base):
    """One job that failed for good, with what an operator needs to decide what to do."""

    __tablename__ = "dead_letters"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    job_id: Mapped[UUID | None] = mapped_column(unique=True, comment="the failed job's id (its status)")
    commune_id: Mapped[UUID | None] = mapped_column(ForeignKey("communes.id", ondelete="CASCADE"), index=True)
    job: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(80))
    arguments: Mapped[dict[str, Any]]
    reason: Mapped[DeadLetterReason] = mapped_column(
        Enum(
            DeadLetterReason,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="dead_letter_reason",
            values_callable=lambda members: [member.value for member in members],
        )
    )
    error_type: Mapped[str] = mapped_column(String(200))
    error_message: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text, comment="the end of the last failure's traceback")
    attempts: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[dt.datetime]
    last_failed_at: Mapped[dt.datetime] = mapped_column(index=True)
    retried_at: Mapped[dt.datetime | None]
    retried_as: Mapped[UUID | None] = mapped_column(
        comment="the job queued when an operator retried this one"
    )

    def as_json(self, *, commune: str | None = None, full: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "job_id": str(self.job_id) if self.job_id else None,
            "job": self.job,
            "commune": commune,
            "commune_id": str(self.commune_id) if self.commune_id else None,
            "reason": DeadLetterReason(self.reason).value,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "first_failed_at": self.first_failed_at.isoformat(),
            "last_failed_at": self.last_failed_at.isoformat(),
            "retried_at": self.retried_at.isoformat() if self.retried_at else None,
            "retried_as": str(self.retried_as) if self.retried_as else None,
            "arguments": self.arguments,
        }
        if full:
            data["queue"] = self.queue
            data["traceback"] = self.traceback
        return data


def error_type_name(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def traceback_excerpt(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error, limit=-12))
    return text if len(text) <= TRACEBACK_LENGTH else "…" + text[-(TRACEBACK_LENGTH - 1) :]


def dead_letter_for(
    *,
    job_id: UUID | None,
    commune_id: UUID | None,
    job: str,
    queue: str,
    arguments: dict[str, Any],
    reason: DeadLetterReason,
    error: BaseException,
    attempts: int,
    first_failed_at: dt.datetime,
    last_failed_at: dt.datetime,
) -> DeadLetter:
    message = str(error) or error_type_name(error)
    if len(message) > ERROR_MESSAGE_LENGTH:
        message = message[: ERROR_MESSAGE_LENGTH - 1] + "…"
    return DeadLetter(
        id=new_id(),
        job_id=job_id,
        commune_id=commune_id,
        job=job,
        queue=queue,
        arguments=arguments,
        reason=reason,
        error_type=error_type_name(error),
        error_message=message,
        traceback=traceback_excerpt(error),
        attempts=attempts,
        first_failed_at=first_failed_at,
        last_failed_at=last_failed_at,
    )


def _require_platform(what: str) -> None:
    scope = current_scope()
    if scope is None:
        raise NoTenantScope(f"{what} needs the platform scope")
    if not scope.is_platform:
        raise CrossTenantAccess(f"{what} is an operator's task: a commune's scope cannot do it")


async def list_dead_letters(
    session: AsyncSession,
    *,
    commune_id: UUID | None = None,
    include_retried: bool = False,
    limit: int = 500,
) -> list[DeadLetter]:
    """Dead letters, the latest failure first (platform scope)."""
    _require_platform("reading dead letters")
    query = select(DeadLetter).order_by(DeadLetter.last_failed_at.desc()).limit(limit)
    if commune_id is not None:
        query = query.where(DeadLetter.commune_id == commune_id)
    if not include_retried:
        query = query.where(DeadLetter.retried_at.is_(None))
    return list(await session.scalars(query))


async def get_dead_letter(session: AsyncSession, dead_letter_id: UUID) -> DeadLetter:
    _require_platform("reading dead letters")
    found = await session.get(DeadLetter, dead_letter_id)
    if found is None:
        raise NotFound(f"no dead letter has the id {dead_letter_id}")
    return found


async def retry_dead_letter(session: AsyncSession, dead_letter_id: UUID) -> QueuedJob:
    """Queue the job again, as a new job, through the outbox (after commit)."""
    letter = await get_dead_letter(session, dead_letter_id)
    if letter.retried_at is not None:
        raise Conflict(
            f"dead letter {letter.id} was already retried on {letter.retried_at:%Y-%m-%d %H:%M} UTC "
            f"as job {letter.retried_as}"
        )
    spec = JOBS.get(letter.job)
    if spec is not None:
        problem = argument_problem(spec, letter.arguments)
        if problem is not None:
            raise Invalid("arguments", f"{problem}; retrying would fail the same way, discard it instead")
        if spec.per_tenant != (letter.commune_id is not None):
            raise Invalid("job", f"job {letter.job!r} no longer works the way it was queued; discard it")
    queued = queue_message(
        session,
        name=letter.job,
        queue=spec.queue if spec is not None else letter.queue,
        tenant_id=letter.commune_id,
        arguments=letter.arguments,
    )
    letter.retried_at = utcnow()
    letter.retried_as = queued.id
    audit.record_platform(
        session,
        action="job.retry",
        object_type="dead_letter",
        object_id=letter.id,
        changes={
            "job": [letter.job, letter.job],
            "commune_id": [_text(letter.commune_id), _text(letter.commune_id)],
            "retried_as": [None, str(queued.id)],
        },
    )
    return queued


async def discard_dead_letter(session: AsyncSession, dead_letter_id: UUID) -> DeadLetter:
    """Forget a dead letter for good (its job is not run)."""
    letter = await get_dead_letter(session, dead_letter_id)
    await session.delete(letter)
    audit.record_platform(
        session,
        action="job.discard",
        object_type="dead_letter",
        object_id=letter.id,
        changes={
            "job": [letter.job, None],
            "commune_id": [_text(letter.commune_id), None],
            "error": [f"{letter.error_type}: {letter.error_message}"[:500], None],
        },
    )
    return letter


def _text(value: UUID | None) -> str | None:
    return str(value) if value is not None else None
