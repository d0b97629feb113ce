"""The console's pages: the overview, communes and their lifecycle, intercommunales and their
administrators, the operators, and failed jobs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import func, select

from perron import __version__
from perron.adoption import adoption_overview, adoption_report, adoption_view
from perron.console import access, invitations
from perron.console.health import health_of
from perron.console.models import Onboarding
from perron.console.web.common import (
    ConsoleRequest,
    console_page,
    errors_of,
    form_of,
    language_of,
    logged_in_guard,
    require_console_user,
    runtime_of,
    texts,
)
from perron.errors import Conflict, Invalid, NotFound, PerronError
from perron.i18n import gettext
from perron.identity import roles
from perron.identity.keycloak import site_base
from perron.identity.models import PlatformRole
from perron.jobs import deadletters
from perron.modules.registry import registry
from perron.tenancy import actions, archive
from perron.tenancy.models import Commune, CommuneStatus, Intercommunale, ModuleActivation
from perron.web.pages import READ_ONLY


def _site_url(request: ConsoleRequest, host: str) -> str:
    settings = runtime_of(request).settings
    return site_base(settings, host, settings.public_port) + "/" if host else ""


# Overview ---------------------------------------------------------------------------------


@get("/", name="console_home", opt=READ_ONLY)
async def home(request: ConsoleRequest) -> Response[bytes]:
    """Anyone: whether the platform works. Logged in: the communes one manages."""
    runtime = runtime_of(request)
    checks = await runtime.readiness()
    user = request.scope["state"].get("console_user")
    async with runtime.database.session() as session:
        counts = await actions.count_communes(session)
        context: dict[str, Any] = {
            "checks": checks,
            "healthy": all(value == "ok" for value in checks.values()),
            "counts": {status: counts.get(status, 0) for status in CommuneStatus},
            "version": __version__,
        }
        if user is None:
            return console_page(request, "perron/console/status.html", **context)
        communes = await access.visible_communes(session, user)
        bodies = await access.visible_intercommunales(session, user)
        onboardings = await access.visible_onboardings(session, user, limit=10)
        health = await health_of(session, [commune.id for commune, _ in communes])
        usage = await adoption_overview(session, [commune.id for commune, _ in communes])
    names = {body.id: body.name(language_of(request)) for body in bodies}
    rows = [
        {
            "commune": commune,
            "name": commune.name(language_of(request)),
            "url": _site_url(request, host),
            "host": host,
            "intercommunale": names.get(commune.intercommunale_id, "") if commune.intercommunale_id else "",
            "health": health[commune.id],
            "usage": usage[commune.id],
        }
        for commune, host in communes
    ]
    return console_page(
        request,
        "perron/console/overview.html",
        rows=rows,
        intercommunales=bodies,
        onboardings=onboardings,
        **context,
    )


# Communes ---------------------------------------------------------------------------------


@get("/communes", name="console_communes", guards=[logged_in_guard], opt=READ_ONLY)
async def communes(request: ConsoleRequest) -> Response[bytes]:
    user = require_console_user(request)
    wanted = request.query_params.get("status")
    status = CommuneStatus(wanted) if wanted in {s.value for s in CommuneStatus} else None
    async with runtime_of(request).database.session() as session:
        found = await access.visible_communes(session, user, status=status)
        bodies = {body.id: body for body in await access.visible_intercommunales(session, user)}
        health = await health_of(session, [commune.id for commune, _ in found])
    language = language_of(request)
    rows = [
        {
            "commune": commune,
            "name": commune.name(language),
            "url": _site_url(request, host),
            "host": host,
            "intercommunale": bodies[commune.intercommunale_id].name(language)
            if commune.intercommunale_id in bodies
            else "",
            "health": health[commune.id],
        }
        for commune, host in found
    ]
    return console_page(
        request,
        "perron/console/communes.html",
        rows=rows,
        status=status,
        deleted=request.query_params.get("name") if request.query_params.get("done") == "deleted" else None,
    )


async def commune_page(
    request: ConsoleRequest,
    slug: str,
    *,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    status: int = 400,
) -> Response[bytes]:
    user = require_console_user(request)
    language = language_of(request)
    async with runtime_of(request).database.session() as session:
        commune = await access.commune_for(session, user, slug)
        domains = await actions.commune_domains(session, commune.id)
        body = (
            await session.get(Intercommunale, commune.intercommunale_id)
            if commune.intercommunale_id
            else None
        )
        modules = set(
            await session.scalars(
                select(ModuleActivation.module).where(
                    ModuleActivation.tenant_id == commune.id, ModuleActivation.enabled.is_(True)
                )
            )
        )
        letters = await deadletters.list_dead_letters(session, commune_id=commune.id, limit=20)
        health = (await health_of(session, [commune.id]))[commune.id]
        onboarding = await session.scalar(
            select(Onboarding)
            .where(Onboarding.commune_id == commune.id)
            .order_by(Onboarding.created_at.desc())
        )
        exports = await archive.list_exports(session, commune_id=commune.id, limit=10)
        manifests = [manifest for manifest in registry.ordered(modules) if manifest.routes]
        report = await adoption_report(session, commune.id, weeks=12, modules=[m.name for m in manifests])
    primary = next((domain.host for domain in domains if domain.is_primary), "")
    titles = {manifest.name: manifest.title(language) for manifest in registry.ordered()}
    return console_page(
        request,
        "perron/console/commune.html",
        status_code=status if errors else 200,
        commune=commune,
        name=commune.name(language),
        url=_site_url(request, primary),
        domains=domains,
        intercommunale=body,
        modules=sorted(titles.get(name, name) for name in modules),
        letters=letters,
        health=health,
        onboarding=onboarding,
        errors=errors or {},
        done=done,
        commune_languages=commune.languages,
        exports=exports,
        adoption=adoption_view(
            report,
            language=language,
            module_titles={manifest.name: manifest.title(language) for manifest in manifests},
        ),
        billing=runtime_of(request).billing.enabled,
    )


@get("/communes/{slug:str}", name="console_commune", guards=[logged_in_guard])
async def commune(request: ConsoleRequest, slug: FromPath[str]) -> Response[bytes]:
    return await commune_page(request, slug, done=request.query_params.get("done"))


LIFECYCLE = {
    "suspend": CommuneStatus.SUSPENDED,
    "resume": CommuneStatus.ACTIVE,
    "archive": CommuneStatus.ARCHIVED,
}


@post("/communes/{slug:str}/lifecycle/{verb:str}", name="console_commune_lifecycle", guards=[logged_in_guard])
async def lifecycle(
    request: ConsoleRequest, slug: FromPath[str], verb: FromPath[str]
) -> Response[bytes] | Redirect:
    """Suspend (the site shows a notice in the commune's branding; data kept), resume, archive."""
    if verb not in LIFECYCLE:
        raise NotFoundException()
    user = require_console_user(request)
    form = await form_of(request)
    try:
        async with runtime_of(request).database.transaction() as session:
            target = await access.commune_for(session, user, slug)
            if verb == "archive" and form.get("confirm", "").strip().casefold() not in {
                name.casefold() for name in target.names.values()
            } | {target.slug}:
                raise Invalid(
                    "confirm",
                    gettext("Type the commune's name exactly as shown to confirm: %(name)s")
                    % {"name": target.name(language_of(request))},
                )
            notice = texts(form, "notice") if verb == "suspend" else None
            if not await actions.set_status(session, target, LIFECYCLE[verb], notice=notice):
                raise Conflict(gettext("Nothing changed: the commune was already in that state."))
    except NotFound:
        raise
    except PerronError as error:
        return await commune_page(request, slug, errors=errors_of(error, verb), status=error.status_code)
    return Redirect(f"/communes/{slug}?done={verb}", status_code=303)


# Intercommunales ---------------------------------------------------------------------------


@get("/intercommunales", name="console_intercommunales", guards=[logged_in_guard])
async def intercommunales(request: ConsoleRequest) -> Response[bytes]:
    return await _intercommunales_page(request)


async def _intercommunales_page(
    request: ConsoleRequest, *, errors: dict[str, str] | None = None, submitted: dict[str, Any] | None = None
) -> Response[bytes]:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        bodies = await access.visible_intercommunales(session, user)
        members = dict(
            (
                await session.execute(
                    select(Commune.intercommunale_id, func.count())
                    .where(Commune.intercommunale_id.in_([body.id for body in bodies]))
                    .group_by(Commune.intercommunale_id)
                )
            )
            .tuples()
            .all()
        )
    return console_page(
        request,
        "perron/console/intercommunales.html",
        status_code=400 if errors else 200,
        bodies=bodies,
        members=members,
        errors=errors or {},
        submitted=submitted or {},
    )


@post("/intercommunales", name="console_intercommunale_create", guards=[logged_in_guard])
async def intercommunale_create(request: ConsoleRequest) -> Response[bytes] | Redirect:
    user = require_console_user(request)
    access.require_operator(user)
    form = await form_of(request)
    slug = str(form.get("slug", "")).strip().lower()
    try:
        names = texts(form, "name")
        if not names:
            raise Invalid("name.fr", gettext("Write the intercommunale's name in at least one language."))
        email = str(form.get("contact_email", "")).strip() or None
        if email is not None:
            email = roles.check_email(email)
        async with runtime_of(request).database.transaction() as session:
            await actions.create_intercommunale(session, slug=slug, names=names, contact_email=email)
    except PerronError as error:
        return await _intercommunales_page(request, errors=errors_of(error, "slug"), submitted=form)
    return Redirect(f"/intercommunales/{slug}?done=created", status_code=303)


async def _intercommunale_page(
    request: ConsoleRequest,
    slug: str,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
) -> Response[bytes]:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        body = await access.intercommunale_for(session, user, slug)
        members = await access.visible_communes(session, user, intercommunale_id=body.id)
        admins = list(
            await session.scalars(
                select(PlatformRole)
                .where(
                    PlatformRole.role == roles.INTERCOMMUNALE_ADMIN, PlatformRole.intercommunale_id == body.id
                )
                .order_by(PlatformRole.email)
            )
        )
        health = await health_of(session, [commune.id for commune, _ in members])
    language = language_of(request)
    return console_page(
        request,
        "perron/console/intercommunale.html",
        status_code=400 if errors else 200,
        body=body,
        name=body.name(language),
        rows=[
            {
                "commune": commune,
                "name": commune.name(language),
                "host": host,
                "url": _site_url(request, host),
                "health": health[commune.id],
            }
            for commune, host in members
        ],
        admins=admins,
        billing=runtime_of(request).billing.enabled,
        errors=errors or {},
        submitted=submitted or {},
        done=request.query_params.get("done"),
    )


@get("/intercommunales/{slug:str}", name="console_intercommunale", guards=[logged_in_guard])
async def intercommunale(request: ConsoleRequest, slug: FromPath[str]) -> Response[bytes]:
    return await _intercommunale_page(request, slug)


@post("/intercommunales/{slug:str}/admins", name="console_intercommunale_admin_add", guards=[logged_in_guard])
async def admin_add(request: ConsoleRequest, slug: FromPath[str]) -> Response[bytes] | Redirect:
    """Operators give a person the administration of an intercommunale (by their e-mail)."""
    user = require_console_user(request)
    access.require_operator(user)
    form = await form_of(request)
    try:
        async with runtime_of(request).database.transaction() as session:
            body = await access.intercommunale_for(session, user, slug)
            await invitations.give_intercommunale_admin(
                session,
                body.id,
                str(form.get("email", "")),
                str(form.get("display_name", "")),
                language_of(request),
            )
    except NotFound:
        raise
    except PerronError as error:
        return await _intercommunale_page(request, slug, errors=errors_of(error, "email"), submitted=form)
    return Redirect(f"/intercommunales/{slug}?done=admin_added", status_code=303)


@post(
    "/intercommunales/{slug:str}/admins/{role_id:uuid}/remove",
    name="console_intercommunale_admin_remove",
    guards=[logged_in_guard],
)
async def admin_remove(request: ConsoleRequest, slug: FromPath[str], role_id: FromPath[UUID]) -> Redirect:
    user = require_console_user(request)
    access.require_operator(user)
    async with runtime_of(request).database.transaction() as session:
        body = await access.intercommunale_for(session, user, slug)
        granted = await session.get(PlatformRole, role_id)
        if granted is None or granted.intercommunale_id != body.id:
            raise NotFoundException()
        await roles.revoke_platform_role(session, role_id)
    return Redirect(f"/intercommunales/{slug}?done=admin_removed", status_code=303)


# Operators ---------------------------------------------------------------------------------


async def _operators_page(
    request: ConsoleRequest, *, errors: dict[str, str] | None = None, submitted: dict[str, Any] | None = None
) -> Response[bytes]:
    user = require_console_user(request)
    access.require_operator(user)
    async with runtime_of(request).database.session() as session:
        operators = list(
            await session.scalars(
                select(PlatformRole).where(PlatformRole.role == roles.OPERATOR).order_by(PlatformRole.email)
            )
        )
    return console_page(
        request,
        "perron/console/operators.html",
        status_code=400 if errors else 200,
        operators=operators,
        errors=errors or {},
        submitted=submitted or {},
        done=request.query_params.get("done"),
    )


@get("/operators", name="console_operators", guards=[logged_in_guard])
async def operators(request: ConsoleRequest) -> Response[bytes]:
    return await _operators_page(request)


@post("/operators", name="console_operator_add", guards=[logged_in_guard])
async def operator_add(request: ConsoleRequest) -> Response[bytes] | Redirect:
    user = require_console_user(request)
    access.require_operator(user)
    form = await form_of(request)
    try:
        async with runtime_of(request).database.transaction() as session:
            await invitations.give_operator(
                session, str(form.get("email", "")), str(form.get("display_name", "")), language_of(request)
            )
    except PerronError as error:
        return await _operators_page(request, errors=errors_of(error, "email"), submitted=form)
    return Redirect("/operators?done=added", status_code=303)


@post("/operators/{role_id:uuid}/remove", name="console_operator_remove", guards=[logged_in_guard])
async def operator_remove(request: ConsoleRequest, role_id: FromPath[UUID]) -> Response[bytes] | Redirect:
    user = require_console_user(request)
    access.require_operator(user)
    try:
        async with runtime_of(request).database.transaction() as session:
            granted = await session.get(PlatformRole, role_id)
            if granted is None or granted.role != roles.OPERATOR:
                raise NotFoundException()
            await roles.revoke_platform_role(session, role_id)
    except Conflict as error:
        return await _operators_page(request, errors=errors_of(error, "operators"))
    return Redirect("/operators?done=removed", status_code=303)


# Failed jobs (operators) -------------------------------------------------------------------


async def _jobs_page(request: ConsoleRequest, *, errors: dict[str, str] | None = None) -> Response[bytes]:
    user = require_console_user(request)
    access.require_operator(user)
    async with runtime_of(request).database.session() as session:
        letters = await deadletters.list_dead_letters(session, limit=200)
        ids = {letter.commune_id for letter in letters if letter.commune_id}
        slugs = dict(
            (await session.execute(select(Commune.id, Commune.slug).where(Commune.id.in_(ids))))
            .tuples()
            .all()
        )
    return console_page(
        request,
        "perron/console/jobs.html",
        status_code=400 if errors else 200,
        letters=letters,
        slugs=slugs,
        errors=errors or {},
        done=request.query_params.get("done"),
    )


@get("/jobs", name="console_jobs", guards=[logged_in_guard])
async def jobs(request: ConsoleRequest) -> Response[bytes]:
    return await _jobs_page(request)


@post("/jobs/{letter_id:uuid}/{verb:str}", name="console_job_action", guards=[logged_in_guard])
async def job_action(
    request: ConsoleRequest, letter_id: FromPath[UUID], verb: FromPath[str]
) -> Response[bytes] | Redirect:
    """Run a failed job again, or put it aside (both in the platform's audit log)."""
    if verb not in ("retry", "discard"):
        raise NotFoundException()
    user = require_console_user(request)
    access.require_operator(user)
    try:
        async with runtime_of(request).database.transaction() as session:
            if verb == "retry":
                await deadletters.retry_dead_letter(session, letter_id)
            else:
                await deadletters.discard_dead_letter(session, letter_id)
    except NotFound:
        raise
    except PerronError as error:
        return await _jobs_page(request, errors=errors_of(error, "jobs"))
    return Redirect(f"/jobs?done={verb}", status_code=303)


ROUTES = [
    home,
    communes,
    commune,
    lifecycle,
    intercommunales,
    intercommunale_create,
    intercommunale,
    admin_add,
    admin_remove,
    operators,
    operator_add,
    operator_remove,
    jobs,
    job_action,
]
