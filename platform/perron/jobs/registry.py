"""Declaring background jobs.

A job is an ``async`` function taking a :class:`JobContext` and JSON-friendly keyword
arguments, declared with :func:`job`. It is queued with :func:`perron.jobs.enqueue` and run
by dramatiq, with the commune's scope opened from the ``tenant_id`` the message carries and
a session whose work is committed when the job returns. Jobs may run more than once
(at-least-once delivery): write them so that a second run changes nothing.

A job that raises is retried with exponential backoff (``min_backoff_ms`` doubling up to
``max_backoff_ms``, ``max_retries`` times); one that still fails, or that raises one of
Perron's own errors (:class:`perron.errors.Invalid`, ``NotFound``, ``Conflict``: the same
input would fail the same way), lands in the dead letters operators see with
``perron jobs failed``. A job owned by a module (``module=``) refuses to run for a commune
where that module is switched off.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

P = ParamSpec("P")
R = TypeVar("R")

PROGRESS_MESSAGE_LENGTH = 500

ProgressReporter = Callable[[int, int | None, str], Awaitable[None]]


@dataclass(frozen=True)
class JobContext:
    tenant_id: UUID | None
    """The commune the job works for; None for platform jobs."""
    session: AsyncSession
    """The job's unit of work, committed when the job returns (and at each progress report)."""
    message_id: str
    attempt: int
    """1 for the first run, 2 for the first retry, ..."""
    job_id: UUID | None = None
    """The id :func:`perron.jobs.status` knows this run by (what ``enqueue`` returned)."""
    reporter: ProgressReporter | None = field(default=None, repr=False, compare=False)

    async def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Say how far the job is: ``done`` of ``total`` steps, with a short message.

        The report is written in a short transaction that also commits the work the job did
        in :attr:`session` so far: what the status shows as done is done, a long job never
        holds one transaction (and SQLite's write lock) for its whole run, and a retry after
        a failure starts from the last report. Report between steps, never in the middle of
        a change that must be all or nothing.
        """
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise ValueError(f"progress: done must be a whole number of steps, 0 or more, not {done!r}")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < done):
            raise ValueError(
                f"progress: total must be a whole number no smaller than done ({done}), not {total!r}"
            )
        if not isinstance(message, str):
            raise ValueError("progress: message must be text")
        text = message.strip()
        if len(text) > PROGRESS_MESSAGE_LENGTH:
            text = text[: PROGRESS_MESSAGE_LENGTH - 1] + "…"
        if self.reporter is not None:
            await self.reporter(done, total, text)


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
    min_backoff_ms: int = 15_000
    max_backoff_ms: int = 60 * 60 * 1000


JOBS: dict[str, JobSpec] = {}


def job(
    name: str | None = None,
    *,
    queue: str = "default",
    per_tenant: bool = True,
    max_retries: int = 5,
    min_backoff_ms: int = 15_000,
    max_backoff_ms: int = 60 * 60 * 1000,
    time_limit_ms: int = 10 * 60 * 1000,
    module: str | None = None,
) -> Callable[[JobFunction[P]], JobFunction[P]]:
    """Declare a job. ``per_tenant`` jobs must be queued for a commune and run in its scope.

    A failed run is retried ``max_retries`` times, the n-th retry after a random delay
    between half and all of ``min_backoff_ms * 2**(n-1)``, never more than
    ``max_backoff_ms``. ``module`` names the module owning the job: it refuses to run for a
    commune where that module is not enabled.
    """
    if max_retries < 0:
        raise ValueError("max_retries cannot be negative")
    if min_backoff_ms < 1 or max_backoff_ms < min_backoff_ms:
        raise ValueError("backoff: 1 <= min_backoff_ms <= max_backoff_ms")
    if max_backoff_ms > 7 * 24 * 3600 * 1000:
        raise ValueError("max_backoff_ms cannot exceed 7 days (the broker's longest delay)")
    if time_limit_ms < 1:
        raise ValueError("time_limit_ms must be positive")

    def register(fn: JobFunction[P]) -> JobFunction[P]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"job {fn.__qualname__!r} must be an async function")
        job_name = name or f"{fn.__module__}.{fn.__qualname__}"
        existing = JOBS.get(job_name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"a job named {job_name!r} is already declared")
        JOBS[job_name] = JobSpec(
            job_name,
            fn,
            queue,
            per_tenant,
            max_retries,
            time_limit_ms,
            module,
            min_backoff_ms,
            max_backoff_ms,
        )
        fn.job_name = job_name  # type: ignore[attr-defined]
        return fn

    return register


def job_name_of(target: str | Callable[..., Any]) -> str:
    name = target if isinstance(target, str) else getattr(target, "job_name", None)
    if not isinstance(name, str) or name not in JOBS:
        raise LookupError(f"{target!r} is not a declared job")
    return name


def argument_problem(spec: JobSpec, arguments: Mapping[str, Any]) -> str | None:
    """Why a job cannot take these arguments (not JSON, or not what its function accepts)."""
    try:
        json.dumps(arguments)
    except (TypeError, ValueError) as error:
        return f"arguments of job {spec.name!r} must be JSON values (str, int, list, dict...): {error}"
    try:
        inspect.signature(spec.fn).bind(None, **arguments)
    except TypeError as error:
        return f"job {spec.name!r} does not take these arguments: {error}"
    return None
