"""Accounts and server-side sessions (both owned by one commune)."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum, StrEnum
from uuid import UUID

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, TenantOwned, new_id, utcnow


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
        Index(
            "uq_accounts_person",
            "tenant_id",
            "person_key",
            unique=True,
            sqlite_where=text("person_key IS NOT NULL"),
            postgresql_where=text("person_key IS NOT NULL"),
        ),
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
    residency_method: Mapped[str | None] = mapped_column(
        String(16), comment="how residency was verified: itsme, code (paper), town_hall"
    )
    person_key: Mapped[str | None] = mapped_column(
        String(64),
        comment="keyed HMAC of the national register number: the same person in every commune; "
        "the number itself is never stored",
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def is_resident(self) -> bool:
        return self.residency_verified_at is not None

    def has_role(self, role: str) -> bool:
        """Staff admins hold every role; anyone else holds the roles given to them (a citizen
        can be a community moderator or a merchant)."""
        roles = self.roles or []
        return role in roles or (self.kind is AccountKind.STAFF and "admin" in roles)


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
    realm: Mapped[str | None] = mapped_column(String(16), comment="Keycloak realm of the login")
    oidc_sid: Mapped[str | None] = mapped_column(
        String(64), index=True, comment="Keycloak's session id, for back-channel logout"
    )
    id_token: Mapped[str | None] = mapped_column(Text, comment="kept server-side for RP-initiated logout")


class LoginAttempt(TenantOwned, Base):
    """A login in progress: what the callback must find to accept Keycloak's answer.

    Keyed by the SHA-256 of ``state``; bound to the browser that started it by the hash of a
    short-lived cookie; single use (deleted when the callback reads it)."""

    __tablename__ = "login_attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_key: Mapped[str] = mapped_column(String(64))
    realm: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    level: Mapped[int] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer, comment="seconds; set when a fresh login was asked")
    next_path: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class ResidencyCode(TenantOwned, Base):
    """A single-use code the commune sends on paper to a person's address (for people whose
    itsme address is missing). Only its hash is stored."""

    __tablename__ = "residency_codes"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[UUID] = mapped_column(index=True)
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    street: Mapped[str] = mapped_column(String(200))
    house_number: Mapped[str | None] = mapped_column(String(20))
    postcode: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), comment="staff member who issued it")
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, comment="wrong codes typed against it")


class PlatformRole(Base):
    """A role above communes: the deployment's operators, and intercommunale admins (who
    manage their member communes only). Held by staff-realm identities."""

    __tablename__ = "platform_roles"
    __table_args__ = (Index("uq_platform_roles", "email", "role", "intercommunale_id", unique=True),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    role: Mapped[str] = mapped_column(String(32), comment="operator or intercommunale_admin")
    intercommunale_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(255), index=True, comment="staff realm user id")
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
