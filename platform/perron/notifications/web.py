"""A person's notifications on the commune's site: the inbox and the e-mail choices.

Plain pages and forms (they work without JavaScript), for logged-in people only. Everything
is read in the commune's scope and for the person asking: another person's notification, or
another commune's, is "not found".
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.response.base import ASGIResponse
from sqlalchemy import select

from perron.errors import Invalid
from perron.i18n import gettext
from perron.identity.models import Account
from perron.mail import mail_service, paragraphs
from perron.notifications import service
from perron.notifications.models import EmailFrequency
from perron.web.auth import require_user

SiteRequest = Request[Any, Any, Any]

FIELD_PREFIX = "email-"


def _database(request: SiteRequest) -> Any:
    return request.app.state.runtime.database


def _page(request: SiteRequest, template: str, **context: Any) -> ASGIResponse:
    from perron.web.site import page

    return page(request, template, **context)


def _cursor(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise Invalid("before", gettext("This page of notifications does not exist.")) from None


@get("/inbox", name="inbox")
async def inbox_page(request: SiteRequest) -> ASGIResponse:
    user = require_user(request)
    site = request.scope["state"]["site"]
    language = request.scope["state"]["language"]
    before = _cursor(request.query_params.get("before"))
    async with _database(request).session() as session:
        items, following = await service.inbox(
            session, site, user.account_id, language=language, before=before
        )
        unread = await service.unread_count(session, user.account_id)
    return _page(
        request,
        "perron/notifications/inbox.html",
        items=items,
        unread=unread,
        before=before,
        next_cursor=following,
        paragraphs=paragraphs,
    )


@post("/inbox/{delivery_id:uuid}/read", name="inbox_read")
async def inbox_read(request: SiteRequest, delivery_id: FromPath[UUID]) -> Redirect:
    user = require_user(request)
    form = await request.form()
    async with _database(request).transaction() as session:
        await service.mark_read(session, user.account_id, delivery_id)
    try:
        before = _cursor(form.get("before"))
    except Invalid:
        before = None
    target = f"/inbox?before={before}" if before else "/inbox"
    return Redirect(f"{target}#n-{delivery_id}", status_code=303)


async def _preferences_page(
    request: SiteRequest,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, str] | None = None,
    saved: bool = False,
) -> ASGIResponse:
    user = require_user(request)
    site = request.scope["state"]["site"]
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        modules = await service.preference_modules(session, site, user.account_id)
        stored = await service.preferences_of(session, user.account_id)
        email = await session.scalar(select(Account.email).where(Account.id == user.account_id))
    rows = []
    for module in modules:
        field = FIELD_PREFIX + module
        current = stored.get(module)
        stored_value = current.value if current else service.DEFAULT_CHOICE
        chosen = (submitted or {}).get(field)
        rows.append(
            {
                "field": field,
                "title": gettext("Messages from the commune")
                if module == service.CORE
                else service.source_title(module, site, language),
                # What was sent, if it is one of the options; otherwise what is stored.
                "value": chosen if chosen in service.CHOICES else stored_value,
                "error": (errors or {}).get(field),
            }
        )
    return _page(
        request,
        "perron/notifications/preferences.html",
        status_code=400 if errors else 200,
        rows=rows,
        errors=errors or {},
        saved=saved,
        has_email=bool(email),
        mail_enabled=mail_service().enabled,
        choices=[
            (
                service.DEFAULT_CHOICE,
                gettext("The default: announcements at once, the rest in a daily summary"),
            ),
            (EmailFrequency.IMMEDIATE.value, gettext("At once, one e-mail per message")),
            (EmailFrequency.DAILY.value, gettext("In a daily summary")),
            (EmailFrequency.OFF.value, gettext("Never (the inbox only)")),
        ],
    )


@get("/account/notifications", name="notification_preferences")
async def preferences_page(request: SiteRequest) -> ASGIResponse:
    return await _preferences_page(request, saved=request.query_params.get("saved") == "1")


@post("/account/notifications", name="notification_preferences_save")
async def preferences_save(request: SiteRequest) -> ASGIResponse:
    """Save every choice of the form, or none: a wrong value re-shows the form with the
    error next to its question and nothing stored."""
    user = require_user(request)
    site = request.scope["state"]["site"]
    form = {key: value for key, value in (await request.form()).items() if key != "_csrf_token"}
    errors: dict[str, str] = {}
    async with _database(request).transaction() as session:
        modules = await service.preference_modules(session, site, user.account_id)
        choices: dict[str, str] = {}
        for key, value in form.items():
            module = key.removeprefix(FIELD_PREFIX)
            if not key.startswith(FIELD_PREFIX) or module not in modules:
                errors[key] = gettext("This form has no such question; reload the page and try again.")
            elif not isinstance(value, str) or value not in service.CHOICES:
                errors[key] = gettext("Choose one of the options shown.")
            else:
                choices[module] = value
        if not errors:
            await service.set_preferences(session, user.account_id, choices, modules=modules)
    if errors:
        return await _preferences_page(
            request, errors=errors, submitted={key: str(value) for key, value in form.items()}
        )
    # One return type for both outcomes (a page or a redirect): Litestar sends it as it is.
    return Redirect("/account/notifications?saved=1", status_code=303).to_asgi_response(
        app=None, request=request
    )


ROUTES = [inbox_page, inbox_read, preferences_page, preferences_save]
