"""dramatiq's Redis broker, with the messages of a broken connection handed back.

A dramatiq consumer fetches messages from Redis in batches: they move into this process's
set of unacknowledged messages, then wait in the consumer's memory until a worker thread
takes them (and, on a delay queue, until their time comes). When the connection to Redis
breaks, the worker drops the consumer and starts a new one, and what the old one held in
memory stays in the unacknowledged set; dramatiq gives such messages back to the queue only
once the process that fetched them has stopped sending heartbeats, which a worker that
lives through a Redis restart never does. Those jobs would wait until the worker restarts.

:class:`RecoveringRedisBroker` hands them back when the consumer of a queue is restarted:

* on a queue, the messages the old consumer had fetched but not handed to a worker thread
  (those it handed over are running and acknowledge themselves);
* on a delay queue, every unacknowledged message of this process: the worker drops the
  delayed messages it holds in memory when the connection breaks.

At worst a message is delivered twice, which jobs accept (at-least-once delivery; a job
whose status says it finished is not run again).
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from perron.logging import get_logger

log = get_logger("perron.jobs")


class RecoveringRedisBroker(RedisBroker):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self._consumers: dict[str, Any] = {}
        self._consumers_lock = threading.Lock()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        with self._consumers_lock:
            previous = self._consumers.get(queue_name)
        if previous is not None:
            try:
                self._hand_back(queue_name, previous)
            except redis.ConnectionError as error:
                # Still no Redis: the worker tries again in a few seconds.
                raise ConnectionClosed(error) from None  # type: ignore[no-untyped-call]
        consumer = super().consume(queue_name, prefetch, timeout)
        with self._consumers_lock:
            self._consumers[queue_name] = consumer
        return consumer

    def _hand_back(self, queue_name: str, previous: Any) -> None:
        if queue_name.endswith(".DQ"):
            key = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
            members = self.client.smembers(key)
            ids = [member.decode() if isinstance(member, bytes) else str(member) for member in members]
        else:
            cached = list(getattr(previous, "message_cache", None) or [])
            ids = [Message.decode(data).options["redis_message_id"] for data in cached if data]
        if ids:
            self.do_requeue(queue_name, *ids)
            log.warning("jobs.messages_handed_back", queue=queue_name, count=len(ids))
        previous.message_cache = []
