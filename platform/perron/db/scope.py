"""Which commune's data the current code may touch.

Every piece of code that reads or writes tenant-owned rows runs inside exactly one scope:

* :func:`tenant_scope` - one commune. Requests to a commune's site run in it; background
  jobs open it from the ``tenant_id`` they receive.
* :func:`platform_scope` - every commune, for operator work and platform machinery (tenant
  resolution, the outbox relay, migrations). It is explicit, names its reason, and every
  opening is written to the structured log as an audit event with the actor; what is then
  changed is recorded in the audit tables like any other change.

With no scope, touching tenant-owned data raises :class:`NoTenantScope`. The scope lives in
a context variable, so it follows the request's task and the job's thread, and each of the
three isolation locks reads it from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from perron.logging import get_logger

log = get_logger("perron.scope")


class ScopeKind(StrEnum):
    TENANT = "tenant"
    PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    tenant_id: UUID | None = None
    reason: str | None = None

    @property
    def is_platform(self) -> bool:
        return self.kind is ScopeKind.PLATFORM


class IsolationError(Exception):
    """Code tried to cross the boundary between communes. Always a bug or an attack."""


class NoTenantScope(IsolationError):
    """Tenant-owned data was touched outside any tenant or platform scope."""


class CrossTenantAccess(IsolationError):
    """An object of one commune was read or written in another commune's scope."""


_current: ContextVar[Scope | None] = ContextVar("perron_scope", default=None)


def current_scope() -> Scope | None:
    return _current.get()


def current_tenant_id() -> UUID | None:
    scope = _current.get()
    return scope.tenant_id if scope is not None else None


def require_tenant_id() -> UUID:
    """The commune in scope; raises when there is none (including platform scope)."""
    scope = _current.get()
    if scope is None or scope.tenant_id is None:
        raise NoTenantScope("this operation needs a commune in scope")
    return scope.tenant_id


@contextmanager
def tenant_scope(tenant_id: UUID) -> Iterator[Scope]:
    if not isinstance(tenant_id, UUID):
        raise TypeError(f"tenant_scope needs a UUID, got {type(tenant_id).__name__}")
    scope = Scope(ScopeKind.TENANT, tenant_id)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


@contextmanager
def platform_scope(reason: str) -> Iterator[Scope]:
    """Open the cross-commune scope. ``reason`` says why, in words an auditor understands."""
    if not reason or not reason.strip():
        raise ValueError("platform_scope needs a reason")
    from perron.audit import current_actor

    actor = current_actor()
    scope = Scope(ScopeKind.PLATFORM, None, reason)
    # People opening the platform scope are rare and always worth an audit line; the
    # platform's own machinery opens it on every cache miss, so it only logs at debug.
    (log.info if actor.is_person else log.debug)(
        "audit.platform_scope", reason=reason, actor=actor.label, actor_kind=actor.kind
    )
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


@contextmanager
def no_scope() -> Iterator[None]:
    """Leave every scope (used by tests and by code that must prove it needs none)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)
