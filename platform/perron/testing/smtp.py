"""A real SMTP server for tests (aiosmtpd on a free loopback port) that keeps what it got.

E-mails are read as they arrived: parsed with the standard library, with their HTML and
plain-text parts. Recipients named ``nobody@...`` are refused for good (550), to test what
a permanent failure does.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from perron.config import Settings


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "the message has no HTML part"
        return str(part.get_content())

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "the message has no plain-text part"
        return str(part.get_content())


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
        raw = envelope.original_content or envelope.content
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SMTPServer:
    """Started with :meth:`start`, stopped with :meth:`stop`; ``messages`` so far."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=free_port())
        self.host = "127.0.0.1"
        self.port = int(self._controller.port)

    def start(self) -> SMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[Received]:
        with self._collector.lock:
            return list(self._collector.messages)

    def to(self, address: str) -> list[Received]:
        return [received for received in self.messages if address in received.recipients]

    def clear(self) -> None:
        with self._collector.lock:
            self._collector.messages.clear()


def mail_settings(settings: Settings, port: int) -> Settings:
    """``settings`` with e-mail sent over plain SMTP to ``127.0.0.1:<port>``, retried
    milliseconds apart instead of a minute."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_ssl": False,
            "smtp_timeout_seconds": 5.0,
            "mail_from_address": "no-reply@perron.test",
            "mail_retry_seconds": 0.01,
        }
    )
