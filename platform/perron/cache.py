"""Keeping every process's caches coherent.

A change that makes cached data stale calls :func:`invalidate` inside its transaction. That
writes a ``cache_invalidations`` row in the same transaction (so the notice exists exactly
when the change does) and, once committed:

* the committing process drops its own entries at once;
* with Redis, the notice is published on a channel every process listens to (well under a
  second);
* every process also polls the table (every half second without Redis, every few seconds
  with it), which covers SQLite deployments, a Redis outage and a lost message.

Each notice carries the row id, so one seen twice is applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from cachetools import TTLCache
from redis.asyncio import Redis
from sqlalchemy import BigInteger, Boolean, Integer, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, utcnow
from perron.db.engine import Database
from perron.db.hooks import after_commit
from perron.logging import get_logger

log = get_logger("perron.cache")

CHANNEL = "perron:cache-invalidations"
KEEP_NOTICES = dt.timedelta(minutes=10)
POLL_OVERLAP = dt.timedelta(seconds=30)
"""How far back each poll looks, against commits that finish out of id order and clock skew."""


class CacheInvalidation(Base):
    __tablename__ = "cache_invalidations"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    commune_id: Mapped[UUID | None] = mapped_column(comment="none: every commune")
    hosts: Mapped[bool] = mapped_column(Boolean, default=False, comment="the host -> commune map changed")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    # Ids must never be reused (processes skip ids they have seen): SQLite would restart
    # them once the prune empties the table, unless told AUTOINCREMENT.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012


@dataclass(frozen=True, slots=True)
class Invalidation:
    id: int
    tenant_id: UUID | None
    hosts: bool

    def to_json(self) -> str:
        return json.dumps(
            {"id": self.id, "tenant_id": str(self.tenant_id) if self.tenant_id else None, "hosts": self.hosts}
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Invalidation:
        data = json.loads(raw)
        return cls(
            int(data["id"]), UUID(data["tenant_id"]) if data["tenant_id"] else None, bool(data["hosts"])
        )


Listener = Callable[[Invalidation], None]


class InvalidationHub:
    """The process's post office for invalidation notices (one per process)."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, asyncio.AbstractEventLoop]] = []
        self._seen: TTLCache[int, bool] = TTLCache(maxsize=100_000, ttl=3600)
        self._lock = threading.Lock()
        self._outgoing: asyncio.Queue[Invalidation] | None = None
        self._outgoing_loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` (on the caller's event loop) for every new notice."""
        entry = (listener, asyncio.get_running_loop())
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry)

    def deliver(self, notice: Invalidation) -> None:
        """Apply a notice from any source and any thread; repeated ids are ignored."""
        with self._lock:
            if notice.id in self._seen:
                return
            self._seen[notice.id] = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for listener, loop in list(self._listeners):
            if loop is running:
                listener(notice)  # same loop: the next request must already see the change
            elif not loop.is_closed():
                loop.call_soon_threadsafe(listener, notice)

    def committed(self, notice: Invalidation) -> None:
        """A notice this process just committed: apply it here and send it to the others."""
        self.deliver(notice)
        if (
            self._outgoing is not None
            and self._outgoing_loop is not None
            and not self._outgoing_loop.is_closed()
        ):
            self._outgoing_loop.call_soon_threadsafe(self._outgoing.put_nowait, notice)

    def attach_publisher(self) -> asyncio.Queue[Invalidation]:
        self._outgoing = asyncio.Queue()
        self._outgoing_loop = asyncio.get_running_loop()
        return self._outgoing

    def detach_publisher(self) -> None:
        self._outgoing = None
        self._outgoing_loop = None


hub = InvalidationHub()


def invalidate(session: AsyncSession, tenant_id: UUID | None, *, hosts: bool = False) -> None:
    """Record, in the session's transaction, that cached data of a commune (or all) is stale."""
    row = CacheInvalidation(commune_id=tenant_id, hosts=hosts)
    session.add(row)
    after_commit(session, lambda: hub.committed(Invalidation(row.id, tenant_id, hosts)))


class InvalidationService:
    """Runs in every long-lived process: publishes local notices and receives the others'."""

    def __init__(
        self, database: Database, redis_url: str | None, *, poll_interval: float | None = None
    ) -> None:
        self.database = database
        self.redis_url = redis_url
        self.poll_interval = poll_interval or (0.5 if redis_url is None else 5.0)
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None
        self._last_poll: dt.datetime | None = None
        self._last_prune = utcnow()

    async def start(self, *, listen: bool = True) -> None:
        """Publish this process's notices; with ``listen``, also receive the others' (a short
        command only publishes)."""
        self._last_poll = utcnow()
        if listen:
            self._tasks.append(asyncio.create_task(self._poll_forever(), name="perron-cache-poll"))
        if self.redis_url:
            self._redis = Redis.from_url(self.redis_url)
            queue = hub.attach_publisher()
            self._tasks.append(asyncio.create_task(self._publish_forever(queue), name="perron-cache-publish"))
            if listen:
                self._tasks.append(asyncio.create_task(self._listen_forever(), name="perron-cache-listen"))

    async def stop(self) -> None:
        await self.flush()
        hub.detach_publisher()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()

    async def flush(self, within: float = 5.0) -> None:
        """Wait until this process's notices are published (before a command exits)."""
        queue = hub._outgoing
        if queue is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await queue.join()

    async def poll_once(self) -> None:
        since = (self._last_poll or utcnow()) - POLL_OVERLAP
        self._last_poll = utcnow()
        async with self.database.session() as session:
            rows = await session.execute(
                select(CacheInvalidation.id, CacheInvalidation.commune_id, CacheInvalidation.hosts).where(
                    CacheInvalidation.created_at >= since
                )
            )
            for row in rows:
                hub.deliver(Invalidation(row.id, row.commune_id, row.hosts))
        if utcnow() - self._last_prune > dt.timedelta(minutes=1):
            self._last_prune = utcnow()
            async with self.database.transaction() as session:
                await session.execute(
                    delete(CacheInvalidation).where(CacheInvalidation.created_at < utcnow() - KEEP_NOTICES)
                )

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.poll_once()
            except Exception:
                log.warning("cache.poll_failed", exc_info=True)

    async def _publish_forever(self, queue: asyncio.Queue[Invalidation]) -> None:
        assert self._redis is not None
        while True:
            notice = await queue.get()
            try:
                await self._redis.publish(CHANNEL, notice.to_json())
            except Exception:
                log.warning("cache.publish_failed", notice=notice.id, exc_info=True)
            finally:
                queue.task_done()

    async def _listen_forever(self) -> None:
        assert self._redis is not None
        backoff = 0.5
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(CHANNEL)
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        hub.deliver(Invalidation.from_json(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("cache.listen_failed", retry_in=backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
