"""The onboarding wizard, and the provisioning's progress shown as it happens.

The wizard is a sequence of plain forms (it works without JavaScript): each step is saved in
the draft and checked when saved; the review step checks everything again and launches the
provisioning job. The progress page shows each step of the job; a small script refreshes it
while the job runs (without the script, a button reloads the page).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from uuid import UUID

from litestar import Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.console import access
from perron.console import onboarding as flow
from perron.console.auth import ConsoleUser
from perron.console.models import Onboarding, OnboardingStatus
from perron.console.provisioning import planned_steps
from perron.console.web.common import (
    ConsoleRequest,
    console_page,
    errors_of,
    form_of,
    language_of,
    logged_in_guard,
    path_id,
    require_console_user,
    runtime_of,
)
from perron.db.base import utcnow
from perron.errors import Invalid, NotFound, PerronError
from perron.i18n import gettext, lazy
from perron.jobs.status import status as job_status_of
from perron.modules.forms import build_form
from perron.modules.registry import registry
from perron.tenancy.branding import MAX_LOGO_BYTES
from perron.tenancy.models import DEFAULT_PALETTE, LANGUAGES, FontChoice, Intercommunale
from perron.web.pages import READ_ONLY

FONT_LABELS = {
    FontChoice.SYSTEM: lazy("Plain (the device's own font)"),
    FontChoice.HUMANIST: lazy("Humanist (warm, very legible)"),
    FontChoice.SERIF: lazy("Serif (classic)"),
    FontChoice.ROUNDED: lazy("Rounded (friendly)"),
}
COLOUR_LABELS = {
    "primary_color": lazy("Main colour (header)"),
    "primary_text_color": lazy("Text on the main colour"),
    "accent_color": lazy("Links and buttons"),
    "background_color": lazy("Page background"),
    "text_color": lazy("Body text"),
}


# Starting ---------------------------------------------------------------------------------


@get("/onboardings", name="console_onboardings", guards=[logged_in_guard])
async def onboardings(request: ConsoleRequest) -> Response[bytes]:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        items = await access.visible_onboardings(session, user, limit=200)
        bodies = await access.visible_intercommunales(session, user)
        statuses = await _statuses(session, items)
    language = language_of(request)
    return console_page(
        request,
        "perron/console/onboarding/list.html",
        items=[(item, statuses.get(item.id), _display_name(item, language)) for item in items],
        bodies=bodies,
        chosen=request.query_params.get("intercommunale", ""),
    )


def _display_name(item: Onboarding, language: str) -> str:
    names: dict[str, str] = item.spec.get("names") or {}
    return names.get(language) or next(iter(names.values()), "") or gettext("(not named yet)")


async def _statuses(session: AsyncSession, items: list[Onboarding]) -> dict[UUID, str]:
    """What each onboarding is at: draft, done, or its provisioning job's status."""
    runs = await flow.job_states(session, [item.job_id for item in items if item.job_id])
    return {
        item.id: item.status.value
        if item.status is not OnboardingStatus.QUEUED
        else runs.get(item.job_id, "queued")
        if item.job_id
        else "queued"
        for item in items
    }


async def _body_for_new(session: AsyncSession, user: ConsoleUser, slug: str) -> Intercommunale | None:
    if not slug:
        if not user.operator:
            raise Invalid("intercommunale", gettext("Choose the intercommunale the commune joins."))
        return None
    return await access.intercommunale_for(session, user, slug)


@post("/onboardings", name="console_onboarding_new", guards=[logged_in_guard])
async def onboarding_new(request: ConsoleRequest) -> Redirect:
    user = require_console_user(request)
    form = await form_of(request)
    async with runtime_of(request).database.transaction() as session:
        body = await _body_for_new(session, user, str(form.get("intercommunale", "")))
        draft = await flow.new_draft(session, body, user.email)
    return Redirect(f"/onboardings/{draft.id}/step/commune", status_code=303)


# The steps --------------------------------------------------------------------------------


def _steps_nav(draft: Onboarding, current: str) -> list[dict[str, Any]]:
    return [
        {
            "name": step,
            "title": flow.step_title(step),
            "number": index + 1,
            "current": step == current,
            "reachable": index + 1 <= draft.step,
        }
        for index, step in enumerate(flow.STEPS)
    ]


