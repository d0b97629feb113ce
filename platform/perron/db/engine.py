"""The database handle every process opens once: engine, sessions, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

# Importing these registers lock 1 and lock 2 on every Session.
from perron.db import guard, hooks, rls  # noqa: F401

WRITE_OPTION = "perron_write"
"""Execution option marking a transaction that will write (SQLite locks for it up front)."""


class IsolationNotEnforced(RuntimeError):
    """The database connection would let one commune read another's rows."""


def create_engine(url: URL, *, pool_size: int = 10, echo: bool = False, pooled: bool = True) -> AsyncEngine:
    options: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": 30}
    elif pooled:
        options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
    if not pooled:
        options["poolclass"] = NullPool
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Real transactions on SQLite: the driver's own handling defers BEGIN and breaks
    savepoints, so SQLAlchemy emits BEGIN itself (the documented recipe).

    Write transactions (:meth:`Database.transaction`) begin with ``BEGIN IMMEDIATE``, taking
    the write lock at the start: in WAL mode a transaction that reads first and writes later
    fails at once (SQLITE_BUSY_SNAPSHOT, no waiting) when another writer committed in
    between, which jobs running beside requests make likely; waiting for the lock instead
    serialises writers, which suits the single-machine embedded deployment. Read sessions
    begin with a plain ``BEGIN`` and never block anyone (WAL readers do not)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
            "PRAGMA synchronous=NORMAL",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")


class Database:
    """One engine and its session factory; created once per process and per event loop."""

    def __init__(self, url: URL, *, pool_size: int = 10, echo: bool = False, pooled: bool = True) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, echo=echo, pooled=pooled)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=True, sync_session_class=guard.GuardedSession
        )

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading. Leaving it rolls back; write through :meth:`transaction`."""
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed when the block ends without error."""
        async with self.sessionmaker() as session, session.begin():
            if self.dialect == "sqlite":
                await session.connection(execution_options={"perron_write": True})  # WRITE_OPTION
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            # A liveness question takes no lock (SQLite would otherwise queue it behind writers).
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("SELECT 1"))

    async def verify_isolation(self) -> None:
        """Refuse to serve when PostgreSQL's row-level security would not hold."""
        if self.dialect != "postgresql":
            return
        from perron.db.base import TENANT_TABLES
        from perron.db.rls import check_application_role

        async with self.engine.connect() as connection:
            problems = await connection.run_sync(check_application_role, sorted(TENANT_TABLES))
        if problems:
            lines = "\n".join(f"  - {problem.message}" for problem in problems)
            raise IsolationNotEnforced(
                "PERRON_DATABASE_URL connects with a role that would let communes see each other's "
                f"data:\n{lines}\nSee docs/operations.md, 'PostgreSQL roles'."
            )

    async def dispose(self) -> None:
        await self.engine.dispose()
