"""Recording who uses a commune's site, from the request path, at almost no cost.

:class:`ActivityRecorder` (one per process, ``runtime.activity``) is called by
:class:`perron.web.auth.SessionMiddleware` for requests of logged-in people:

* Only **citizens** count: staff (including staff acting for someone at the town hall) use
  the site to serve citizens, and counting them would inflate "active citizens".
* A request counts when it answers below 400, is not for a static file, an icon, the logo,
  the stylesheet or the web-app manifest, and is a GET or POST. It marks the day for the
  site (``module`` empty) and, when its path is a module's (``/<module>/...``, the module
  switched on), for that module.
* A per-process memo of what was already written today skips every later request of the
  same person: most requests write nothing and cost a set lookup. The memo forgets
  everything at midnight (Brussels) and when it grows past ``memo_size`` (a repeated write is
  harmless, only wasted).
* The write comes **after** the response was sent, in its own short transaction
  (``INSERT ... ON CONFLICT DO NOTHING``, so concurrent processes agree on SQLite and
  PostgreSQL). It never breaks a page: a failure is logged and forgotten, and the next
  request of that person tries again.
* The first write of a Brussels day for a commune, in each process, also deletes that
  commune's days past :data:`~perron.adoption.models.RETENTION_DAYS` (one index range).
  ``perron adoption prune`` does the same for every commune (see :func:`prune_activity`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from perron.adoption.models import RETENTION_DAYS, SITE, ActivityDay, week_of
from perron.db.engine import Database
from perron.db.repository import ensure_tenant
from perron.db.scope import tenant_scope
from perron.i18n import TIME_ZONE
from perron.identity.models import Account, AccountKind
from perron.identity.sessions import CurrentUser
from perron.logging import get_logger

log = get_logger("perron.adoption")

NOT_ACTIVITY_FILES = frozenset(
    {
        "/branding.css",
        "/favicon.ico",
        "/logo",
        "/apple-touch-icon.png",
        "/apple-touch-icon-precomposed.png",
        "/manifest.webmanifest",
    }
)
NOT_ACTIVITY_FOLDERS = ("/static/", "/icons/")
COUNTED_METHODS = frozenset({"GET", "POST"})


def brussels_today() -> dt.date:
    return dt.datetime.now(TIME_ZONE).date()


def module_of(path: str, enabled_modules: frozenset[str]) -> str | None:
    """The module whose citizen routes serve ``path`` (mounted at ``/<name>``), if it is on."""
    segment = path.split("/", 2)[1] if path.startswith("/") else ""
    return segment if segment in enabled_modules else None


def counts_as_activity(path: str, method: str) -> bool:
    return (
        method in COUNTED_METHODS
        and path not in NOT_ACTIVITY_FILES
        and not path.startswith(NOT_ACTIVITY_FOLDERS)
    )


@dataclass(frozen=True, slots=True)
class Visit:
    """What one request would record: the modules (``""`` for the site) not yet written."""

    tenant_id: UUID
    account_id: UUID
    day: dt.date
    modules: tuple[str, ...]


async def write_activity(
    session: AsyncSession, account_id: UUID, day: dt.date, modules: Sequence[str], *, tenant_id: UUID
) -> bool:
    """Insert the day's rows unless they exist (another request or process wrote them).

    Returns False, writing nothing, when the account no longer exists (the request that
    deleted it is recorded after its own response)."""
    ensure_tenant(tenant_id)
    account = await session.scalar(
        select(Account.id).where(Account.tenant_id == tenant_id, Account.id == account_id)
    )
    if account is None:
        return False
    rows = [
        {"tenant_id": tenant_id, "week": week_of(day), "module": module, "account_id": account_id, "day": day}
        for module in modules
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(ActivityDay).values(rows).on_conflict_do_nothing())
    return True


async def prune_activity(session: AsyncSession, commune_id: UUID, *, today: dt.date | None = None) -> int:
    """Delete the commune's activity days older than the retention; returns how many."""
    ensure_tenant(commune_id)
    cutoff = (today or brussels_today()) - dt.timedelta(days=RETENTION_DAYS)
    outcome = await session.execute(
        delete(ActivityDay).where(
            ActivityDay.tenant_id == commune_id,
            ActivityDay.week <= week_of(cutoff),  # the key's range; ``day`` is exact
            ActivityDay.day < cutoff,
        )
    )
    return int(getattr(outcome, "rowcount", 0) or 0)


async def activity_of(session: AsyncSession, account_id: UUID) -> list[dict[str, str]]:
    """A person's activity days in the commune in scope, for their data download."""
    rows = await session.execute(
        select(ActivityDay.day, ActivityDay.module)
        .where(ActivityDay.account_id == account_id)
        .order_by(ActivityDay.day, ActivityDay.module)
    )
    return [{"day": day.isoformat(), "module": module or "site"} for day, module in rows.tuples()]


class ActivityRecorder:
    """The process's memo of activity already written today, and the writer."""

    def __init__(
        self,
        database: Database,
        *,
        memo_size: int = 200_000,
        today: Callable[[], dt.date] = brussels_today,
    ) -> None:
        self.database = database
        self.memo_size = memo_size
        self.today = today
        self._day: dt.date | None = None
        self._written: set[tuple[UUID, UUID, str]] = set()
        self._pruned: set[UUID] = set()

    def forget(self) -> None:
        """Forget what was written (a new day; tests)."""
        self._written.clear()
        self._pruned.clear()

    def visit(self, scope: dict[str, Any], user: CurrentUser) -> Visit | None:
        """What this request would record, or None (nearly always: already written today)."""
        if user.kind is not AccountKind.CITIZEN or user.acting_for is not None:
            return None
        path: str = scope["path"]
        if not counts_as_activity(path, scope.get("method", "GET")):
            return None
        site = scope.get("state", {}).get("site")
        if site is None:
            return None
        day = self.today()
        if day != self._day:
            self._day = day
            self.forget()
        module = module_of(path, site.enabled_modules)
        wanted = (SITE,) if module is None else (SITE, module)
        missing = tuple(name for name in wanted if (site.id, user.account_id, name) not in self._written)
        return Visit(site.id, user.account_id, day, missing) if missing else None

    async def serve(self, app: Any, scope: dict[str, Any], receive: Any, send: Any, visit: Visit) -> None:
        """Let ``app`` answer, then record the visit if the answer was not an error."""
        status = 0

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await app(scope, receive, watch)
        if 200 <= status < 400:
            await self.record(visit)

    async def record(self, visit: Visit) -> bool:
        """Write the visit's rows in a short transaction of their own; never raises."""
        keys = {(visit.tenant_id, visit.account_id, module) for module in visit.modules}
        if len(self._written) + len(keys) > self.memo_size:
            self._written.clear()
        self._written |= keys  # before writing: a second request meanwhile writes nothing
        prune = visit.tenant_id not in self._pruned
        self._pruned.add(visit.tenant_id)
        try:
            with tenant_scope(visit.tenant_id):
                async with self.database.transaction() as session:
                    written = await write_activity(
                        session, visit.account_id, visit.day, visit.modules, tenant_id=visit.tenant_id
                    )
                    if prune:
                        removed = await prune_activity(session, visit.tenant_id, today=visit.day)
                        if removed:
                            log.info("adoption.pruned", removed=removed)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._written -= keys
            if prune:
                self._pruned.discard(visit.tenant_id)
            log.warning("adoption.record_failed", exc_info=True)
            return False
        return written
