"""An SMTP server for ``perron dev`` that writes what it receives as ``.eml`` files.

Without a configured SMTP server Perron writes its e-mails to ``<data dir>/mail``; Keycloak
can only speak SMTP. So that Keycloak's own e-mails (address verification, password reset,
staff invitations) can be read in development too, ``perron dev`` runs this server on
loopback and points both Perron and Keycloak's realms at it: every e-mail ends up in the
same folder.
"""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from perron.mail.transport import FolderTransport

DEV_SMTP_PORT = 58025


class _ToFolder:
    def __init__(self, folder: Path) -> None:
        self.transport = FolderTransport(folder)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.content, _class=EmailMessage, policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["Message-ID"] is None:
            message["Message-ID"] = f"<{uuid.uuid4()}@perron.dev>"
        self.transport.send(message, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def start(folder: Path, port: int = DEV_SMTP_PORT) -> Controller:
    """Start the server in a thread (it stops with the process, or with ``.stop()``)."""
    controller = Controller(_ToFolder(folder), hostname="127.0.0.1", port=port)
    controller.start()
    return controller
