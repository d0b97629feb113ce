"""The provisioning job: from an onboarding's request to a commune whose site answers.

Each step looks at what exists before it acts, so the job can be run again after any failure
(or after its process was killed) and finishes what is missing without doing anything twice:
the commune is found by the id the onboarding recorded, branding and settings are set to
values (setting a value twice changes nothing), modules already on stay on, demo content is
added by modules that check what is already there, administrators already invited are not
invited again. Each step's work is committed with its progress report, so what the console
shows as done is done.

A service that cannot be reached (Keycloak, Stripe) makes the step raise a temporary error:
the job waits and retries with growing delays, and the console shows why it waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select

from perron import audit
from perron.console.models import Onboarding, OnboardingStatus
from perron.console.onboarding import PROVISION_JOB, admins_of
from perron.db.base import utcnow
from perron.db.scope import tenant_scope
from perron.errors import Conflict, Invalid
from perron.i18n import lazy
from perron.identity import jobs as identity_jobs
from perron.identity.models import Account, AccountKind
from perron.identity.roles import ADMIN, invite_staff
from perron.jobs import JobContext, job
from perron.logging import get_logger
from perron.media import MediaStore
from perron.modules import activation
from perron.tenancy import actions
from perron.tenancy.models import Commune, CommuneStatus, Intercommunale

log = get_logger("perron.console")


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    title: str
    """What the console shows while the step runs (English message id)."""


STEPS = (
    Step("commune", lazy("Creating the commune and its addresses")),
    Step("billing", lazy("Its customer account for billing (Stripe)")),
    Step("branding", lazy("Colours and logo")),
    Step("modules", lazy("Modules and their settings")),
    Step("demo", lazy("Demo content")),
    Step("login", lazy("Login for citizens and staff (Keycloak)")),
    Step("admins", lazy("Inviting the administrators")),
    Step("open", lazy("Opening the site")),
)


def planned_steps(spec: dict[str, Any]) -> list[Step]:
    """The steps this onboarding goes through (demo content only when asked for, billing only
    where the deployment bills)."""
    settings = identity_jobs.current_settings()
    billing = settings is not None and settings.billing_enabled
    return [
        step
        for step in STEPS
        if (step.name != "demo" or spec.get("demo")) and (step.name != "billing" or billing)
    ]


@dataclass
class _Run:
    ctx: JobContext
    onboarding: Onboarding
    spec: dict[str, Any]
    commune_id: UUID | None = None


async def _commune(run: _Run) -> None:
    session, spec = run.ctx.session, run.spec
    if run.onboarding.commune_id is not None:
        existing = await session.get(Commune, run.onboarding.commune_id)
        if existing is not None:
            run.commune_id = existing.id
            return
    settings = identity_jobs.current_settings()
    commune = await actions.create_commune(
        session,
        slug=spec["slug"],
        nis_code=spec["nis_code"],
        names=spec["names"],
        languages=spec["languages"],
        domains=spec["domains"],
        console_host=settings.console_host if settings else None,
        intercommunale=spec.get("intercommunale"),
        status=CommuneStatus.PROVISIONING,
    )
    run.onboarding.commune_id = commune.id
    run.commune_id = commune.id


async def _billing(run: _Run) -> None:
    """The paying body's Stripe customer: the intercommunale's for a member (it pays for its
    members unless a commune subscribes itself), the commune's own otherwise. Stripe
    unreachable: a temporary error, the job waits and retries."""
    from perron.billing.service import ensure_customer

    commune = await run.ctx.session.get(Commune, run.commune_id)
    assert commune is not None
    body = (
        await run.ctx.session.get(Intercommunale, commune.intercommunale_id)
        if commune.intercommunale_id
        else None
    )
    await ensure_customer(run.ctx.session, body or commune)


async def _branding(run: _Run) -> None:
    assert run.commune_id is not None
    branding = run.spec.get("branding") or {}
    await actions.update_branding(
        run.ctx.session,
        run.commune_id,
        palette=branding.get("palette"),
        font=branding.get("font"),
        tagline=branding.get("tagline"),
    )
    if run.onboarding.logo:
        settings = identity_jobs.current_settings()
        assert settings is not None
        await actions.set_logo(
            run.ctx.session,
            run.commune_id,
            run.onboarding.logo,
            run.onboarding.logo_filename,
            media=MediaStore.for_settings(settings),
        )


async def _modules(run: _Run) -> None:
    assert run.commune_id is not None
    for name, values in (run.spec.get("modules") or {}).items():
        if values:
            await activation.update_settings(run.ctx.session, run.commune_id, name, values)
        await activation.enable(run.ctx.session, run.commune_id, name)


async def _demo(run: _Run) -> None:
    assert run.commune_id is not None
    for name in run.spec.get("modules") or {}:
        await activation.seed(run.ctx.session, run.commune_id, name)


async def _login(run: _Run) -> None:
    """The commune's login clients at Keycloak, now (Keycloak down: the job waits)."""
    from perron.identity.keycloak import commune_login, sync_commune_clients

    settings = identity_jobs.current_settings()
    if settings is None or not settings.login_enabled or run.commune_id is None:
        return
    login = await commune_login(run.ctx.session, run.commune_id)
    if login is None:
        raise Conflict(f"commune {run.spec['slug']} disappeared during its provisioning")
    await sync_commune_clients(settings, login, port=settings.public_port)


