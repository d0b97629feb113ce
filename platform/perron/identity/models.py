"""Accounts and server-side sessions (both owned by one commune)."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum, StrEnum
from uuid import UUID

from sqlalchemy import Boolean, Enum, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, TenantOwned, utcnow


class Assurance(IntEnum):
    """Level of assurance of a login (eIDAS levels, as itsme maps to them)."""

    NONE = 0
    """Not logged in."""
    LOW = 1
    """E-mail and password, verified address."""
    SUBSTANTIAL = 2
    """itsme basic (acr_basic)."""
    HIGH = 3
    """itsme advanced (acr_advanced) or eID."""


class AccountKind(StrEnum):
    CITIZEN = "citizen"
    STAFF = "staff"


class Account(TenantModel, Base):
    """A person's account in one commune."""

    __tablename__ = "accounts"
    __table_args__ = (
        Index("ix_accounts_subject", "tenant_id", "subject", unique=True),
        Index("ix_accounts_street", "tenant_id", "postcode", "street"),
    )

    subject: Mapped[str | None] = mapped_column(
        String(255), comment="identity provider subject; empty for people registered on paper by staff"
    )
    kind: Mapped[AccountKind] = mapped_column(
        Enum(AccountKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=AccountKind.CITIZEN,
    )
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2), default="fr")
    roles: Mapped[list[str]] = mapped_column(default=list)
    """Roles in this commune: ``admin``, or a module's (``news.editor``)."""
    assurance: Mapped[int] = mapped_column(Integer, default=int(Assurance.NONE))
    """Highest level this person has proved (the session says what they proved this time)."""
    birth_year: Mapped[int | None] = mapped_column(Integer)
    street: Mapped[str | None] = mapped_column(String(200))
    house_number: Mapped[str | None] = mapped_column(String(20))
    postcode: Mapped[str | None] = mapped_column(String(4))
    residency_verified_at: Mapped[dt.datetime | None]
    """When residency in the commune was verified (itsme address, paper code, town hall)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def is_resident(self) -> bool:
        return self.residency_verified_at is not None

    def has_role(self, role: str) -> bool:
        return self.kind is AccountKind.STAFF and ("admin" in self.roles or role in self.roles)


class WebSession(TenantOwned, Base):
    """A login on a commune's site. The browser holds only an opaque token; the row is
    keyed by the token's SHA-256, so a database leak reveals no usable cookie."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[UUID] = mapped_column(index=True)
    assurance: Mapped[int] = mapped_column(Integer)
    auth_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    acting_for: Mapped[UUID | None] = mapped_column(comment="citizen a staff member acts on behalf of")
