"""Logging in and out of a commune's site through Keycloak.

* ``GET /login?level=&next=&method=``: citizens go straight to itsme unless they chose
  e-mail and password (``method=email``, only where the level allows it);
* ``GET /login/staff?next=``: the commune's staff, password and second factor;
* ``GET /login/callback``: Keycloak's answer, checked in full (:mod:`perron.identity.login`);
* ``GET/POST /logout``: ends the session here, then at Keycloak (RP-initiated logout).

Every refusal shows a page in the commune's branding and writes a log entry with its reason.
Keycloak being down shows "try again later"; pages and sessions keep working without it.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect
from sqlalchemy import select

from perron.i18n import gettext
from perron.identity import login as flow
from perron.identity.models import Assurance, WebSession
from perron.identity.oidc import CITIZENS, ITSME, STAFF, IdentityUnavailable, LoginRefused, client_id_for
from perron.identity.sessions import SESSION_COOKIE, SESSION_LIFETIME, token_key
from perron.logging import get_logger
from perron.web.auth import current_user, session_token

log = get_logger("perron.identity")

SiteRequest = Request[Any, Any, Any]
LOGIN_COOKIE = "perron_login"


def _page(request: SiteRequest, template: str, *, status_code: int = 200, **context: Any) -> Response[bytes]:
    from perron.modules.context import page

    return page(request, template, status_code=status_code, **context)


def _secure(request: SiteRequest) -> bool:
    return request.url.scheme == "https"


def _callback_uri(request: SiteRequest) -> str:
    return str(request.base_url).rstrip("/") + "/login/callback"


def host_cookie(request: SiteRequest, key: str, value: str, *, path: str, max_age: int) -> Cookie:
    # No Domain attribute: the cookie belongs to this host only (custom domains included).
    return Cookie(
        key=key,
        value=value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _refused(request: SiteRequest, error: LoginRefused, *, retry: str | None = None) -> Response[bytes]:
    log.warning(
        "login.refused", reason=error.reason, detail=error.detail, tenant=request.scope["state"]["tenant"]
    )
    return _page(
        request, "perron/login/refused.html", status_code=400, message=describe(error.reason), retry=retry
    )


def _unavailable(request: SiteRequest, error: Exception) -> Response[bytes]:
    log.warning("login.keycloak_unavailable", error=str(error))
    return _page(request, "perron/login/unavailable.html", status_code=503)


def _login_off(request: SiteRequest) -> Response[bytes]:
    return _page(request, "perron/login/unavailable.html", status_code=503, switched_off=True)


async def _start(
    request: SiteRequest, realm: str, level: Assurance, next_path: str, method: str
) -> Response[bytes] | Redirect:
    runtime = request.app.state.runtime
    if not runtime.settings.login_enabled:
        return _login_off(request)
    state = request.scope["state"]
    user = current_user(request)
    fresh = user is not None and (user.assurance < level or (realm == STAFF) != user.is_staff)
    try:
        async with runtime.database.transaction() as session:
            begun = await flow.begin(
                session,
                runtime.identity[realm],
                tenant_id=state["site"].id,
                slug=state["site"].slug,
                redirect_uri=_callback_uri(request),
                level=level,
                next_path=next_path,
                method=method,
                language=state["language"],
                browser_token=request.cookies.get(LOGIN_COOKIE),
                fresh=fresh,
            )
    except IdentityUnavailable as error:
        return _unavailable(request, error)
    return Redirect(
        begun.url,
        status_code=303,
        cookies=[host_cookie(request, LOGIN_COOKIE, begun.browser_token, path="/login", max_age=900)],
        headers={"cache-control": "no-store"},
    )


def _next_or_refuse(request: SiteRequest) -> str | Response[bytes]:
    next_path = flow.safe_next(request.query_params.get("next"))
    if next_path is None:
        return _refused(
            request, LoginRefused("foreign_redirect", f"next={request.query_params.get('next')!r}")
        )
    return next_path


@get("/login", name="login")
async def login(request: SiteRequest) -> Response[bytes] | Redirect:
    """Citizens: straight to itsme, or e-mail and password when they choose it."""
    next_path = _next_or_refuse(request)
    if isinstance(next_path, Response):
        return next_path
    raw_level = request.query_params.get("level", str(int(Assurance.LOW)))
    method = request.query_params.get("method", ITSME)
    if not raw_level.isdigit() or int(raw_level) not in range(4) or method not in flow.METHODS:
        return _refused(request, LoginRefused("bad_request", f"level={raw_level!r} method={method!r}"))
    level = max(Assurance(int(raw_level)), Assurance.LOW)
    if method == "email" and level > Assurance.LOW:
        # E-mail and password cannot reach this level: say so, offer itsme.
        return _page(
            request, "perron/login/needs_itsme.html", status_code=403, level=int(level), next=next_path
        )
    return await _start(request, CITIZENS, level, next_path, method)


@get("/login/staff", name="login_staff")
async def login_staff(request: SiteRequest) -> Response[bytes] | Redirect:
    next_path = _next_or_refuse(request)
    if isinstance(next_path, Response):
        return next_path
    return await _start(request, STAFF, Assurance.SUBSTANTIAL, next_path, "password")


@get("/login/callback", name="login_callback")
async def login_callback(request: SiteRequest) -> Response[bytes] | Redirect:
    runtime = request.app.state.runtime
    if not runtime.settings.login_enabled:
        return _login_off(request)
    params = request.query_params
    state_param, code = params.get("state"), params.get("code")
    browser_token = request.cookies.get(LOGIN_COOKIE)
    site = request.scope["state"]["site"]
    try:
        if not state_param or len(state_param) > 200:
            raise LoginRefused("unknown_state", "no state in the answer")
        async with runtime.database.transaction() as session:
            attempt = await flow.take_attempt(session, state_param, browser_token)
        if params.get("error"):
            if params["error"] in ("access_denied", "login_required", "interaction_required"):
                log.info("login.cancelled", error=params["error"])
                return _page(request, "perron/login/cancelled.html", next=attempt.next_path)
            raise LoginRefused("provider_error", str(params.get("error"))[:100])
        if not code or len(code) > 4000:
            raise LoginRefused("no_code", "the answer carries no authorization code")
        async with runtime.database.transaction() as session:
            done = await flow.finish(
                session,
                runtime.identity[attempt.realm],
                runtime.settings,
                attempt,
                slug=site.slug,
                code=code,
                issuer_param=params.get("iss"),
                redirect_uri=_callback_uri(request),
                previous_token=session_token(dict(request.scope)),
            )
    except LoginRefused as error:
        return _refused(request, error, retry="/login")
    except IdentityUnavailable as error:
        return _unavailable(request, error)
    log.info("login.completed", account=str(done.account_id), assurance=int(done.assurance))
    cookies = [
        host_cookie(
            request, SESSION_COOKIE, done.token, path="/", max_age=int(SESSION_LIFETIME.total_seconds())
        ),
        host_cookie(request, LOGIN_COOKIE, "", path="/login", max_age=0),
    ]
    if done.assurance < done.wanted:
        # Logged in, but not at the level the page needs (e-mail instead of itsme, say).
        query = urlencode({"level": int(done.wanted), "next": done.next_path})
        return Redirect(f"/login/level?{query}", status_code=303, cookies=cookies)
    return Redirect(done.next_path, status_code=303, cookies=cookies, headers={"cache-control": "no-store"})


@get("/login/level", name="login_level")
async def login_level(request: SiteRequest) -> Response[bytes]:
    """Logged in below what the page needs: explain, and offer the stronger login."""
    next_path = flow.safe_next(request.query_params.get("next")) or "/"
    raw_level = request.query_params.get("level", "2")
    level = int(raw_level) if raw_level.isdigit() and int(raw_level) in range(1, 4) else 2
    return _page(request, "perron/login/needs_itsme.html", status_code=403, level=level, next=next_path)


@get("/logout", name="logout_confirm")
async def logout_confirm(request: SiteRequest) -> Response[bytes] | Redirect:
    """A page with the log-out button, for pages that could not carry the form (cached)."""
    if current_user(request) is None:
        return Redirect("/", status_code=303)
    return _page(request, "perron/logout.html")


@post("/logout", name="logout")
async def logout(request: SiteRequest) -> Redirect:
    """End the session here, then at Keycloak when it can be reached (so the next login asks
    again); if Keycloak is down the person is logged out of this site all the same."""
    runtime = request.app.state.runtime
    token = session_token(dict(request.scope))
    ended: WebSession | None = None
    if token:
        async with runtime.database.transaction() as session:
            ended = await session.scalar(select(WebSession).where(WebSession.id == token_key(token)))
            if ended is not None:
                await session.delete(ended)
    clear = [host_cookie(request, SESSION_COOKIE, "", path="/", max_age=0)]
    home = str(request.base_url).rstrip("/") + "/"
    if ended is not None and ended.realm and ended.id_token and runtime.settings.login_enabled:
        try:
            metadata = await runtime.identity[ended.realm].metadata(fresh=True)
        except IdentityUnavailable:
            log.warning("logout.keycloak_unavailable")
        else:
            endpoint = metadata.get("end_session_endpoint")
            if endpoint:
                params = {
                    "id_token_hint": flow.open_id_token(runtime.settings, ended.id_token),
                    "post_logout_redirect_uri": home,
                    "client_id": client_id_for(request.scope["state"]["site"].slug),
                    "state": secrets.token_urlsafe(16),
                }
                query = urlencode({key: value for key, value in params.items() if value})
                return Redirect(f"{endpoint}?{query}", status_code=303, cookies=clear)
    return Redirect("/", status_code=303, cookies=clear)


def describe(reason: str) -> str:
    """A sentence for the person about why a login was refused (the log has the detail)."""
    if reason in ("unknown_state", "expired_state", "other_browser", "code_refused"):
        return gettext(
            "This login link has expired or was already used. Start again from the site's Log in link."
        )
    if reason == "foreign_redirect":
        return gettext("This login link would take you to another website, so it was stopped.")
    if reason == "not_staff_here":
        return gettext("Your staff account does not give access to this commune's administration.")
    if reason == "account_disabled":
        return gettext("This account has been closed. Contact the town hall if this is a mistake.")
    if reason == "unverified_email":
        return gettext("Please confirm your e-mail address first: open the link we sent you, then log in.")
    return gettext(
        "The answer of the login service could not be trusted, so nobody was logged in. Please try again."
    )


ROUTES = [login, login_staff, login_callback, login_level, logout_confirm, logout]