async def _admins(run: _Run) -> None:
    assert run.commune_id is not None
    session = run.ctx.session
    for admin in admins_of(run.spec):
        existing = await session.scalar(
            select(Account.id).where(
                Account.kind == AccountKind.STAFF, Account.email == admin.email, Account.disabled.is_(False)
            )
        )
        if existing is not None:
            continue
        await invite_staff(session, run.commune_id, admin.email, admin.name, [ADMIN], admin.language)


async def _open(run: _Run) -> None:
    assert run.commune_id is not None
    commune = await run.ctx.session.get(Commune, run.commune_id)
    assert commune is not None
    if commune.status is CommuneStatus.PROVISIONING:
        await actions.set_status(run.ctx.session, commune, CommuneStatus.ACTIVE)


_ACTIONS: dict[str, Callable[[_Run], Awaitable[None]]] = {
    "commune": _commune,
    "billing": _billing,
    "branding": _branding,
    "modules": _modules,
    "demo": _demo,
    "login": _login,
    "admins": _admins,
    "open": _open,
}

IN_COMMUNE_SCOPE = frozenset({"modules", "demo", "admins"})
"""Steps that run inside the commune's own scope: modules' hooks and demo content, and the
staff accounts, are the commune's data and are written the way its own requests write them."""


@job(PROVISION_JOB, per_tenant=False, max_retries=30, min_backoff_ms=2_000, max_backoff_ms=300_000)
async def provision_commune(ctx: JobContext, *, onboarding_id: str) -> dict[str, Any]:
    """Provision the commune an onboarding asks for (see the module's docstring)."""
    try:
        key = UUID(onboarding_id)
    except ValueError:
        raise Invalid("onboarding_id", f"{onboarding_id!r} is not an onboarding id") from None
    onboarding = await ctx.session.get(Onboarding, key)
    if onboarding is None:
        raise Invalid("onboarding_id", f"there is no onboarding {onboarding_id}")
    if onboarding.status is OnboardingStatus.DONE:
        return {"commune": onboarding.spec.get("slug"), "already": True}
    run = _Run(ctx, onboarding, dict(onboarding.spec), onboarding.commune_id)
    steps = planned_steps(run.spec)
    await ctx.progress(0, len(steps), steps[0].name)
    for index, step in enumerate(steps):
        following = steps[index + 1].name if index + 1 < len(steps) else "done"
        # Each step's work is committed with the report that it is done, in the scope it ran in
        # (a transaction never spans two scopes).
        scope = (
            tenant_scope(run.commune_id)
            if step.name in IN_COMMUNE_SCOPE and run.commune_id
            else nullcontext()
        )
        with scope:
            await _ACTIONS[step.name](run)
            await ctx.session.flush()
            await ctx.progress(index + 1, len(steps), following)
    onboarding = await ctx.session.get(Onboarding, key)  # the object outlives the commits
    assert onboarding is not None
    onboarding.status = OnboardingStatus.DONE
    onboarding.finished_at = utcnow()
    onboarding.logo = None  # stored in the commune's media now
    audit.record_platform(
        ctx.session,
        action="onboarding.done",
        object_type="onboarding",
        object_id=str(onboarding.id),
        intercommunale_id=onboarding.intercommunale_id,
        changes={"commune": run.spec.get("slug")},
    )
    log.info("console.commune_provisioned", commune=run.spec.get("slug"))
    return {"commune": run.spec.get("slug")}