async def _step_context(
    session: AsyncSession, draft: Onboarding, step: str, form: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    spec = draft.spec
    languages = list(spec.get("languages") or ["fr"])
    context: dict[str, Any] = {"languages_offered": LANGUAGES, "commune_languages": languages}
    if step == "branding":
        palette = dict(DEFAULT_PALETTE) | (spec.get("branding") or {}).get("palette", {})
        context |= {
            "palette": {key: form.get(key, value) for key, value in palette.items()},
            "colour_labels": {key: gettext(label) for key, label in COLOUR_LABELS.items()},
            "fonts": [(choice.value, gettext(label)) for choice, label in FONT_LABELS.items()],
            "max_logo_mb": MAX_LOGO_BYTES // (1024 * 1024),
        }
    if step == "modules":
        chosen = spec.get("modules")
        if chosen is None:
            chosen = await flow.default_modules(session, draft.intercommunale_id)
        language = languages[0]
        modules = []
        for manifest in registry.ordered():
            fields = []
            if manifest.settings is not None:
                schema = registry.settings_schema(manifest.name)
                own = {
                    key.removeprefix(f"{manifest.name}."): value
                    for key, value in form.items()
                    if key.startswith(f"{manifest.name}.")
                }
                values = schema.model_validate({**schema().model_dump(), **(chosen.get(manifest.name) or {})})
                own_errors = {
                    key.removeprefix(f"{manifest.name}."): message
                    for key, message in errors.items()
                    if key.startswith(f"{manifest.name}.")
                }
                fields = [
                    dataclasses.replace(field, name=f"{manifest.name}.{field.name}")
                    for field in build_form(
                        schema, values, languages=languages, submitted=own or None, errors=own_errors
                    )
                ]
            modules.append(
                {
                    "name": manifest.name,
                    "title": manifest.title(language),
                    "description": manifest.description(language),
                    "chosen": bool(form.get(f"module.{manifest.name}")) if form else manifest.name in chosen,
                    "fields": fields,
                    "has_error": any(field.error for field in fields),
                }
            )
        context["modules"] = modules
    if step == "admins":
        admins = list(spec.get("admins") or [])
        context["admin_rows"] = [
            {
                "index": index,
                "email": form.get(
                    f"admin{index}.email", admins[index - 1]["email"] if index <= len(admins) else ""
                ),
                "name": form.get(
                    f"admin{index}.name", admins[index - 1]["name"] if index <= len(admins) else ""
                ),
                "language": form.get(
                    f"admin{index}.language",
                    admins[index - 1]["language"] if index <= len(admins) else languages[0],
                ),
            }
            for index in range(1, flow.MAX_ADMINS + 1)
        ]
    if step == "review":
        titles = {manifest.name: manifest.title(languages[0]) for manifest in registry.ordered()}
        context["module_titles"] = [titles.get(name, name) for name in spec.get("modules") or {}]
    return context


async def _render_step(
    request: ConsoleRequest,
    draft: Onboarding,
    step: str,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 400,
) -> Response[bytes]:
    async with runtime_of(request).database.session() as session:
        context = await _step_context(session, draft, step, form or {}, errors or {})
        body = await session.get(Intercommunale, draft.intercommunale_id) if draft.intercommunale_id else None
    return console_page(
        request,
        f"perron/console/onboarding/{step}.html",
        status_code=status if errors else 200,
        draft=draft,
        spec=draft.spec,
        form=form or {},
        errors=errors or {},
        steps=_steps_nav(draft, step),
        step=step,
        intercommunale=body,
        **context,
    )


async def _draft(request: ConsoleRequest, onboarding_id: str) -> Onboarding:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        return await access.onboarding_for(session, user, path_id(onboarding_id))


@get(
    "/onboardings/{onboarding_id:str}/step/{step:str}",
    name="console_onboarding_step",
    guards=[logged_in_guard],
)
async def step_page(
    request: ConsoleRequest, onboarding_id: FromPath[str], step: FromPath[str]
) -> Response[bytes] | Redirect:
    if step not in flow.STEPS:
        raise NotFoundException()
    draft = await _draft(request, onboarding_id)
    if draft.status is not OnboardingStatus.DRAFT:
        return Redirect(f"/onboardings/{draft.id}", status_code=303)
    if flow.STEPS.index(step) + 1 > draft.step:
        return Redirect(f"/onboardings/{draft.id}/step/{flow.STEPS[draft.step - 1]}", status_code=303)
    return await _render_step(request, draft, step)


async def _check_step(
    session: AsyncSession, draft: Onboarding, step: str, form: dict[str, Any], console_host: str
) -> dict[str, Any]:
    languages = list(draft.spec.get("languages") or ["fr"])
    if step == "commune":
        values = flow.check_commune_step(form)
        await flow.check_free(session, values, console_host=console_host, onboarding_id=draft.id)
        return values
    if step == "addresses":
        values = flow.check_addresses_step(form)
        await flow.check_free(session, values, console_host=console_host, onboarding_id=draft.id)
        return values
    if step == "branding":
        values = flow.check_branding_step(form, languages)
        upload = form.get("logo")
        if form.get("remove_logo"):
            draft.logo, draft.logo_filename = None, None
        elif isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_LOGO_BYTES + 1)
            flow.check_logo(data, upload.filename)
            draft.logo, draft.logo_filename = data, upload.filename[:200]
        return values
    if step == "modules":
        return flow.check_modules_step(form, languages)
    if step == "admins":
        return flow.check_admins_step(form, languages)
    return {}


