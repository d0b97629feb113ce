"""Logging in to the console (Keycloak's staff realm, client ``perron-console``) and out."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.response import Redirect

from perron.console import auth
from perron.console.web.common import ConsoleRequest, console_page, language_of, runtime_of
from perron.db.scope import platform_scope
from perron.i18n import gettext
from perron.identity.keycloak import CONSOLE_CLIENT
from perron.identity.login import safe_next
from perron.identity.oidc import STAFF, IdentityUnavailable, LoginRefused
from perron.logging import get_logger
from perron.web.login import host_cookie

log = get_logger("perron.console")


def _callback_uri(request: ConsoleRequest) -> str:
    return str(request.base_url).rstrip("/") + "/login/callback"


def _token(request: ConsoleRequest) -> str | None:
    return auth.console_token(request.scope)


def _describe(reason: str) -> str:
    if reason == "no_console_role":
        return gettext(
            "Your login does not give access to the console. Ask the platform's operator to give you a role."
        )
    if reason in ("unknown_state", "expired_state", "other_browser", "code_refused"):
        return gettext("This login link has expired or was already used. Start again from the Log in link.")
    if reason == "foreign_redirect":
        return gettext("This login link would take you to another website, so it was stopped.")
    return gettext(
        "The answer of the login service could not be trusted, so nobody was logged in. Please try again."
    )


def _refused(request: ConsoleRequest, error: LoginRefused) -> Response[bytes]:
    log.warning("console.login_refused", reason=error.reason, detail=error.detail)
    return console_page(
        request, "perron/console/login_refused.html", status_code=400, message=_describe(error.reason)
    )


def _unavailable(request: ConsoleRequest, error: Exception) -> Response[bytes]:
    log.warning("console.keycloak_unavailable", error=str(error))
    return console_page(request, "perron/console/login_unavailable.html", status_code=503)


@get("/login", name="console_login")
async def login(request: ConsoleRequest) -> Redirect | Response[bytes]:
    runtime = runtime_of(request)
    next_path = safe_next(request.query_params.get("next"))
    if next_path is None:
        return _refused(
            request, LoginRefused("foreign_redirect", str(request.query_params.get("next"))[:200])
        )
    if not runtime.settings.login_enabled:
        return console_page(
            request, "perron/console/login_unavailable.html", status_code=503, switched_off=True
        )
    try:
        with platform_scope("console: start a login"):
            async with runtime.database.transaction() as session:
                begun = await auth.begin_login(
                    session,
                    runtime.identity[STAFF],
                    redirect_uri=_callback_uri(request),
                    next_path=next_path,
                    language=language_of(request),
                    browser_token=request.cookies.get(auth.CONSOLE_LOGIN_COOKIE),
                )
    except IdentityUnavailable as error:
        return _unavailable(request, error)
    return Redirect(
        begun.url,
        status_code=303,
        cookies=[
            host_cookie(request, auth.CONSOLE_LOGIN_COOKIE, begun.browser_token, path="/login", max_age=900)
        ],
        headers={"cache-control": "no-store"},
    )


@get("/login/callback", name="console_login_callback")
async def login_callback(request: ConsoleRequest) -> Redirect | Response[bytes]:
    runtime = runtime_of(request)
    if not runtime.settings.login_enabled:
        return console_page(
            request, "perron/console/login_unavailable.html", status_code=503, switched_off=True
        )
    params = request.query_params
    state, code = params.get("state"), params.get("code")
    try:
        if not state or len(state) > 200:
            raise LoginRefused("unknown_state", "no state in the answer")
        with platform_scope("console: finish a login"):
            async with runtime.database.transaction() as session:
                attempt = await auth.take_attempt(
                    session, state, request.cookies.get(auth.CONSOLE_LOGIN_COOKIE)
                )
            if params.get("error"):
                raise LoginRefused("provider_error", str(params.get("error"))[:100])
            if not code or len(code) > 4000:
                raise LoginRefused("no_code", "the answer carries no authorization code")
            async with runtime.database.transaction() as session:
                done = await auth.finish_login(
                    session,
                    runtime.identity[STAFF],
                    runtime.settings,
                    attempt,
                    code=code,
                    issuer_param=params.get("iss"),
                    redirect_uri=_callback_uri(request),
                    previous_token=_token(request),
                )
    except LoginRefused as error:
        return _refused(request, error)
    except IdentityUnavailable as error:
        return _unavailable(request, error)
    log.info("console.login", email=done.email)
    cookies = [
        host_cookie(
            request,
            auth.CONSOLE_COOKIE,
            done.token,
            path="/",
            max_age=int(auth.CONSOLE_SESSION_LIFETIME.total_seconds()),
        ),
        host_cookie(request, auth.CONSOLE_LOGIN_COOKIE, "", path="/login", max_age=0),
    ]
    return Redirect(done.next_path, status_code=303, cookies=cookies, headers={"cache-control": "no-store"})


@get("/logout", name="console_logout_confirm")
async def logout_confirm(request: ConsoleRequest) -> Redirect | Response[bytes]:
    if request.scope.get("state", {}).get("console_user") is None:
        return Redirect("/", status_code=303)
    return console_page(request, "perron/console/logout.html")


@post("/logout", name="console_logout")
async def logout(request: ConsoleRequest) -> Redirect:
    """End the console session here, then at Keycloak when it answers."""
    runtime = runtime_of(request)
    token = _token(request)
    id_token = None
    if token:
        with platform_scope("console: log out"):
            async with runtime.database.transaction() as session:
                id_token = await auth.end_console_session(session, token, runtime.settings)
    clear = [host_cookie(request, auth.CONSOLE_COOKIE, "", path="/", max_age=0)]
    home = str(request.base_url).rstrip("/") + "/"
    if id_token and runtime.settings.login_enabled:
        try:
            metadata = await runtime.identity[STAFF].metadata(fresh=True)
        except IdentityUnavailable:
            log.warning("console.logout_keycloak_unavailable")
        else:
            endpoint = metadata.get("end_session_endpoint")
            if endpoint:
                query = urlencode(
                    {
                        "id_token_hint": id_token,
                        "post_logout_redirect_uri": home,
                        "client_id": CONSOLE_CLIENT,
                        "state": secrets.token_urlsafe(16),
                    }
                )
                return Redirect(f"{endpoint}?{query}", status_code=303, cookies=clear)
    return Redirect("/", status_code=303, cookies=clear)


ROUTES = [login, login_callback, logout_confirm, logout]
