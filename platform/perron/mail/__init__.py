"""E-mail: multilingual templated messages in the commune's branding, sent by jobs.

Modules and platform services call :func:`queue_email` inside the transaction of the change
that causes the message; the ``perron.mail.send`` job sends it over SMTP (or, without
``PERRON_SMTP_HOST``, writes it to ``<data_dir>/mail``) and records the outcome on the
:class:`OutgoingEmail` row.
"""

from perron.mail.compose import paragraphs, site_url
from perron.mail.models import EmailStatus, OutgoingEmail
from perron.mail.service import (
    MAX_ATTEMPTS,
    MailService,
    check_address,
    configure,
    mail_service,
    on_result,
    queue_email,
    restore,
    send_email,
)

__all__ = [
    "MAX_ATTEMPTS",
    "EmailStatus",
    "MailService",
    "OutgoingEmail",
    "check_address",
    "configure",
    "mail_service",
    "on_result",
    "paragraphs",
    "queue_email",
    "restore",
    "send_email",
    "site_url",
]
