"""A person's account on a commune's site: what the commune holds about them (``/account``),
the code sent by post that verifies their residency (``/account/residency``), the download
of their data (``/account/data.json``) and the deletion of their account
(``/account/delete``); and ending a login.

Every page is for the person logged in, read in the commune's scope: nobody sees another
person's account, and an account in another commune is another account.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from perron.errors import Invalid
from perron.i18n import gettext, language_name, lazy
from perron.identity import personal_data, residency, roles
from perron.identity.actions import get_account
from perron.identity.models import Account, AccountKind, Assurance
from perron.identity.residency import CodeOutcome
from perron.identity.sessions import SESSION_COOKIE
from perron.modules.registry import registry
from perron.web.auth import LEVEL_NAMES, login_link, require_user
from perron.web.pages import READ_ONLY

SiteRequest = Request[Any, Any, Any]

METHODS = {
    "itsme": lazy("with itsme"),
    "code": lazy("with the code sent by post"),
    "town_hall": lazy("at the town hall"),
}

CODE_MESSAGES = {
    CodeOutcome.LOCKED: lazy(
        "This code is locked after too many wrong tries. Ask the town hall for a new code, or come with "
        "your identity card."
    ),
    CodeOutcome.EXPIRED: lazy(
        "This code is no longer valid: it expired, or a newer code replaced it. Ask the town hall for a "
        "new code."
    ),
    CodeOutcome.USED: lazy("This code was already used."),
    CodeOutcome.NO_CODE: lazy(
        "No code is waiting for your account. Ask the town hall to send you one, or come with your "
        "identity card."
    ),
}

DELETE_CHECKBOX = "understood"


def _page(request: SiteRequest, template: str, *, status_code: int = 200, **context: Any) -> Response[bytes]:
    from perron.modules.context import page

    return page(request, template, status_code=status_code, **context)


def _database(request: SiteRequest) -> Any:
    return request.app.state.runtime.database


def _cleared_cookie(request: SiteRequest) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value="",
        max_age=0,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _method(account: Account) -> str:
    return gettext(METHODS[account.residency_method]) if account.residency_method in METHODS else ""


@get("/account", name="account")
async def account_page(request: SiteRequest) -> Response[bytes]:
    user = require_user(request)
    site = request.scope["state"]["site"]
    async with _database(request).session() as session:
        account = await get_account(session, user.account_id)
    catalogue = roles.role_catalogue(site.enabled_modules)
    held = sorted(account.roles or [])
    labels = roles.role_labels(held, catalogue)
    return _page(
        request,
        "perron/account/index.html",
        account=account,
        language_label=language_name(account.language),
        method=_method(account),
        level=gettext(LEVEL_NAMES[user.assurance]),
        roles=[labels[name] for name in held],
        is_citizen=account.kind is AccountKind.CITIZEN,
    )


@get("/account/data.json", name="account_data", opt=READ_ONLY)
async def account_data(request: SiteRequest) -> Response[bytes]:
    """Everything the commune's site holds about the person, as a JSON file."""
    user = require_user(request)
    site = request.scope["state"]["site"]
    async with _database(request).session() as session:
        account = await get_account(session, user.account_id)
        data = await personal_data.collect_personal_data(session, account, registry)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode()
    return Response(
        body,
        media_type="application/json",
        headers={
            "content-disposition": f'attachment; filename="{site.slug}-my-data.json"',
            "cache-control": "no-store",
        },
    )


async def _residency_page(
    request: SiteRequest, *, error: str | None = None, code: str = "", verified: bool = False
) -> Response[bytes]:
    user = require_user(request)
    async with _database(request).session() as session:
        account = await get_account(session, user.account_id)
    login_enabled = request.app.state.runtime.settings.login_enabled
    return _page(
        request,
        "perron/account/residency.html",
        status_code=400 if error else 200,
        account=account,
        method=_method(account),
        errors={"code": error} if error else {},
        code=code,
        verified=verified,
        is_citizen=account.kind is AccountKind.CITIZEN,
        itsme_url=login_link(Assurance.SUBSTANTIAL, "/account/residency", "itsme") if login_enabled else None,
    )


@get("/account/residency", name="account_residency")
async def residency_page(request: SiteRequest) -> Response[bytes]:
    return await _residency_page(request, verified=request.query_params.get("done") == "verified")


@post("/account/residency", name="account_residency_code")
async def residency_code(request: SiteRequest) -> Response[bytes]:
    """Check the code typed: the right one verifies residency; anything else says why,
    and changes nothing but the count of wrong tries."""
    user = require_user(request)
    form = await request.form()
    typed = form.get("code")
    typed = typed if isinstance(typed, str) else ""
    settings = request.app.state.runtime.settings
    try:
        async with _database(request).transaction() as session:
            account = await get_account(session, user.account_id)
            if account.kind is not AccountKind.CITIZEN:
                raise Invalid(
                    "code", gettext("Residency is verified for residents' accounts, not staff accounts.")
                )
            check = await residency.enter_code(session, settings, account, typed)
    except Invalid as error:
        return await _residency_page(request, error=error.reason, code=typed[:40])
    if check.verified or check.outcome is CodeOutcome.ALREADY_RESIDENT:
        return Response(
            b"",
            status_code=303,
            headers={"location": "/account/residency?done=verified", "cache-control": "no-store"},
        )
    if check.outcome is CodeOutcome.WRONG:
        message = gettext("This code is not right. Tries left before the code is locked: %(count)s.") % {
            "count": check.tries_left
        }
    else:
        message = gettext(CODE_MESSAGES[check.outcome])
    return await _residency_page(request, error=message, code=typed[:40])


async def _delete_page(request: SiteRequest, *, error: str | None = None) -> Response[bytes]:
    user = require_user(request)
    async with _database(request).session() as session:
        account = await get_account(session, user.account_id)
    return _page(
        request,
        "perron/account/delete.html",
        status_code=400 if error else 200,
        account=account,
        is_citizen=account.kind is AccountKind.CITIZEN,
        errors={DELETE_CHECKBOX: error} if error else {},
    )


@get("/account/delete", name="account_delete_confirm")
async def delete_page(request: SiteRequest) -> Response[bytes]:
    return await _delete_page(request)


@post("/account/delete", name="account_delete")
async def delete_account(request: SiteRequest) -> Response[bytes]:
    """Delete the person's account in this commune, end their login here, and queue the
    deletion of their Keycloak login when no other commune has an account with it."""
    user = require_user(request)
    form = await request.form()
    if form.get(DELETE_CHECKBOX) != "yes":
        return await _delete_page(
            request, error=gettext("Tick the box to confirm that you want to delete your account.")
        )
    try:
        async with _database(request).transaction() as session:
            account = await get_account(session, user.account_id)
            subject = await personal_data.delete_own_account(session, account)
    except Invalid as error:
        return await _delete_page(request, error=error.reason)
    if subject is not None:
        await personal_data.queue_login_deletion(_database(request), subject)
    return Response(
        b"",
        status_code=303,
        headers={"location": "/account/deleted", "cache-control": "no-store"},
        cookies=[_cleared_cookie(request)],
    )


@get("/account/deleted", name="account_deleted", opt=READ_ONLY)
async def deleted_page(request: SiteRequest) -> Response[bytes]:
    return _page(request, "perron/account/deleted.html")


ROUTES = [
    account_page,
    account_data,
    residency_page,
    residency_code,
    delete_page,
    delete_account,
    deleted_page,
]
