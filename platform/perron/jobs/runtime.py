"""dramatiq wiring: the broker, the actors, the worker, and the outbox relay.

* With ``PERRON_REDIS_URL``, dramatiq's Redis broker; ``perron worker`` processes run jobs.
* Without it (the embedded default), an in-memory broker and worker threads inside the app
  process. The outbox row of a job is deleted only once the broker holds the message, so
  a stopped process loses at most the jobs already handed over to its in-memory queue.

Each :class:`Jobs` runs its jobs' coroutines on an event loop thread of its own (not
dramatiq's process-wide one), so two of them can live in one process.

What a run does, in order: refuse a message that cannot be right (dead letter, no retry);
refuse a module's job where the module is off (status ``refused``); skip a job whose status
says it already finished (a redelivered message); mark it ``running``; run it with its
session, marking it ``done`` in its last transaction. A failure rolls the job's work back
(up to its last progress report), marks it ``retrying`` and lets dramatiq retry it with
backoff; the last failure writes the dead letter and marks it ``failed`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq
import structlog
from dramatiq.asyncio import EventLoopThread
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from prometheus_client import Counter
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import Actor, ActorKind, acting_as
from perron.config import Settings
from perron.db.base import utcnow
from perron.db.engine import WRITE_OPTION, Database
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import PerronError
from perron.jobs.deadletters import DeadLetterReason, dead_letter_for, error_type_name
from perron.jobs.outbox import OutboxMessage, on_enqueued
from perron.jobs.registry import JOBS, JobContext, JobSpec, argument_problem
from perron.jobs.status import (
    FINISHED,
    JobRun,
    JobState,
    PlatformJobRun,
    new_run,
    prune_finished,
    result_summary,
)
from perron.logging import get_logger
from perron.tenancy.models import ModuleActivation

log = get_logger("perron.jobs")

JOBS_RUN = Counter("perron_jobs_total", "Jobs run", ["job", "outcome"])
RELAYED = Counter("perron_outbox_relayed_total", "Outbox messages handed to the broker")
DEAD_LETTERS = Counter("perron_jobs_dead_letters_total", "Jobs that failed for good", ["job", "reason"])

RELAY_RETRY_FIRST = 0.25
"""Seconds before the relay tries again after its first failure; doubled each time..."""
RELAY_RETRY_MAX = 5.0
"""... up to this: a broker back from an outage gets its messages within a few seconds."""
RUN_RETENTION = dt.timedelta(days=30)
"""How long the status of a finished job is kept."""
PRUNE_EVERY = 3600.0


class InvalidJobMessage(Exception):
    """A message no run of the job could accept (refused without retrying)."""


def relay_delay(failures: int, interval: float) -> float:
    """Seconds the relay waits before its next sweep after ``failures`` failures in a row.

    Without failures it sweeps every ``interval`` and at once when a commit wakes it. After
    a failure it waits 0.25 s, 0.5 s, 1 s, ... up to :data:`RELAY_RETRY_MAX` whatever wakes
    it: an outage costs one attempt every few seconds, and recovery takes at most that long.
    """
    if failures <= 0:
        return interval
    return float(min(RELAY_RETRY_MAX, RELAY_RETRY_FIRST * 2 ** min(failures - 1, 16)))


class _LoopDatabases:
    """Async engines belong to one event loop; jobs run on the job loop thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._by_loop: dict[int, Database] = {}
        self._lock = threading.Lock()

    def current(self) -> Database:
        loop = asyncio.get_running_loop()
        with self._lock:
            database = self._by_loop.get(id(loop))
            if database is None:
                database = Database(self.settings.database, pool_size=self.settings.database_pool_size)
                self._by_loop[id(loop)] = database
            return database

    async def dispose_all(self) -> None:
        for database in self._by_loop.values():
            await database.dispose()
        self._by_loop.clear()


@dataclass(frozen=True)
class _Delivery:
    """One delivery of a message to an actor, as the broker and the Retries middleware see it."""

    message_id: str
    job_id: UUID | None
    attempt: int
    final: bool
    """No retry follows if this attempt fails."""

    @classmethod
    def of(cls, message: dramatiq.Message[Any] | None, spec: JobSpec) -> _Delivery:
        if message is None:
            return cls("direct", None, 1, True)
        retries = int(message.options.get("retries", 0))
        max_retries = int(message.options.get("max_retries", spec.max_retries))
        return cls(message.message_id, _uuid_or_none(message.message_id), retries + 1, retries >= max_retries)


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _run_model(commune: UUID | None) -> type[JobRun] | type[PlatformJobRun]:
    return JobRun if commune is not None else PlatformJobRun


