"""From a request's Host to its commune, with a cache every process keeps coherent.

Two caches, both bounded and with a time-to-live as a safety net:

* host -> (commune id, is primary), including "no such host" answers, so a flood of
  random hosts costs one query each at most once per TTL;
* commune id -> :class:`~perron.tenancy.site.TenantSite`.

A change to a commune calls :func:`perron.cache.invalidate`; every process then drops the
commune's snapshot (and, for domain changes, the whole host map) within a second.
Concurrent misses for the same key share one database read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from cachetools import TTLCache
from prometheus_client import Counter
from sqlalchemy import select

from perron.db.engine import Database
from perron.db.scope import tenant_scope
from perron.tenancy.models import Domain
from perron.tenancy.site import TenantSite, load_site

K = TypeVar("K")
V = TypeVar("V")

CACHE_LOOKUPS = Counter("perron_tenant_cache_lookups_total", "Tenant cache lookups", ["cache", "result"])


_HITS = {name: CACHE_LOOKUPS.labels(name, "hit") for name in ("host", "site")}
_MISSES = {name: CACHE_LOOKUPS.labels(name, "miss") for name in ("host", "site")}


class Outcome(StrEnum):
    SERVE = "serve"
    REDIRECT = "redirect"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    site: TenantSite | None = None

    @property
    def redirect_host(self) -> str:
        assert self.site is not None
        return self.site.primary_host


@dataclass(frozen=True, slots=True)
class _HostEntry:
    tenant_id: UUID
    is_primary: bool


_NO_SUCH_HOST = object()
UNKNOWN = Resolution(Outcome.UNKNOWN)


class TenantResolver:
    def __init__(
        self, database: Database, *, ttl: float = 300.0, size: int = 20_000, billing: bool = False
    ) -> None:
        self.database = database
        self.billing = billing
        """Snapshots say until when citizens may use billable modules (billing is on)."""
        self._hosts: TTLCache[str, Any] = TTLCache(maxsize=size, ttl=ttl)
        self._sites: TTLCache[UUID, TenantSite | None] = TTLCache(maxsize=size, ttl=ttl)
        self._inflight: dict[tuple[str, object], asyncio.Future[Any]] = {}
        self._generation = 0
        """Bumped by every invalidation: a load that began before one is not cached."""

    async def resolve(self, host: str) -> Resolution:
        entry = await self._cached("host", self._hosts, host, self._load_host)
        if entry is _NO_SUCH_HOST:
            return UNKNOWN
        site = await self.site(entry.tenant_id)
        if site is None:
            return UNKNOWN
        if entry.is_primary or not site.primary_host:
            return Resolution(Outcome.SERVE, site)
        return Resolution(Outcome.REDIRECT, site)

    async def site(self, tenant_id: UUID) -> TenantSite | None:
        site: TenantSite | None = await self._cached("site", self._sites, tenant_id, self._load_site)
        return site

    def invalidate(self, tenant_id: UUID | None = None, *, hosts: bool = False) -> None:
        """Drop what a change made stale: one commune (or all), and the host map if asked."""
        self._generation += 1
        if tenant_id is None:
            self._sites.clear()
            self._hosts.clear()
            return
        self._sites.pop(tenant_id, None)
        if hosts:
            self._hosts.clear()

    async def _cached(self, name: str, cache: TTLCache[K, V], key: K, load: Callable[[K], Awaitable[V]]) -> V:
        try:
            value = cache[key]
        except KeyError:
            pass
        else:
            _HITS[name].inc()
            return value
        _MISSES[name].inc()
        flight = (name, key)
        pending = self._inflight.get(flight)
        if pending is not None:
            result: V = await asyncio.shield(pending)
            return result
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        generation = self._generation
        try:
            value = await load(key)
            if generation == self._generation:
                cache[key] = value
            future.set_result(value)
            return value
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._inflight[flight]

    async def _load_host(self, host: str) -> object:
        # Domains are a platform table: finding the commune needs no scope.
        async with self.database.session() as session:
            row = (
                await session.execute(select(Domain.commune_id, Domain.is_primary).where(Domain.host == host))
            ).first()
        return _NO_SUCH_HOST if row is None else _HostEntry(row.commune_id, row.is_primary)

    async def _load_site(self, tenant_id: UUID) -> TenantSite | None:
        with tenant_scope(tenant_id):
            async with self.database.session() as session:
                return await load_site(session, tenant_id, billing=self.billing)
