"""The one way to queue work: a row written in the same transaction as the change.

:func:`enqueue` adds an :class:`OutboxMessage` and the job's status record (``queued``) to
the caller's session. A rolled-back change queues nothing; a committed one wakes the relay
(:class:`perron.jobs.runtime.Jobs`), which hands the message to the broker and deletes the
row. If the broker is down, the row waits and the relay retries, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, new_id, utcnow
from perron.db.hooks import after_commit
from perron.db.scope import CrossTenantAccess, NoTenantScope, current_scope
from perron.jobs.registry import JOBS, argument_problem, job_name_of
from perron.jobs.status import new_run


class OutboxMessage(Base):
    """A job waiting to be handed to the broker. Only the platform's relay reads these."""

    __tablename__ = "outbox_messages"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    commune_id: Mapped[UUID | None] = mapped_column(ForeignKey("communes.id", ondelete="CASCADE"), index=True)
    job: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(80))
    arguments: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    relay_attempts: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class QueuedJob:
    """A job queued by :func:`enqueue`; ``id`` is what :func:`perron.jobs.status` takes."""

    id: UUID
    job: str
    tenant_id: UUID | None


_wakers: list[Callable[[], None]] = []


def on_enqueued(waker: Callable[[], None]) -> Callable[[], None]:
    """Be told (thread-safely, after commit) that messages are waiting."""
    _wakers.append(waker)
    return lambda: _wakers.remove(waker)


def _wake_relays() -> None:
    for waker in list(_wakers):
        waker()


def enqueue(
    session: AsyncSession,
    target: str | Callable[..., Any],
    /,
    *,
    tenant_id: UUID | None = None,
    **arguments: Any,
) -> QueuedJob:
    """Queue a job for after the commit. Per-commune jobs default to the commune in scope.

    Returns the queued job; its ``id`` finds the job's status (``queued`` from the commit on).
    """
    name = job_name_of(target)
    spec = JOBS[name]
    scope = current_scope()
    if scope is None:
        raise NoTenantScope("queueing a job needs a scope")
    if spec.per_tenant:
        tenant_id = tenant_id or scope.tenant_id
        if tenant_id is None:
            raise NoTenantScope(f"job {name!r} works for one commune: give tenant_id in the platform scope")
        if not scope.is_platform and tenant_id != scope.tenant_id:
            raise CrossTenantAccess(f"job {name!r} cannot be queued for another commune")
    elif tenant_id is not None:
        raise ValueError(f"job {name!r} is a platform job; it takes no tenant_id")
    problem = argument_problem(spec, arguments)
    if problem is not None:
        raise TypeError(problem)
    return queue_message(session, name=name, queue=spec.queue, tenant_id=tenant_id, arguments=arguments)


def queue_message(
    session: AsyncSession, *, name: str, queue: str, tenant_id: UUID | None, arguments: dict[str, Any]
) -> QueuedJob:
    """Write the outbox row and the status record of an already checked job."""
    job_id = new_id()
    session.add(OutboxMessage(id=job_id, commune_id=tenant_id, job=name, queue=queue, arguments=arguments))
    session.add(new_run(job_id, name, tenant_id))
    after_commit(session, _wake_relays)
    return QueuedJob(job_id, name, tenant_id)
