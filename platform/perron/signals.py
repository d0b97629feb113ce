"""Signals: things that happened, which modules may react to.

Every signal the platform sends is declared in this file, with the payload it carries.
A module may declare its own signals in its package the same way (other modules must not
import them: modules talk to each other only through the platform).

* A signal is sent inside the transaction that made the change: ``signal.send(session, payload)``.
  Nothing is delivered until that transaction commits; a rollback sends nothing.
* It is delivered only to receivers of modules enabled for the commune (platform receivers,
  with no module, always get it).
* Each receiver runs in its own transaction, in the commune's scope. One receiver failing is
  logged and changes nothing for the others, nor for the request that sent the signal.
* Delivery happens in the sending process, right after the commit. A receiver whose work
  must survive a crash should queue a job (:func:`perron.jobs.enqueue`): the job's outbox row
  commits with the receiver's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import Actor, ActorKind, acting_as
from perron.db.hooks import after_commit
from perron.db.scope import NoTenantScope, current_scope, tenant_scope
from perron.logging import get_logger

if TYPE_CHECKING:
    from perron.db.engine import Database

log = get_logger("perron.signals")
P = TypeVar("P")

DELIVERED = Counter("perron_signal_receivers_total", "Signal receivers run", ["signal", "outcome"])


@dataclass(frozen=True)
class SignalContext:
    """What a receiver gets besides the payload."""

    tenant_id: UUID
    session: AsyncSession
    """Its own transaction, committed when the receiver returns."""
    signal: str


Receiver = Callable[[SignalContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Connection:
    receiver: Receiver
    module: str | None


@dataclass(eq=False)
class Signal(Generic[P]):
    """A kind of event, with the dataclass its payload must be."""

    name: str
    payload: type[P]
    doc: str
    receivers: list[Connection] = field(default_factory=list, repr=False)

    def connect(self, receiver: Callable[[SignalContext, P], Awaitable[None]], *, module: str | None) -> None:
        if not any(connection.receiver is receiver for connection in self.receivers):
            self.receivers.append(Connection(receiver, module))

    def disconnect_module(self, module: str) -> None:
        self.receivers[:] = [c for c in self.receivers if c.module != module]

    def send(self, session: AsyncSession, payload: P, *, tenant_id: UUID | None = None) -> None:
        """Deliver ``payload`` once ``session``'s transaction commits."""
        if not isinstance(payload, self.payload):
            raise TypeError(
                f"signal {self.name!r} carries {self.payload.__name__}, not {type(payload).__name__}"
            )
        scope = current_scope()
        commune = tenant_id or (scope.tenant_id if scope else None)
        if commune is None:
            raise NoTenantScope(f"signal {self.name!r} is about one commune: send it in its scope")
        if not self.receivers:
            return
        after_commit(session, lambda: dispatcher.schedule(self, commune, payload))


class Dispatcher:
    """Runs receivers on the process's event loop, after the commit that sent the signal."""

    def __init__(self) -> None:
        self.database: Database | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Future[None]] = set()
        self._bindings: list[tuple[Database, asyncio.AbstractEventLoop]] = []

    def bind(self, database: Database) -> None:
        """Deliver with this database on the running loop, until :meth:`unbind`. Bindings
        nest: a command run inside a process that serves (tests) gives the server's back."""
        self._bindings.append((database, asyncio.get_running_loop()))
        self.database, self.loop = self._bindings[-1]

    def unbind(self, database: Database | None = None) -> None:
        for index in range(len(self._bindings) - 1, -1, -1):
            if database is None or self._bindings[index][0] is database:
                del self._bindings[index]
                break
        self.database, self.loop = self._bindings[-1] if self._bindings else (None, None)

    def schedule(self, signal: Signal[Any], tenant_id: UUID, payload: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            log.error("signal.not_delivered", signal=signal.name, reason="no running Perron runtime")
            return

        def start() -> None:
            task = asyncio.ensure_future(self.deliver(signal, tenant_id, payload))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            start()
        else:
            loop.call_soon_threadsafe(start)

    async def deliver(self, signal: Signal[Any], tenant_id: UUID, payload: Any) -> None:
        from perron.tenancy.models import ModuleActivation

        database = self.database
        assert database is not None
        with tenant_scope(tenant_id), acting_as(Actor(ActorKind.SYSTEM, f"signal:{signal.name}")):
            async with database.session() as session:
                enabled = set(
                    await session.scalars(
                        select(ModuleActivation.module).where(
                            ModuleActivation.tenant_id == tenant_id, ModuleActivation.enabled.is_(True)
                        )
                    )
                )
            for connection in list(signal.receivers):
                if connection.module is not None and connection.module not in enabled:
                    continue
                name = getattr(connection.receiver, "__qualname__", repr(connection.receiver))
                try:
                    async with database.transaction() as session:
                        await connection.receiver(SignalContext(tenant_id, session, signal.name), payload)
                except Exception:
                    DELIVERED.labels(signal.name, "failed").inc()
                    log.exception("signal.receiver_failed", signal=signal.name, receiver=name)
                else:
                    DELIVERED.labels(signal.name, "done").inc()

    async def drain(self) -> None:
        """Wait for every delivery under way (tests, and commands before they exit)."""
        while self._pending:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._pending), return_exceptions=True)


dispatcher = Dispatcher()


# --- The platform's signals -------------------------------------------------------------


@dataclass(frozen=True)
class ModuleToggled:
    module: str


@dataclass(frozen=True)
class AccountEvent:
    account_id: UUID


@dataclass(frozen=True)
class AddressChanged:
    account_id: UUID
    old: tuple[str | None, str | None, str | None]
    """(street, house number, postcode) before the change."""
    new: tuple[str | None, str | None, str | None]


@dataclass(frozen=True)
class TerritoryChanged:
    kind: str
    """What changed: ``neighbourhoods`` (created, edited, split, merged, removed), ``zones``
    or ``streets``."""
    ids: tuple[UUID, ...]
    """The neighbourhoods, zones or streets affected."""
    version: int
    """The commune's territory version after the change."""


module_enabled: Signal[ModuleToggled] = Signal(
    "module_enabled", ModuleToggled, "A module was switched on for the commune (sent to that module too)."
)
module_disabled: Signal[ModuleToggled] = Signal(
    "module_disabled",
    ModuleToggled,
    "A module was switched off for the commune (only platform receivers get it: the module is off).",
)
account_created: Signal[AccountEvent] = Signal(
    "account_created", AccountEvent, "A person got an account in the commune (login or registered by staff)."
)
residency_verified: Signal[AccountEvent] = Signal(
    "residency_verified", AccountEvent, "A person's residency in the commune was verified."
)
address_changed: Signal[AddressChanged] = Signal(
    "address_changed", AddressChanged, "A person's address changed (memberships tied to places follow it)."
)
account_deleted: Signal[AccountEvent] = Signal(
    "account_deleted",
    AccountEvent,
    "A person deleted their account: every module removes or anonymises what it holds about them.",
)
territory_changed: Signal[TerritoryChanged] = Signal(
    "territory_changed", TerritoryChanged, "Staff changed the commune's neighbourhoods, zones or streets."
)

ALL: tuple[Signal[Any], ...] = (
    module_enabled,
    module_disabled,
    account_created,
    residency_verified,
    address_changed,
    account_deleted,
    territory_changed,
)
