"""Structured logs: one JSON object per line on standard output.

Every line carries what the context knows: ``request_id`` and ``tenant`` during a request,
``job`` and ``tenant_id`` during a job. Perron's own loggers go straight from structlog to
the stream (a filtering logger: a disabled level costs nothing, which matters on the
request path); libraries that log through the standard ``logging`` module (uvicorn,
SQLAlchemy, dramatiq) are rendered by the same processors, so every line looks alike.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import IO, Any

import orjson
import structlog

from perron.config import Settings


def _json(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class _LineWriter:
    """structlog logger writing whole lines to a stream, under a lock shared with the
    standard library's handler so lines of the two never interleave."""

    def __init__(self, stream: IO[str], lock: threading.RLock, name: str) -> None:
        self._stream = stream
        self._lock = lock
        self.name = name

    def msg(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


class _LockedHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    def __init__(self, stream: IO[str], lock: threading.RLock) -> None:
        super().__init__(stream)
        self.lock = lock  # type: ignore[assignment]


def _add_logger_name(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> None:
    target = stream or sys.stdout
    lock = threading.RLock()
    level = logging.getLevelName(settings.log_level)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        _json_renderer() if settings.log_format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, _add_logger_name, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _LineWriter(target, lock, args[0] if args else "perron"),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _LockedHandler(target, lock)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, floor in (("sqlalchemy.engine", logging.WARNING), ("uvicorn.access", logging.WARNING)):
        logging.getLogger(name).setLevel(max(floor, level))
    logging.getLogger("uvicorn.access").disabled = True  # Perron's access line has the tenant and request id
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _json_renderer() -> structlog.types.Processor:
    return structlog.processors.JSONRenderer(serializer=_json)


def get_logger(name: str) -> Any:
    """A Perron logger; its lines carry ``logger=name``."""
    return structlog.get_logger(name)
