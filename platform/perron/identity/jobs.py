"""Keeping Keycloak in step with the communes, by jobs (Keycloak may be down for a while:
the jobs wait and retry, nothing is lost).

* :func:`sync_commune`: a commune's login clients in the ``citizens`` and ``staff`` realms:
  created with the commune, their redirect URIs following its domains, their branding
  following its name, logo and colours, disabled when it is archived.
* :func:`retire_commune_clients`: the clients of communes that no longer exist (deleted)
  disabled; an imported commune's clients come back through :func:`sync_commune`.

The commune actions queue them (:func:`commune_login_changed`, :func:`commune_login_retired`)
only where login is on.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from perron.config import Settings
from perron.jobs import JobContext, enqueue, job
from perron.logging import get_logger

log = get_logger("perron.identity")

SYNC_COMMUNE_JOB = "perron.identity.sync_commune"
RETIRE_CLIENTS_JOB = "perron.identity.retire_commune_clients"

_settings: list[Settings] = []
"""The settings of the running process (a stack: tests start several runtimes)."""


def configure(settings: Settings) -> None:
    _settings.append(settings)


def unconfigure(settings: Settings) -> None:
    if settings in _settings:
        _settings.remove(settings)


def current_settings() -> Settings | None:
    return _settings[-1] if _settings else None


def login_settings(job_name: str) -> Settings | None:
    """The settings a job talking to Keycloak needs, or None (logged) when login is off."""
    settings = current_settings()
    if settings is None or not settings.login_enabled:
        log.info("identity.job_skipped", job=job_name, reason="login is switched off")
        return None
    return settings


def login_enabled() -> bool:
    settings = current_settings()
    return settings is not None and settings.login_enabled


def commune_login_changed(session: AsyncSession, commune_id: UUID) -> None:
    """Queue the update of the commune's login clients (after the commit), if login is on."""
    if login_enabled():
        enqueue(session, SYNC_COMMUNE_JOB, tenant_id=commune_id)


@job(SYNC_COMMUNE_JOB, max_retries=12, min_backoff_ms=5_000)
async def sync_commune(ctx: JobContext) -> None:
    """Create or update the commune's clients at Keycloak (idempotent: the latest state wins;
    Keycloak unreachable is a temporary error: the job is retried)."""
    from perron.identity.keycloak import commune_login, sync_commune_clients

    settings = login_settings(SYNC_COMMUNE_JOB)
    if settings is None or ctx.tenant_id is None:
        return
    login = await commune_login(ctx.session, ctx.tenant_id)
    if login is None:
        log.info("identity.sync_commune_gone", commune=str(ctx.tenant_id))
        return
    await sync_commune_clients(settings, login, port=settings.public_port)
    log.info("identity.sync_commune", commune=login.slug)


def commune_login_retired(session: AsyncSession) -> None:
    """Queue the retirement of deleted communes' login clients (after the commit), if login
    is on. A platform job: the commune it was for no longer exists."""
    if login_enabled():
        enqueue(session, RETIRE_CLIENTS_JOB)


@job(RETIRE_CLIENTS_JOB, per_tenant=False, max_retries=12, min_backoff_ms=5_000)
async def retire_commune_clients(ctx: JobContext) -> list[str]:
    """Disable the ``commune-*`` clients whose commune is gone (idempotent: a commune
    imported again before this runs keeps its clients); returns those disabled."""
    from sqlalchemy import select

    from perron.identity.keycloak import disable_orphan_clients
    from perron.tenancy.models import Commune

    settings = login_settings(RETIRE_CLIENTS_JOB)
    if settings is None:
        return []
    slugs = set(await ctx.session.scalars(select(Commune.slug)))
    disabled = await disable_orphan_clients(settings, slugs)
    log.info("identity.retired_clients", clients=disabled)
    return disabled