async def _get_run(
    session: AsyncSession, commune: UUID | None, job_id: UUID | None
) -> JobRun | PlatformJobRun | None:
    if job_id is None:
        return None
    if commune is not None:
        return await session.get(JobRun, (commune, job_id))
    return await session.get(PlatformJobRun, job_id)


class Jobs:
    """The process's job machinery: broker with one actor per declared job, optional
    in-process worker, and the outbox relay."""

    def __init__(self, settings: Settings, database: Database, *, run_worker: bool | None = None) -> None:
        self.settings = settings
        self.database = database
        self.databases = _LoopDatabases(settings)
        self.broker = self._create_broker(settings)
        self.run_worker = settings.jobs_in_process if run_worker is None else run_worker
        self.worker: dramatiq.Worker | None = None
        self._loop_thread: EventLoopThread | None = None
        self._wake: asyncio.Event | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._next_prune = 0.0

    @staticmethod
    def _create_broker(settings: Settings) -> dramatiq.Broker:
        broker: dramatiq.Broker
        if settings.redis_url:
            from perron.jobs.broker import RecoveringRedisBroker

            broker = RecoveringRedisBroker(url=settings.redis_url, namespace="perron")
        else:
            broker = StubBroker()
        broker.add_middleware(CurrentMessage())
        return broker

    def declare_actors(self) -> None:
        for spec in JOBS.values():
            if spec.name in self.broker.actors:
                continue
            dramatiq.Actor(
                self._actor_function(spec),
                broker=self.broker,
                actor_name=spec.name,
                queue_name=spec.queue,
                priority=0,
                options={
                    "max_retries": spec.max_retries,
                    "min_backoff": spec.min_backoff_ms,
                    "max_backoff": spec.max_backoff_ms,
                    "time_limit": spec.time_limit_ms,
                },
            )

    # -- running jobs -------------------------------------------------------------------

    def _actor_function(self, spec: JobSpec) -> Any:
        def run(tenant_id: str | None = None, arguments: dict[str, Any] | None = None) -> None:
            loop_thread = self._loop_thread
            if loop_thread is None or not loop_thread.is_alive():
                raise RuntimeError("this process runs no job worker: its job event loop is not started")
            # The module registry may have completed the declaration since (its module name).
            current = JOBS.get(spec.name, spec)
            delivery = _Delivery.of(CurrentMessage.get_current_message(), current)
            loop_thread.run_coroutine(self._run(current, delivery, tenant_id, arguments or {}))

        run.__name__ = spec.name.replace(".", "_")
        return run

    async def _run(
        self, spec: JobSpec, delivery: _Delivery, tenant_id: str | None, arguments: dict[str, Any]
    ) -> None:
        database = self.databases.current()
        structlog.contextvars.bind_contextvars(
            job=spec.name, tenant_id=tenant_id, message_id=delivery.message_id, attempt=delivery.attempt
        )
        actor = Actor(ActorKind.SYSTEM, f"job:{spec.name}")
        commune = _uuid_or_none(tenant_id)
        if (tenant_id is not None and commune is None) or spec.per_tenant != (commune is not None):
            problem = (
                "a per-commune job was sent without a commune"
                if spec.per_tenant
                else "a platform job was sent for a commune"
            )
            with platform_scope(f"record the refused job {spec.name}"), acting_as(actor):
                error = InvalidJobMessage(problem)
                if not await self._failed(
                    database, spec, None, delivery, arguments, error, DeadLetterReason.INVALID, final=True
                ):
                    raise error
            return
        assert commune is not None or not spec.per_tenant
        scope = (
            tenant_scope(commune) if commune is not None else platform_scope(f"run platform job {spec.name}")
        )
        with scope, acting_as(actor):
            await self._run_in_scope(database, spec, commune, delivery, arguments)

    async def _run_in_scope(
        self,
        database: Database,
        spec: JobSpec,
        commune: UUID | None,
        delivery: _Delivery,
        arguments: dict[str, Any],
    ) -> None:
        if await self._finished(database, commune, delivery):
            JOBS_RUN.labels(spec.name, "skipped").inc()
            log.info("job.already_finished")
            return
        problem = argument_problem(spec, arguments)
        if problem is not None:
            invalid = InvalidJobMessage(problem)
            if not await self._failed(
                database, spec, commune, delivery, arguments, invalid, DeadLetterReason.INVALID, final=True
            ):
                raise invalid
            return
        if spec.module and commune is not None and not await self._module_enabled(database, spec.module):
            await self._refuse(database, spec, commune, delivery)
            return
        if not await self._mark_running(database, spec, commune, delivery):
            JOBS_RUN.labels(spec.name, "skipped").inc()
            log.info("job.already_finished")
            return
        try:
            await self._execute(database, spec, commune, delivery, arguments)
        except Exception as error:
            # A job that refused its input in words (a PerronError, not a temporary one) would
            # fail the same way again: no retry.
            refused = isinstance(error, PerronError) and not error.temporary
            if not await self._failed(
                database,
                spec,
                commune,
                delivery,
                arguments,
                error,
                DeadLetterReason.INVALID if refused else DeadLetterReason.EXHAUSTED,
                final=refused or delivery.final,
            ):
                raise
        except asyncio.CancelledError:
            # dramatiq interrupts a job past its time limit by cancelling it.
            interrupted = TimeoutError(f"the job ran past its time limit of {spec.time_limit_ms / 1000:g} s")
            await self._failed(
                database,
                spec,
                commune,
                delivery,
                arguments,
                interrupted,
                DeadLetterReason.EXHAUSTED,
                final=delivery.final,
            )
            raise

    async def _execute(
        self,
        database: Database,
        spec: JobSpec,
        commune: UUID | None,
        delivery: _Delivery,
        arguments: dict[str, Any],
    ) -> None:
        # Every transaction of the job's session is a write transaction (on SQLite it takes
        # the write lock at its first statement, not before the job starts).
        writer = database.engine.execution_options(**{WRITE_OPTION: True})
        async with database.sessionmaker(bind=writer) as session:
            reporter = functools.partial(self._report, session, commune, delivery.job_id)
            context = JobContext(
                commune, session, delivery.message_id, delivery.attempt, delivery.job_id, reporter
            )
            result = await spec.fn(context, **arguments)
            if delivery.job_id is not None:
                model = _run_model(commune)
                now = utcnow()
                await session.execute(
                    update(model)
                    .where(model.id == delivery.job_id)
                    .values(
                        status=JobState.DONE,
                        result=result_summary(result),
                        progress_done=func.coalesce(model.progress_total, model.progress_done),
                        finished_at=now,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
            await session.commit()
        JOBS_RUN.labels(spec.name, "done").inc()
        log.debug("job.done")

    @staticmethod
    async def _report(
        session: AsyncSession,
        commune: UUID | None,
        job_id: UUID | None,
        done: int,
        total: int | None,
        message: str,
    ) -> None:
        if job_id is not None:
            model = _run_model(commune)
            await session.execute(
                update(model)
                .where(model.id == job_id)
                .values(progress_done=done, progress_total=total, message=message, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        await session.commit()

    @staticmethod
    async def _finished(database: Database, commune: UUID | None, delivery: _Delivery) -> bool:
        """Whether the job's status says it finished already (this is a redelivery)."""
        if delivery.job_id is None:
            return False
        async with database.session() as session:
            run = await _get_run(session, commune, delivery.job_id)
            return run is not None and JobState(run.status) in FINISHED

    @staticmethod
    async def _module_enabled(database: Database, module: str) -> bool:
        async with database.session() as session:
            enabled = await session.scalar(
                select(ModuleActivation.enabled).where(ModuleActivation.module == module)
            )
        return enabled is True

    @staticmethod
    async def _mark_running(
        database: Database, spec: JobSpec, commune: UUID | None, delivery: _Delivery
    ) -> bool:
        """Mark the job running; False when its status says it already finished."""
        if delivery.job_id is None:
            return True
        async with database.transaction() as session:
            run = await _get_run(session, commune, delivery.job_id)
            if run is None:
                run = new_run(delivery.job_id, spec.name, commune)
                session.add(run)
            elif JobState(run.status) in FINISHED:
                return False
            run.status = JobState.RUNNING
            run.attempts = delivery.attempt
            run.started_at = run.started_at or utcnow()
        return True

    @staticmethod
    async def _refuse(database: Database, spec: JobSpec, commune: UUID, delivery: _Delivery) -> None:
        reason = f"module {spec.module!r} is not enabled for this commune"
        async with database.transaction() as session:
            run = await _get_run(session, commune, delivery.job_id)
            if run is not None and JobState(run.status) not in FINISHED:
                run.status = JobState.REFUSED
                run.message = reason
                run.attempts = delivery.attempt
                run.finished_at = utcnow()
        JOBS_RUN.labels(spec.name, "refused").inc()
        log.warning("job.refused", reason=reason, module=spec.module)

    async def _failed(
        self,
        database: Database,
        spec: JobSpec,
        commune: UUID | None,
        delivery: _Delivery,
        arguments: dict[str, Any],
        error: BaseException,
        reason: DeadLetterReason,
        *,
        final: bool,
    ) -> bool:
        """Record a failed attempt; True when it was the last and its dead letter is written."""
        described = f"{error_type_name(error)}: {error}"
        if final:
            JOBS_RUN.labels(spec.name, "invalid" if reason is DeadLetterReason.INVALID else "failed").inc()
            log.error("job.dead_letter", reason=reason.value, error=_short(described, 500), exc_info=error)
        else:
            JOBS_RUN.labels(spec.name, "retrying").inc()
            log.warning("job.retrying", error=_short(described, 500), exc_info=error)
        try:
            async with database.transaction() as session:
                now = utcnow()
                first_failed_at = now
                run = await _get_run(session, commune, delivery.job_id)
                if run is not None:
                    first_failed_at = run.first_failed_at or now
                    run.first_failed_at = first_failed_at
                    run.attempts = max(run.attempts, delivery.attempt)
                    run.error = _short(described, 1000)
                    run.status = JobState.FAILED if final else JobState.RETRYING
                    if final:
                        run.finished_at = now
                if final:
                    session.add(
                        dead_letter_for(
                            job_id=delivery.job_id,
                            commune_id=commune,
                            job=spec.name,
                            queue=spec.queue,
                            arguments=arguments,
                            reason=reason,
                            error=error,
                            attempts=delivery.attempt,
                            first_failed_at=first_failed_at,
                            last_failed_at=now,
                        )
                    )
        except Exception:
            log.exception("job.failure_not_recorded", final=final)
            return False
        if final:
            DEAD_LETTERS.labels(spec.name, reason.value).inc()
        return final

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, *, relay_interval: float = 2.0) -> None:
        self.declare_actors()
        if self.run_worker:
            loop_thread = EventLoopThread(logging.getLogger("perron.jobs.loop"))
            loop_thread.daemon = True
            loop_thread.name = "perron-jobs-loop"
            loop_thread.start(timeout=5.0)
            self._loop_thread = loop_thread
            # dramatiq's own command line announces the process boot; its TimeLimit middleware
            # starts the thread that enforces time limits only then.
            self.broker.emit_after("process_boot")
            self.worker = dramatiq.Worker(
                self.broker, worker_threads=self.settings.worker_threads, worker_timeout=100
            )
            self.worker.start()
        self.start_relay(relay_interval)

    def start_relay(self, interval: float = 2.0) -> None:
        """Relay the outbox in the background: at once after each commit that queued a job,
        and every ``interval`` seconds for other processes' leftovers."""
        if self._relay_task is not None:
            return
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        wake = self._wake

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self._unsubscribe = on_enqueued(wake_up)
        self._relay_task = asyncio.create_task(self._relay_forever(interval), name="perron-outbox-relay")

    async def stop_relay(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
            self._relay_task = None

    async def stop(self) -> None:
        await self.stop_relay()
        with contextlib.suppress(Exception):
            await self.relay_once()
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
            self.worker = None
        loop_thread, self._loop_thread = self._loop_thread, None
        if loop_thread is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(loop_thread.run_coroutine, self.databases.dispose_all())
            await asyncio.to_thread(loop_thread.stop)
        self.broker.close()

    # -- the outbox relay ---------------------------------------------------------------

    async def relay_once(self, limit: int = 200) -> int:
        """Hand waiting outbox messages to the broker; returns how many were handed over.

        If the broker fails midway, the messages handed over so far are still removed from
        the outbox (committed) before the error is raised; the rest wait for the next sweep.
        """
        postgres = self.database.dialect == "postgresql"
        failure: Exception | None = None
        with platform_scope("relay queued jobs to the broker"):
            # Most sweeps find nothing: look before taking a write transaction (on SQLite
            # that is the database's one write lock).
            async with self.database.session() as session:
                if await session.scalar(select(OutboxMessage.id).limit(1)) is None:
                    return 0
            async with self.database.transaction() as session:
                query = select(OutboxMessage).order_by(OutboxMessage.created_at).limit(limit)
                if postgres:
                    query = query.with_for_update(skip_locked=True)
                rows = list(await session.scalars(query))
                sent = 0
                for row in rows:
                    if row.job not in self.broker.actors:
                        row.relay_attempts += 1
                        log.error("outbox.unknown_job", job=row.job, message_id=str(row.id))
                        continue
                    message: dramatiq.Message[Any] = dramatiq.Message(
                        queue_name=row.queue,
                        actor_name=row.job,
                        args=(),
                        kwargs={
                            "tenant_id": str(row.commune_id) if row.commune_id else None,
                            "arguments": row.arguments,
                        },
                        options={},
                        message_id=str(row.id),
                    )
                    try:
                        await asyncio.to_thread(self.broker.enqueue, message)
                    except Exception as error:
                        failure = error
                        break
                    await session.delete(row)
                    sent += 1
        RELAYED.inc(sent)
        if failure is not None:
            raise failure
        return sent

    async def _relay_forever(self, interval: float) -> None:
        assert self._wake is not None
        failures = 0
        while True:
            if failures:
                # A failing broker is given time, whatever commits happen meanwhile.
                await asyncio.sleep(relay_delay(failures, interval))
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await self._wake.wait()
            self._wake.clear()
            try:
                while await self.relay_once() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning(
                    "outbox.relay_failed",
                    failures=failures,
                    retry_in=relay_delay(failures, interval),
                    exc_info=failures == 1,
                )
            else:
                if failures:
                    log.info("outbox.relay_recovered", failures=failures)
                failures = 0
            await self._prune_now_and_then()

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY
        try:
            await self.prune_runs()
        except Exception:
            log.warning("jobs.prune_failed", exc_info=True)

    async def prune_runs(self, older_than: dt.timedelta = RUN_RETENTION) -> int:
        """Forget the status records of jobs that finished more than ``older_than`` ago."""
        before = utcnow() - older_than
        with platform_scope("forget the status of long-finished jobs"):
            async with self.database.session() as session:
                waiting = await session.scalar(
                    select(JobRun.id).where(JobRun.finished_at < before).limit(1)
                ) or await session.scalar(
                    select(PlatformJobRun.id).where(PlatformJobRun.finished_at < before).limit(1)
                )
            if waiting is None:
                return 0
            async with self.database.transaction() as session:
                return await prune_finished(session, before)

    # -- health and tests ---------------------------------------------------------------

    def ping_broker(self) -> None:
        """Raise when the broker cannot take messages (readiness)."""
        if self.run_worker and (self._loop_thread is None or not self._loop_thread.is_alive()):
            raise RuntimeError("the job event loop is not running")
        if isinstance(self.broker, StubBroker):
            if self.run_worker and (
                self.worker is None or not any(t.is_alive() for t in self.worker.workers)
            ):
                raise RuntimeError("the in-process job worker is not running")
            return
        self.broker.client.ping()  # type: ignore[attr-defined]

    def join(self, timeout_ms: int = 10_000) -> None:
        """Wait until every queue is empty (tests and the embedded mode's shutdown)."""
        if isinstance(self.broker, StubBroker):
            for queue in list(self.broker.queues):
                if not queue.endswith(".DQ") and not queue.endswith(".XQ"):
                    self.broker.join(queue, timeout=timeout_ms, fail_fast=True)
            if self.worker is not None:
                self.worker.join()
