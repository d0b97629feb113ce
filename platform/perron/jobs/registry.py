"""Declaring background jobs.

A job is an ``async`` function taking a :class:`JobContext` and JSON-friendly keyword
arguments, declared with :func:`job`. It is queued with :func:`perron.jobs.enqueue` and run
by dramatiq, with the commune's scope opened from the ``tenant_id`` the message carries and
a session whose transaction commits when the job returns. Jobs may run more than once
(at-least-once delivery): write them so that a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class JobContext:
    tenant_id: UUID | None
    """The commune the job works for; None for platform jobs."""
    session: AsyncSession
    message_id: str
    attempt: int


JobFunction = Callable[Concatenate[JobContext, P], Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    queue: str
    per_tenant: bool
    max_retries: int
    time_limit_ms: int
    module: str | None


JOBS: dict[str, JobSpec] = {}


def job(
    name: str | None = None,
    *,
    queue: str = "default",
    per_tenant: bool = True,
    max_retries: int = 5,
    time_limit_ms: int = 10 * 60 * 1000,
    module: str | None = None,
) -> Callable[[JobFunction[P]], JobFunction[P]]:
    """Declare a job. ``per_tenant`` jobs must be queued for a commune and run in its scope."""

    def register(fn: JobFunction[P]) -> JobFunction[P]:
        job_name = name or f"{fn.__module__}.{fn.__qualname__}"
        existing = JOBS.get(job_name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"a job named {job_name!r} is already declared")
        JOBS[job_name] = JobSpec(job_name, fn, queue, per_tenant, max_retries, time_limit_ms, module)
        fn.job_name = job_name  # type: ignore[attr-defined]
        return fn

    return register


def job_name_of(target: str | Callable[..., Any]) -> str:
    name = target if isinstance(target, str) else getattr(target, "job_name", None)
    if not isinstance(name, str) or name not in JOBS:
        raise LookupError(f"{target!r} is not a declared job")
    return name
