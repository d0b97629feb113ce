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
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from perron import mail, signals
from perron.db.scope import platform_scope
from perron.jobs.status import ACTIVE, JobRun, PlatformJobRun
from perron.testing.smtp import Received, SMTPServer, free_port, mail_settings

__all__ = ["Received", "SMTPServer", "free_port", "mail_settings", "run_jobs", "smtp_mail", "smtp_server"]


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()


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
