"""dramatiq wiring: the broker, the actors, the worker, and the outbox relay.

* With ``PERRON_REDIS_URL``, dramatiq's Redis broker; ``perron worker`` processes run jobs.
* Without it (the embedded default), an in-memory broker and worker threads inside the app
  process. The outbox row of a job is deleted only once the broker holds the message, so
  a stopped process loses at most the jobs already handed over to its in-memory queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any
from uuid import UUID

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage
from prometheus_client import Counter
from sqlalchemy import select

from perron.audit import Actor, ActorKind, acting_as
from perron.config import Settings
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.jobs.outbox import OutboxMessage, on_enqueued
from perron.jobs.registry import JOBS, JobContext, JobSpec
from perron.logging import get_logger

log = get_logger("perron.jobs")

JOBS_RUN = Counter("perron_jobs_total", "Jobs run", ["job", "outcome"])
RELAYED = Counter("perron_outbox_relayed_total", "Outbox messages handed to the broker")


class _LoopDatabases:
    """Async engines belong to one event loop; jobs run on dramatiq's loop thread."""

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


def _runner(spec: JobSpec, databases: _LoopDatabases) -> Any:
    async def run(tenant_id: str | None, arguments: dict[str, Any]) -> None:
        message = CurrentMessage.get_current_message()
        message_id = message.message_id if message else "direct"
        attempt = (message.options.get("retries", 0) + 1) if message else 1
        commune = UUID(tenant_id) if tenant_id else None
        if spec.per_tenant and commune is None:
            JOBS_RUN.labels(spec.name, "refused").inc()
            log.error(
                "job.refused",
                job=spec.name,
                reason="per-commune job without a commune",
                message_id=message_id,
            )
            return
        scope = tenant_scope(commune) if commune else platform_scope(f"run platform job {spec.name}")
        structlog.contextvars.bind_contextvars(job=spec.name, tenant_id=tenant_id, message_id=message_id)
        try:
            with scope, acting_as(Actor(ActorKind.SYSTEM, f"job:{spec.name}")):
                async with databases.current().transaction() as session:
                    await spec.fn(JobContext(commune, session, message_id, attempt), **arguments)
        except Exception:
            JOBS_RUN.labels(spec.name, "failed").inc()
            log.exception("job.failed", attempt=attempt)
            raise
        else:
            JOBS_RUN.labels(spec.name, "done").inc()
        finally:
            structlog.contextvars.unbind_contextvars("job", "tenant_id", "message_id")

    run.__name__ = spec.name.replace(".", "_")
    return run


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
        self._wake: asyncio.Event | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    @staticmethod
    def _create_broker(settings: Settings) -> dramatiq.Broker:
        broker: dramatiq.Broker
        if settings.redis_url:
            from dramatiq.brokers.redis import RedisBroker

            broker = RedisBroker(url=settings.redis_url, namespace="perron")  # type: ignore[no-untyped-call]
        else:
            broker = StubBroker()
        broker.add_middleware(AsyncIO())
        broker.add_middleware(CurrentMessage())
        return broker

    def declare_actors(self) -> None:
        for spec in JOBS.values():
            if spec.name in self.broker.actors:
                continue
            dramatiq.Actor(
                _runner(spec, self.databases),
                broker=self.broker,
                actor_name=spec.name,
                queue_name=spec.queue,
                priority=0,
                options={"max_retries": spec.max_retries, "time_limit": spec.time_limit_ms},
            )

    async def start(self, *, relay_interval: float = 2.0) -> None:
        self.declare_actors()
        if self.run_worker:
            self.worker = dramatiq.Worker(
                self.broker, worker_threads=self.settings.worker_threads, worker_timeout=100
            )
            self.worker.start()
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        wake = self._wake

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self._unsubscribe = on_enqueued(wake_up)
        self._relay_task = asyncio.create_task(
            self._relay_forever(relay_interval), name="perron-outbox-relay"
        )

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
        with contextlib.suppress(Exception):
            await self.relay_once()
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
            self.worker = None
        self.broker.close()
        await self.databases.dispose_all()

    async def relay_once(self, limit: int = 200) -> int:
        """Hand waiting outbox messages to the broker; returns how many were handed over."""
        postgres = self.database.dialect == "postgresql"
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
                    await asyncio.to_thread(self.broker.enqueue, message)
                    await session.delete(row)
                    sent += 1
        RELAYED.inc(sent)
        return sent

    async def _relay_forever(self, interval: float) -> None:
        assert self._wake is not None
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval if not failures else min(30.0, interval * 2**failures)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while await self.relay_once() > 0:
                    pass
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning("outbox.relay_failed", failures=failures, exc_info=True)

    def ping_broker(self) -> None:
        """Raise when the broker cannot take messages (readiness)."""
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
