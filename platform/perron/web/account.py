"""Ending a login on a commune's site (logging in arrives with the identity work)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from perron.identity.sessions import SESSION_COOKIE, close_session
from perron.web.auth import current_user, session_token

SiteRequest = Request[Any, Any, Any]


@get("/logout", name="logout_confirm")
async def logout_confirm(request: SiteRequest) -> Response[bytes] | Redirect:
    """A page with the log-out button, for pages that could not carry the form (cached)."""
    if current_user(request) is None:
        return Redirect("/", status_code=303)
    from perron.modules.context import page

    return page(request, "perron/logout.html")


@post("/logout", name="logout")
async def logout(request: SiteRequest) -> Redirect:
    token = session_token(dict(request.scope))
    if token:
        async with request.app.state.runtime.database.transaction() as session:
            await close_session(session, token)
    return Redirect(
        "/",
        status_code=303,
        cookies=[
            Cookie(
                key=SESSION_COOKIE,
                value="",
                max_age=0,
                path="/",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        ],
    )


ROUTES = [logout_confirm, logout]
