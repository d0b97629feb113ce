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
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
import structlog

from perron.config import Settings


def _json(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


@dataclass
class _Sink:
    """Where log lines go, at which level and in which format. Loggers are cached on first
    use (a request must not rebuild one), so they read these at each call instead of
    capturing them: a later ``configure_logging`` still applies to them."""

    stream: IO[str] = field(default_factory=lambda: sys.stdout)
    lock: threading.RLock = field(default_factory=threading.RLock)
    level: int = logging.INFO
    renderer: Any = None


_sink = _Sink()


class _LineWriter:
    """structlog logger writing whole lines, under the lock the standard library's
    handler also takes, so lines of the two never interleave."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with _sink.lock:
            _sink.stream.write(message + "\n")
            _sink.stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


class _LockedHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    def __init__(self, stream: IO[str], lock: threading.RLock) -> None:
        super().__init__(stream)
        self.lock = lock  # type: ignore[assignment]


_LEVELS = {name: value for value, name in logging._levelToName.items()}
_LEVELS |= {"warn": logging.WARNING, "exception": logging.ERROR, "critical": logging.CRITICAL}


def _level_gate(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if _LEVELS.get(method_name.upper(), logging.INFO) < _sink.level:
        raise structlog.DropEvent
    return event_dict


def _add_logger_name(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


def _render(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    return str(_sink.renderer(logger, method_name, event_dict))


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_logger_name,
]

structlog.configure(
    processors=[_level_gate, *_SHARED, structlog.processors.format_exc_info, _render],
    wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    logger_factory=lambda *args: _LineWriter(args[0] if args else "perron"),
    cache_logger_on_first_use=True,
)


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> None:
    """Send every log line, Perron's and the libraries', to ``stream`` (standard output)."""
    _sink.stream = stream or sys.stdout
    _sink.level = logging.getLevelName(settings.log_level)
    _sink.renderer = (
        structlog.processors.JSONRenderer(serializer=_json)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _render,
        ],
    )
    handler = _LockedHandler(_sink.stream, _sink.lock)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_sink.level)
    for name, floor in (("sqlalchemy.engine", logging.WARNING), ("uvicorn.access", logging.WARNING)):
        logging.getLogger(name).setLevel(max(floor, _sink.level))
    logging.getLogger("uvicorn.access").disabled = True  # Perron's access line has the tenant and request id
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


_sink.renderer = structlog.processors.JSONRenderer(serializer=_json)


def get_logger(name: str) -> Any:
    """A Perron logger; its lines carry ``logger=name``."""
    return structlog.get_logger(name)
