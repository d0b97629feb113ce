"""E-mails a commune sends: one row per message, from queued to sent or failed."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from uuid import UUID

from sqlalchemy import Enum, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, utcnow


class EmailStatus(StrEnum):
    QUEUED = "queued"
    """Waiting for the sending job (also while it waits to try again)."""
    SENT = "sent"
    """Accepted by the SMTP server (or written to the mail folder)."""
    FAILED = "failed"
    """Given up: refused for good, out of attempts, or e-mail is switched off."""


class OutgoingEmail(TenantModel, Base):
    """A message rendered when it was queued (what it says no longer depends on templates
    or settings changing before it leaves), with the status of its delivery."""

    __tablename__ = "email_messages"
    __table_args__ = (
        Index("ix_email_messages_status", "tenant_id", "status", "created_at"),
        Index("ix_email_messages_account", "tenant_id", "account_id"),
    )

    category: Mapped[str] = mapped_column(
        String(40), comment="who queued it and for what (notification, digest, a module's name)"
    )
    account_id: Mapped[UUID | None] = mapped_column(comment="the recipient's account, when they have one")
    to_address: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str | None] = mapped_column(String(200))
    from_name: Mapped[str] = mapped_column(
        String(200), comment="the commune's name in the recipient's language"
    )
    reply_to: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(
        String(255), comment="the Message-ID header, the same on every attempt"
    )
    status: Mapped[EmailStatus] = mapped_column(
        Enum(
            EmailStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="email_status",
            values_callable=lambda members: [member.value for member in members],
        ),
        default=EmailStatus.QUEUED,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000), comment="why the last attempt failed")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]
