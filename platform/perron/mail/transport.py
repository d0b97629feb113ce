"""How a composed e-mail leaves the platform: an SMTP server, or a folder of ``.eml`` files.

Transports are synchronous (:mod:`smtplib`); jobs call them in a thread. A failure is sorted
into :class:`TemporaryFailure` (worth trying again later: the server is down, busy, or
refused the login) and :class:`PermanentFailure` (the same message would be refused again:
an unknown recipient, a message the server rejects for good).
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from perron.config import Settings


class DeliveryFailure(Exception):
    """Sending failed; ``str(error)`` says why in words an operator can act on."""


class TemporaryFailure(DeliveryFailure):
    """Try again later."""


class PermanentFailure(DeliveryFailure):
    """Trying again would fail the same way."""


class Transport(Protocol):
    description: str

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        """Hand one message over; raise :class:`DeliveryFailure` when it was not taken."""


class SMTPTransport:
    """One connection per message: jobs send from several threads and processes, and a
    connection kept open would time out between the bursts a commune's messages come in."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        use_ssl: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = timeout
        mode = "TLS" if use_ssl else "STARTTLS" if starttls else "plain"
        self.description = f"SMTP {host}:{port} ({mode})"

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            client.starttls(context=ssl.create_default_context())
        return client

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        try:
            with self._connect() as client:
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message, from_addr=sender, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            reasons = "; ".join(
                f"{address}: {code} {_text(reply)}" for address, (code, reply) in error.recipients.items()
            )
            if all(code >= 500 for code in codes):
                raise PermanentFailure(f"the server refused the recipient ({reasons})") from None
            raise TemporaryFailure(f"the server deferred the recipient ({reasons})") from None
        except smtplib.SMTPAuthenticationError as error:
            # Wrong credentials are the operator's to fix; the message itself is fine.
            raise TemporaryFailure(
                f"the server refused the login of PERRON_SMTP_USERNAME ({error.smtp_code} "
                f"{_text(error.smtp_error)})"
            ) from None
        except smtplib.SMTPResponseException as error:
            detail = f"{error.smtp_code} {_text(error.smtp_error)}"
            if 500 <= error.smtp_code < 600:
                raise PermanentFailure(f"the server refused the message ({detail})") from None
            raise TemporaryFailure(f"the server deferred the message ({detail})") from None
        except smtplib.SMTPNotSupportedError as error:
            raise TemporaryFailure(f"the server does not support what is configured ({error})") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
            raise TemporaryFailure(
                f"could not talk to {self.description}: {type(error).__name__}: {error}"
            ) from None


class FolderTransport:
    """Writes each message as ``<folder>/<Message-ID>.eml`` (development, and the embedded
    default when no SMTP server is configured). Mail clients open these files directly."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"folder {folder}"

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        name = "".join(
            c if c.isalnum() or c in "-._" else "_" for c in str(message["Message-ID"]).strip("<>")
        )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Written aside then renamed: a reader never sees half a message.
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(handle, "wb") as stream:
                stream.write(message.as_bytes())
            os.replace(temporary, self.folder / f"{name}.eml")
        except OSError as error:
            raise TemporaryFailure(f"could not write to {self.folder}: {error}") from None


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SMTPTransport(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            use_ssl=settings.smtp_ssl,
            timeout=settings.smtp_timeout_seconds,
        )
    return FolderTransport(settings.mail_folder)
