"""Giving someone a console role: the role now, their staff login at Keycloak by a job.

An operator names a person by e-mail (an intercommunale's administrator, another operator);
the role is stored at once and a job makes sure the person has a login in Keycloak's
``staff`` realm: a new one (Keycloak e-mails them a link to choose a password and set up
their authenticator app) or the one they already have (a commune's staff member who also
works for the intercommunale). Keycloak down: the job waits and retries.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from perron.errors import Conflict
from perron.identity import jobs as identity_jobs
from perron.identity import roles
from perron.identity.models import PlatformRole
from perron.jobs import JobContext, enqueue, job
from perron.logging import get_logger

log = get_logger("perron.console")

CONSOLE_LOGIN_JOB = "perron.console.create_console_login"


async def give_intercommunale_admin(
    session: AsyncSession, intercommunale_id: UUID, email: str, name: str, language: str = "fr"
) -> PlatformRole:
    granted = await roles.grant_intercommunale_admin(session, intercommunale_id, email, name)
    _queue_login(session, granted, language)
    return granted


async def give_operator(session: AsyncSession, email: str, name: str, language: str = "fr") -> PlatformRole:
    granted = await roles.grant_operator(session, email, name)
    _queue_login(session, granted, language)
    return granted


def _queue_login(session: AsyncSession, granted: PlatformRole, language: str) -> None:
    if identity_jobs.login_enabled():
        enqueue(
            session,
            CONSOLE_LOGIN_JOB,
            tenant_id=None,
            email=granted.email,
            name=granted.display_name,
            language=language,
        )


@job(CONSOLE_LOGIN_JOB, per_tenant=False, max_retries=12, min_backoff_ms=5_000)
async def create_console_login(ctx: JobContext, *, email: str, name: str, language: str = "fr") -> str:
    """Make sure ``email`` has a staff login at Keycloak (idempotent)."""
    from perron.identity import keycloak
    from perron.identity.keycloak import CONSOLE_CLIENT, site_base

    settings = identity_jobs.login_settings(CONSOLE_LOGIN_JOB)
    if settings is None:
        return "login is off"
    first, _, last = name.strip().partition(" ")
    try:
        await keycloak.create_staff_user(
            settings,
            email,
            first or email,
            last.strip() or first or email,
            language if language in keycloak.LANGUAGES else "fr",
            client_id=CONSOLE_CLIENT,
            redirect_uri=site_base(settings, settings.console_host, settings.public_port) + "/",
        )
    except Conflict:
        log.info("console.login_exists", email=email)
        return "existing login"
    log.info("console.login_created", email=email)
    return "created"
