"""The console's own tables: sessions of the people who use it, onboardings of communes
(one wizard or one CSV line each, then its provisioning), CSV imports, and the module
defaults an intercommunale gives its members.

All are platform tables (no commune owns them): they are read in the platform scope, and
what a person may see of them is decided by :mod:`perron.console.access`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, Timestamps, new_id, utcnow


class ConsoleSession(Base):
    """A person logged in to the console (staff realm), keyed by the SHA-256 of the cookie."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(255), index=True, comment="staff realm user id")
    display_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(
        String(8), default="", comment="their account's, if Keycloak knows it"
    )
    oidc_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    id_token: Mapped[str | None] = mapped_column(Text, comment="sealed, for RP-initiated logout")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class ConsoleLoginAttempt(Base):
    """A console login in progress: keyed by the SHA-256 of its ``state``, single use."""

    __tablename__ = "console_login_attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_key: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(2000), default="/")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class OnboardingStatus(StrEnum):
    DRAFT = "draft"
    """Being filled in through the wizard."""
    QUEUED = "queued"
    """Submitted: the provisioning job is queued, running, waiting to retry, or failed (its
    status record says which, and why)."""
    DONE = "done"


def _enum(kind: type[StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        native_enum=False,
        create_constraint=True,
        length=16,
        name=name,
        values_callable=lambda members: [member.value for member in members],
    )


class Onboarding(Timestamps, Base):
    """One commune brought on board: what the wizard (or a CSV line) asked for, and what
    became of it. ``spec`` is the checked request (:class:`perron.console.onboarding.Spec`)."""

    __tablename__ = "onboardings"
    __table_args__ = (
        Index("ix_onboardings_intercommunale_id_created_at", "intercommunale_id", "created_at"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    intercommunale_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="CASCADE")
    )
    status: Mapped[OnboardingStatus] = mapped_column(
        _enum(OnboardingStatus, "onboarding_status"), default=OnboardingStatus.DRAFT
    )
    step: Mapped[int] = mapped_column(Integer, default=1, comment="the wizard's furthest step")
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, comment="the uploaded logo, until provisioned")
    logo_filename: Mapped[str | None] = mapped_column(String(200))
    commune_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("communes.id", ondelete="SET NULL"), index=True, comment="set once created"
    )
    job_id: Mapped[UUID | None] = mapped_column(comment="the latest provisioning job")
    bulk_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("bulk_onboardings.id", ondelete="CASCADE"), index=True
    )
    bulk_line: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(254))
    finished_at: Mapped[dt.datetime | None]


class BulkOnboarding(Base):
    """A CSV file of communes to onboard, with its per-line report."""

    __tablename__ = "bulk_onboardings"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    intercommunale_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(
        JsonB, default=list, comment="one entry per data line: line, name, NIS, domain, error or onboarding"
    )
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IntercommunaleModule(Base):
    """A module an intercommunale offers its members, and whether new members get it."""

    __tablename__ = "intercommunale_modules"

    intercommunale_id: Mapped[UUID] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="CASCADE"), primary_key=True
    )
    module: Mapped[str] = mapped_column(String(63), primary_key=True)
    default_on: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
