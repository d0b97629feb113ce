"""dramatiq's Redis broker, with the messages of a broken connection handed back.

A dramatiq consumer fetches messages from Redis in batches: each moves into this process's
set of unacknowledged messages, then waits in the consumer's memory until a worker thread
takes it (on a delay queue, until its time comes). When the connection to Redis breaks,
the worker drops the consumer and starts a new one, and messages the old one held in memory
stay in the unacknowledged set, as do those of a fetch Redis ran but whose answer was lost
with the connection. dramatiq gives such messages back to their queue only once the process
that fetched them has stopped sending heartbeats, which a worker that lives through a Redis
restart never does: those jobs would wait until the worker itself restarts.

:class:`RecoveringRedisBroker` hands them back when the consumer of a queue is restarted:

* on a queue, every unacknowledged message of this process except those handed to a worker
  thread (they are running, or waiting to acknowledge themselves once Redis is back);
* on a delay queue, every unacknowledged message of this process: the worker drops the
  delayed messages it holds in memory when the connection breaks.

At worst a message is delivered twice, which jobs accept (at-least-once delivery; a job
whose status says it finished is not run again).
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed

from perron.logging import get_logger

log = get_logger("perron.jobs")


class _TrackingConsumer(_RedisConsumer):
    """Remembers, on its broker, which messages it handed to worker threads until they are
    acknowledged (by this consumer or the one that replaces it)."""

    broker: RecoveringRedisBroker

    def __next__(self) -> Any:
        proxy = super().__next__()  # type: ignore[no-untyped-call]
        if proxy is not None:
            self.broker.handed_out(self.queue_name, proxy.options["redis_message_id"], True)
        return proxy

    def ack(self, message: Any) -> None:
        super().ack(message)  # type: ignore[no-untyped-call]
        self.broker.handed_out(self.queue_name, message.options["redis_message_id"], False)

    def nack(self, message: Any) -> None:
        super().nack(message)  # type: ignore[no-untyped-call]
        self.broker.handed_out(self.queue_name, message.options["redis_message_id"], False)


class RecoveringRedisBroker(RedisBroker):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self._consuming: set[str] = set()
        self._handed_out: dict[str, set[str]] = {}

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _TrackingConsumer

    def handed_out(self, queue_name: str, redis_message_id: str, running: bool) -> None:
        with self._lock:
            ids = self._handed_out.setdefault(queue_name, set())
            if running:
                ids.add(redis_message_id)
            else:
                ids.discard(redis_message_id)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        with self._lock:
            restarted = queue_name in self._consuming
            self._consuming.add(queue_name)
        if restarted:
            try:
                self._hand_back(queue_name)
            except redis.ConnectionError as error:
                # Still no Redis: the worker tries again in a few seconds.
                raise ConnectionClosed(error) from None  # type: ignore[no-untyped-call]
        return super().consume(queue_name, prefetch, timeout)

    def _hand_back(self, queue_name: str) -> None:
        key = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        unacknowledged = {
            member.decode() if isinstance(member, bytes) else str(member)
            for member in self.client.smembers(key)
        }
        with self._lock:
            if queue_name.endswith(".DQ"):
                self._handed_out.pop(queue_name, None)
                running: set[str] = set()
            else:
                running = set(self._handed_out.get(queue_name, ()))
        lost = sorted(unacknowledged - running)
        if lost:
            self.do_requeue(queue_name, *lost)
            log.warning("jobs.messages_handed_back", queue=queue_name, count=len(lost))