UPLOAD_LIMIT = MAX_LOGO_BYTES + 512 * 1024
"""The branding step carries a logo of up to 2 MB with the form around it."""


@post(
    "/onboardings/{onboarding_id:str}/step/{step:str}",
    name="console_onboarding_save",
    guards=[logged_in_guard],
    request_max_body_size=UPLOAD_LIMIT,
)
async def step_save(
    request: ConsoleRequest, onboarding_id: FromPath[str], step: FromPath[str]
) -> Response[bytes] | Redirect:
    if step not in flow.STEPS or step == "review":
        raise NotFoundException()
    user = require_console_user(request)
    form = await form_of(request)
    runtime = runtime_of(request)
    try:
        async with runtime.database.transaction() as session:
            draft = await access.onboarding_for(session, user, path_id(onboarding_id))
            if draft.status is not OnboardingStatus.DRAFT:
                return Redirect(f"/onboardings/{draft.id}", status_code=303)
            values = await _check_step(session, draft, step, form, runtime.settings.console_host)
            flow.save_step(draft, step, values)
    except NotFound:
        raise
    except PerronError as error:
        draft = await _draft(request, onboarding_id)
        shown = {key: value for key, value in form.items() if not isinstance(value, UploadFile)}
        return await _render_step(
            request, draft, step, errors=errors_of(error), form=shown, status=error.status_code
        )
    following = flow.STEPS[flow.STEPS.index(step) + 1]
    return Redirect(f"/onboardings/{onboarding_id}/step/{following}", status_code=303)


@post("/onboardings/{onboarding_id:str}/launch", name="console_onboarding_launch", guards=[logged_in_guard])
async def launch(request: ConsoleRequest, onboarding_id: FromPath[str]) -> Response[bytes] | Redirect:
    user = require_console_user(request)
    form = await form_of(request)
    runtime = runtime_of(request)
    try:
        async with runtime.database.transaction() as session:
            draft = await access.onboarding_for(session, user, path_id(onboarding_id))
            await flow.launch(
                session, draft, console_host=runtime.settings.console_host, demo=bool(form.get("demo"))
            )
    except NotFound:
        raise
    except PerronError as error:
        draft = await _draft(request, onboarding_id)
        return await _render_step(request, draft, "review", errors=errors_of(error), status=error.status_code)
    return Redirect(f"/onboardings/{onboarding_id}", status_code=303)


@post("/onboardings/{onboarding_id:str}/discard", name="console_onboarding_discard", guards=[logged_in_guard])
async def discard(request: ConsoleRequest, onboarding_id: FromPath[str]) -> Redirect:
    user = require_console_user(request)
    async with runtime_of(request).database.transaction() as session:
        draft = await access.onboarding_for(session, user, path_id(onboarding_id))
        if draft.status is not OnboardingStatus.DRAFT:
            raise Invalid("onboarding", gettext("Only an onboarding not launched yet can be thrown away."))
        audit.record_platform(
            session,
            action="onboarding.discard",
            object_type="onboarding",
            object_id=str(draft.id),
            intercommunale_id=draft.intercommunale_id,
        )
        await session.delete(draft)
    return Redirect("/onboardings", status_code=303)


PREVIEW_PROPERTIES = {
    "primary_color": "--preview-primary",
    "primary_text_color": "--preview-on-primary",
    "accent_color": "--preview-accent",
    "background_color": "--preview-background",
    "text_color": "--preview-text",
}


@get(
    "/onboardings/{onboarding_id:str}/preview.css",
    name="console_onboarding_preview_css",
    guards=[logged_in_guard],
    opt=READ_ONLY,
)
async def preview_css(request: ConsoleRequest, onboarding_id: FromPath[str]) -> Response[str]:
    """The saved colours for the branding step's preview (pages carry no inline style)."""
    draft = await _draft(request, onboarding_id)
    palette = dict(DEFAULT_PALETTE) | (draft.spec.get("branding") or {}).get("palette", {})
    rules = "".join(
        f"{PREVIEW_PROPERTIES[key]}:{value};" for key, value in palette.items() if key in PREVIEW_PROPERTIES
    )
    return Response(
        f".branding-preview{{{rules}}}\n", media_type="text/css", headers={"cache-control": "no-store"}
    )


# Progress ---------------------------------------------------------------------------------


STALE_AFTER = dt.timedelta(minutes=10)
"""A provisioning that reported nothing for this long is offered to be run again."""


