"""A real SMTP server for the tests (aiosmtpd on a free local port), and Perron's e-mail
pointed at it. Import the fixtures where needed::

    from tests.integration.conftest_smtp import smtp_mail, smtp_server  # noqa: F401

``smtp_server`` collects every message the server accepted (``smtp_server.messages``, each
parsed with the standard library) and refuses recipients named ``nobody@...`` for good (550);
``smtp_mail`` makes this process's e-mail go to it, with
retries a few milliseconds apart instead of a minute. ``run_jobs(runtime)`` runs every queued
job, and the jobs those queue, until all have finished.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from perron import mail, signals
from perron.config import Settings
from perron.db.scope import platform_scope
from perron.jobs.status import ACTIVE, JobRun, PlatformJobRun


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "the message has no HTML part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "the message has no plain-text part"
        return str(part.get_content())  # type: ignore[attr-defined]


class _Collector:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self, host: str, port: int, collector: _Collector) -> None:
        self.host = host
        self.port = port
        self._collector = collector

    @property
    def messages(self) -> list[Received]:
        with self._collector.lock:
            return list(self._collector.messages)

    def to(self, address: str) -> list[Received]:
        return [received for received in self.messages if address in received.recipients]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", controller.port, collector)
    finally:
        controller.stop()


def mail_settings(settings: Settings, port: int) -> Settings:
    """The test settings with e-mail sent over plain SMTP to ``127.0.0.1:<port>``."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_timeout_seconds": 5.0,
            "mail_from_address": "no-reply@perron.test",
            "mail_retry_seconds": 0.01,
        }
    )


@pytest.fixture
def smtp_mail(smtp_server: SMTPServer, runtime: Any) -> Iterator[SMTPServer]:
    """Perron's e-mail goes to ``smtp_server`` for the test."""
    previous = mail.configure(mail_settings(runtime.settings, smtp_server.port), runtime.templates)
    try:
        yield smtp_server
    finally:
        mail.restore(previous)


async def run_jobs(runtime: Any, rounds: int = 50) -> None:
    """Run queued jobs, and the jobs and signals they cause, until every job has finished.

    "Finished" is read from the jobs' status records: each is written with its outbox row
    and closed in the job's last transaction, so the answer does not depend on whether this
    helper or the server's own relay handed a message to the broker."""
    jobs = runtime.jobs
    for _ in range(rounds):
        await signals.dispatcher.drain()
        await jobs.relay_once()
        await asyncio.to_thread(jobs.join)
        await signals.dispatcher.drain()
        with platform_scope("test: are all jobs finished"):
            async with runtime.database.session() as session:
                active = [
                    await session.scalar(
                        select(func.count()).select_from(model).where(model.status.in_(ACTIVE))
                    )
                    for model in (JobRun, PlatformJobRun)
                ]
        if not any(active):
            return
    raise AssertionError(f"jobs were still running after {rounds} rounds")
