"""What modules sent (notifications), to whom and how (deliveries), and how each person
wants to hear from each module (preferences)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Enum, ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, TenantOwned, utcnow


def _enum(members: type[StrEnum], name: str) -> Enum:
    return Enum(
        members,
        native_enum=False,
        create_constraint=True,
        length=16,
        name=name,
        values_callable=lambda values: [value.value for value in values],
    )


class Channel(StrEnum):
    INBOX = "inbox"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """E-mail queued, not yet accepted by the server."""
    DIGEST_PENDING = "digest-pending"
    """E-mail waiting for the person's daily summary."""
    SENT = "sent"
    """In the inbox (unread), or e-mail accepted by the server."""
    READ = "read"
    """Read in the inbox (a summary then leaves it out)."""
    FAILED = "failed"
    """The e-mail could not be sent (``error`` says why)."""
    SKIPPED = "skipped"
    """Not sent after all: the person switched e-mail off, or has no address any more."""


class EmailFrequency(StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    OFF = "off"


class Notification(TenantModel, Base):
    """A message a module (or the commune itself, module ``core``) sent to an audience."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_created", "tenant_id", "created_at"),)

    module: Mapped[str] = mapped_column(String(63), comment="the sending module; core for the commune itself")
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[dict[str, str]] = mapped_column(comment="per language")
    body: Mapped[dict[str, str]] = mapped_column(comment="per language, plain text")
    link: Mapped[str | None] = mapped_column(String(500))
    audience: Mapped[dict[str, Any]] = mapped_column(comment="who it is for, as Audience.describe() wrote it")
    created_by: Mapped[UUID | None] = mapped_column(comment="the account of the person who sent it")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(
        Integer, default=0, comment="people reached, counted by the fan-out"
    )
    fanned_out_at: Mapped[dt.datetime | None] = mapped_column(comment="when every recipient had a delivery")


class Delivery(TenantModel, Base):
    """One notification to one person through one channel."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # One delivery per person and channel: running the fan-out again adds nothing.
        UniqueConstraint(
            "tenant_id", "notification_id", "account_id", "channel", name="uq_notification_deliveries_once"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "notification_id"],
            ["notifications.tenant_id", "notifications.id"],
            name="fk_notification_deliveries_notification",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name="fk_notification_deliveries_account",
            ondelete="CASCADE",
        ),
        Index("ix_notification_deliveries_inbox", "tenant_id", "account_id", "channel", "status"),
        Index("ix_notification_deliveries_status", "tenant_id", "channel", "status", "account_id"),
        Index("ix_notification_deliveries_email", "tenant_id", "email_id"),
    )

    notification_id: Mapped[UUID]
    account_id: Mapped[UUID]
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "notification_channel"))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    email_id: Mapped[UUID | None] = mapped_column(comment="the e-mail carrying it (immediate or summary)")
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    read_at: Mapped[dt.datetime | None]


class Preference(TenantOwned, Base):
    """How one person wants e-mail from one module. No row: the default (see
    :func:`perron.notifications.service.default_frequency`). The inbox is always on."""

    __tablename__ = "notification_preferences"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name="fk_notification_preferences_account",
            ondelete="CASCADE",
        ),
    )

    account_id: Mapped[UUID] = mapped_column(primary_key=True)
    module: Mapped[str] = mapped_column(String(63), primary_key=True)
    email: Mapped[EmailFrequency] = mapped_column(_enum(EmailFrequency, "email_frequency"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
