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

from collections.abc import Iterator
from typing import Any

import pytest

from perron import mail
from perron.testing.harness import run_jobs
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
