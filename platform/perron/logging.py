"""Structured logs: one JSON object per line on standard output.

Every line carries what the context knows: ``request_id`` and ``tenant`` during a request,
``job`` and ``tenant_id`` during a job. Libraries that log through the standard ``logging``
module (uvicorn, SQLAlchemy, dramatiq) come out in the same format.
"""

from __future__ import annotations

import logging
import sys

import structlog

from perron.config import Settings

_configured = False


def configure_logging(settings: Settings, *, stream: object = None) -> None:
    global _configured
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)  # type: ignore[arg-type]
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy, level in (
        ("uvicorn.access", logging.WARNING),
        ("sqlalchemy.engine", logging.WARNING),
        ("dramatiq", logging.INFO),
        ("uvicorn.error", logging.INFO),
    ):
        logging.getLogger(noisy).setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # our access log has the tenant and request id
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    _configured = True
