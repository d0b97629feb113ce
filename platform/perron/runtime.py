"""What one Perron process holds: settings, database, caches, jobs, templates.

Each process (web server, worker, command) builds one :class:`Runtime` and starts the
parts it needs. Nothing here keeps state another process needs: caches are invalidated
through :mod:`perron.cache`, work goes through the outbox and the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from perron import mail, signals
from perron import models as _models
from perron.adoption.recording import ActivityRecorder
from perron.billing import jobs as _billing_jobs  # noqa: F401  (its jobs)
from perron.billing import service as billing
from perron.cache import Invalidation, InvalidationService, hub
from perron.config import Settings
from perron.console import invitations as _invitations  # noqa: F401  (its job)
from perron.console import provisioning as _provisioning  # noqa: F401  (its job)
from perron.db.engine import Database
from perron.db.migrate import missing_heads, sync_url
from perron.errors import PerronError
from perron.identity import jobs as identity_jobs
from perron.identity import personal_data as _personal_data  # noqa: F401  (its jobs)
from perron.identity import roles as _roles  # noqa: F401  (its jobs)
from perron.identity.oidc import Providers
from perron.jobs.runtime import Jobs
from perron.logging import get_logger
from perron.modules.registry import registry
from perron.tenancy.archive import jobs as _archive_jobs  # noqa: F401  (its jobs)
from perron.tenancy.resolver import TenantResolver
from perron.web.templating import Templates, theme_template_dirs

assert _models.metadata is not None  # every model registered before anything queries

log = get_logger("perron.runtime")


class SchemaNotReady(PerronError):
    """The database is missing migrations this code needs."""


class Runtime:
    def __init__(self, settings: Settings, *, run_worker: bool | None = None) -> None:
        self.settings = settings
        registry.load_installed()  # before templates and migrations: modules add to both
        self.database = Database(settings.database, pool_size=settings.database_pool_size)
        self.resolver = TenantResolver(
            self.database,
            ttl=settings.tenant_cache_ttl_seconds,
            size=settings.tenant_cache_size,
            billing=settings.billing_enabled,
        )
        self.invalidations = InvalidationService(self.database, settings.redis_url)
        self.jobs = Jobs(settings, self.database, run_worker=run_worker)
        self.templates = Templates(theme_template_dirs(settings.themes_dir))
        self.identity = Providers(settings)
        self.billing = billing.Billing(settings, self.database)
        self.activity = ActivityRecorder(self.database)
        self._unsubscribe: Any = None
        self._mail_before: Any = None
        self.started = False

    async def start(self, *, serve: bool = True) -> None:
        """Check the database, then start listening for invalidations and relaying jobs."""
        await asyncio.to_thread(self.check_schema)
        await self.database.verify_isolation()
        self._unsubscribe = hub.subscribe(self._on_invalidation)
        await self.invalidations.start()
        await self.jobs.start()
        signals.dispatcher.bind(self.database)
        self._mail_before = mail.configure(self.settings, self.templates)
        identity_jobs.configure(self.settings)
        billing.configure(self.settings)
        self.started = True
        log.info(
            "runtime.started",
            database=self.database.dialect,
            jobs="in-process" if self.jobs.run_worker else "broker",
            serve=serve,
        )

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        await signals.dispatcher.drain()
        signals.dispatcher.unbind(self.database)
        if self.started:
            mail.restore(self._mail_before)
            identity_jobs.unconfigure(self.settings)
            billing.unconfigure(self.settings)
        await self.jobs.stop()
        await self.invalidations.stop()
        await self.database.dispose()
        self.started = False

    async def readiness(self) -> dict[str, str]:
        """Whether this process can serve: database, broker, and its own start-up."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                await self.database.ping()
            checks["database"] = "ok"
        except Exception as error:
            log.warning("readiness.database_failed", error=str(error))
            checks["database"] = "unreachable"
        try:
            async with asyncio.timeout(2):
                await asyncio.to_thread(self.jobs.ping_broker)
            checks["broker"] = "ok"
        except Exception as error:
            log.warning("readiness.broker_failed", error=str(error))
            checks["broker"] = "unreachable"
        checks["runtime"] = "ok" if self.started else "starting"
        return checks

    def _on_invalidation(self, notice: Invalidation) -> None:
        self.resolver.invalidate(notice.tenant_id, hosts=notice.hosts)

    def check_schema(self) -> None:
        engine = create_engine(sync_url(self.settings.database))
        try:
            with engine.connect() as connection:
                current = {
                    row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))
                }
        except SQLAlchemyError:
            current = set()
        finally:
            engine.dispose()
        missing = missing_heads(self.settings, current)
        if missing:
            raise SchemaNotReady(
                "the database schema is not up to date "
                f"(database at {sorted(current) or 'nothing'}, missing {sorted(missing)}): "
                "run `perron db upgrade`"
            )


@asynccontextmanager
async def command_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime for a short command: no worker. Before it returns, cache notices are
    published and, with a real broker, queued jobs handed over; in the embedded mode they
    stay in the outbox for the server's relay (an in-memory queue would die with us)."""
    runtime = Runtime(settings, run_worker=False)
    await asyncio.to_thread(runtime.check_schema)
    await runtime.invalidations.start(listen=False)
    runtime.jobs.declare_actors()
    signals.dispatcher.bind(runtime.database)
    mail_before = mail.configure(settings, runtime.templates)
    billing.configure(settings)
    try:
        yield runtime
    finally:
        billing.unconfigure(settings)
        await signals.dispatcher.drain()
        signals.dispatcher.unbind(runtime.database)
        mail.restore(mail_before)
        if settings.redis_url:
            try:
                await runtime.jobs.relay_once()
            except Exception:
                log.warning("command.relay_failed", exc_info=True)
        await runtime.invalidations.stop()
        runtime.jobs.broker.close()
        await runtime.database.dispose()
