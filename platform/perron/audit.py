"""Who changed what, in which commune, when.

Every change goes through an action (``perron.tenancy.actions`` and the modules' own) that
records an :class:`AuditEntry` in the same transaction as the change: it is kept exactly
when the change is. Changes to a commune are kept in that commune's log (its admins read
it); changes to the platform itself (intercommunales, platform settings) in the platform's.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, new_id, utcnow
from perron.db.scope import current_scope


class ActorKind(StrEnum):
    PERSON = "person"
    CLI = "cli"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Actor:
    """Whoever is acting: a signed-in person, someone at the command line, or the platform."""

    kind: ActorKind
    label: str
    person_id: UUID | None = None

    @property
    def is_person(self) -> bool:
        return self.kind in {ActorKind.PERSON, ActorKind.CLI}


SYSTEM = Actor(ActorKind.SYSTEM, "system")
ANONYMOUS = Actor(ActorKind.ANONYMOUS, "anonymous")

_actor: ContextVar[Actor] = ContextVar("perron_actor", default=SYSTEM)
_request_id: ContextVar[str | None] = ContextVar("perron_request_id", default=None)


def current_actor() -> Actor:
    return _actor.get()


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def command_line_actor() -> Actor:
    """The person running a ``perron`` command, as the operating system knows them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(ActorKind.CLI, f"cli:{user}@{socket.gethostname()}")


class AuditEntry(TenantModel, Base):
    """One change in one commune."""

    __tablename__ = "audit_entries"

    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_person_id: Mapped[UUID | None]
    action: Mapped[str] = mapped_column(String(80), comment="verb, such as commune.suspend or domain.add")
    object_type: Mapped[str] = mapped_column(String(80))
    object_id: Mapped[str | None] = mapped_column(String(200))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="field: [before, after]")
    request_id: Mapped[str | None] = mapped_column(String(64))
    platform_scope: Mapped[bool] = mapped_column(
        default=False, comment="made by the platform, not the commune"
    )

    # The admin's log viewer reads newest first, page after page (keyset on occurred_at and
    # id), filtered by kind of action or by person: each has its index.
    __table_args__ = (
        Index("ix_audit_entries_tenant_id_occurred_at", "tenant_id", "occurred_at"),
        Index("ix_audit_entries_tenant_id_action_occurred_at", "tenant_id", "action", "occurred_at"),
        Index(
            "ix_audit_entries_tenant_id_actor_person_id_occurred_at",
            "tenant_id",
            "actor_person_id",
            "occurred_at",
        ),
    )


class PlatformAuditEntry(Base):
    """One change to the platform itself."""

    __tablename__ = "platform_audit_entries"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_person_id: Mapped[UUID | None]
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(80))
    object_id: Mapped[str | None] = mapped_column(String(200))
    intercommunale_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="SET NULL"), index=True
    )
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: [before, after]}`` for the fields that differ, in JSON-friendly values."""
    return {
        key: [_plain(before.get(key)), _plain(after.get(key))]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _plain(value: Any) -> Any:
    if isinstance(value, UUID | dt.datetime):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def record(
    session: AsyncSession,
    *,
    tenant_id: UUID,
    action: str,
    object_type: str,
    object_id: object = None,
    changes: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add a commune's audit entry to the session; it is kept if the change is committed."""
    actor = current_actor()
    scope = current_scope()
    entry = AuditEntry(
        tenant_id=tenant_id,
        actor_kind=actor.kind.value,
        actor_label=actor.label,
        actor_person_id=actor.person_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        changes=dict(changes or {}),
        request_id=current_request_id(),
        platform_scope=bool(scope and scope.is_platform),
    )
    session.add(entry)
    return entry


def record_platform(
    session: AsyncSession,
    *,
    action: str,
    object_type: str,
    object_id: object = None,
    intercommunale_id: UUID | None = None,
    changes: Mapping[str, Any] | None = None,
) -> PlatformAuditEntry:
    actor = current_actor()
    entry = PlatformAuditEntry(
        actor_kind=actor.kind.value,
        actor_label=actor.label,
        actor_person_id=actor.person_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        intercommunale_id=intercommunale_id,
        changes=dict(changes or {}),
        request_id=current_request_id(),
    )
    session.add(entry)
    return entry