def explain_wait(error: str | None) -> str:
    """Why a provisioning step waits, in words for the person watching it."""
    text = error or ""
    if "KeycloakUnavailable" in text or "IdentityUnavailable" in text:
        return gettext(
            "The login service (Keycloak) cannot be reached at the moment. Perron tries again by itself; "
            "nothing needs to be done."
        )
    if "Stripe" in text or "billing" in text.lower():
        return gettext(
            "The payment service (Stripe) cannot be reached at the moment. Perron tries again by itself; "
            "nothing needs to be done."
        )
    return gettext("This step failed and will be tried again by itself: %(error)s") % {
        "error": _plain_error(text)
    }


def _plain_error(error: str) -> str:
    """A job's recorded error without the Python type in front (``Conflict: …`` → ``…``)."""
    head, separator, tail = error.partition(": ")
    if separator and " " not in head and (head.isidentifier() or "." in head):
        return tail
    return error


async def progress_context(session: AsyncSession, item: Onboarding, language: str) -> dict[str, Any]:
    run = await job_status_of(session, item.job_id) if item.job_id else None
    steps = planned_steps(item.spec)
    done = len(steps) if item.status is OnboardingStatus.DONE else (run.done if run else 0)
    state = "done" if item.status is OnboardingStatus.DONE else (run.status.value if run else "queued")
    rows = []
    for index, step in enumerate(steps):
        if index < done:
            row_state = "done"
        elif index == done and state in ("running", "retrying"):
            row_state = "waiting" if state == "retrying" else "running"
        elif index == done and state == "failed":
            row_state = "failed"
        else:
            row_state = "pending"
        rows.append({"name": step.name, "title": gettext(step.title), "state": row_state})
    # A job whose process ended without a word (killed, the machine restarted, an in-memory
    # queue lost) stays "running" or "queued": after a while the person may start it again.
    stale = state in ("running", "queued") and run is not None and run.updated_at < utcnow() - STALE_AFTER
    return {
        "item": item,
        "run": run,
        "state": state,
        "stale": stale,
        "finished": state in ("done", "failed"),
        "percent": 100 if state == "done" else (done * 100 // len(steps) if steps else 0),
        "rows": rows,
        "wait": explain_wait(run.error) if run and state == "retrying" else "",
        "failure": _plain_error(run.error or "") if run and state == "failed" else "",
        "name": _display_name(item, language),
    }


@get("/onboardings/{onboarding_id:str}", name="console_onboarding", guards=[logged_in_guard], opt=READ_ONLY)
async def progress(request: ConsoleRequest, onboarding_id: FromPath[str]) -> Response[bytes] | Redirect:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        item = await access.onboarding_for(session, user, path_id(onboarding_id))
        if item.status is OnboardingStatus.DRAFT:
            return Redirect(f"/onboardings/{item.id}/step/{flow.STEPS[item.step - 1]}", status_code=303)
        context = await progress_context(session, item, language_of(request))
        site_url = _site_url_of(request, item)
    return console_page(request, "perron/console/onboarding/progress.html", site_url=site_url, **context)


def _site_url_of(request: ConsoleRequest, item: Onboarding) -> str:
    from perron.identity.keycloak import site_base

    domains = item.spec.get("domains") or []
    if item.status is not OnboardingStatus.DONE or not domains:
        return ""
    settings = runtime_of(request).settings
    return site_base(settings, domains[0], settings.public_port) + "/"


@get(
    "/onboardings/{onboarding_id:str}/progress",
    name="console_onboarding_progress",
    guards=[logged_in_guard],
    opt=READ_ONLY,
)
async def progress_fragment(request: ConsoleRequest, onboarding_id: FromPath[str]) -> Response[bytes]:
    """The progress part of the page alone (what the page's script refreshes)."""
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        item = await access.onboarding_for(session, user, path_id(onboarding_id))
        context = await progress_context(session, item, language_of(request))
        site_url = _site_url_of(request, item)
    return console_page(request, "perron/console/onboarding/_progress.html", site_url=site_url, **context)


@post("/onboardings/{onboarding_id:str}/retry", name="console_onboarding_retry", guards=[logged_in_guard])
async def retry(request: ConsoleRequest, onboarding_id: FromPath[str]) -> Redirect:
    user = require_console_user(request)
    async with runtime_of(request).database.transaction() as session:
        item = await access.onboarding_for(session, user, path_id(onboarding_id))
        await flow.run_again(session, item)
    return Redirect(f"/onboardings/{onboarding_id}", status_code=303)


ROUTES = [
    onboardings,
    onboarding_new,
    step_page,
    step_save,
    launch,
    discard,
    preview_css,
    progress,
    progress_fragment,
    retry,
]
