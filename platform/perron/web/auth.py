"""Who is asking, and may they: sessions on a commune's site, and the guards routes use.

* :class:`SessionMiddleware` reads the session cookie (in the commune's scope, so a cookie
  from another commune finds nothing) and puts a :class:`CurrentUser` or ``None`` in
  ``request.state.user``. Requests without the cookie cost nothing. A citizen's first
  request of the day (per process) is recorded for the adoption figures after its response
  (:mod:`perron.adoption.recording`).
* Guards: :func:`require` for a module's declared action (level of assurance, verified
  residency), :func:`staff` for admin pages (a role in this commune).

An insufficient level of assurance is not an error for the citizen but a step up: the
answer is a 401 page that sends them to log in at the level the action needs.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlencode

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from perron.audit import Actor, ActorKind, acting_as
from perron.errors import PerronError
from perron.i18n import gettext, lazy, set_language
from perron.identity.models import Assurance
from perron.identity.sessions import SESSION_COOKIE, CurrentUser, load_user

LEVEL_NAMES = {
    Assurance.NONE: lazy("no login"),
    Assurance.LOW: lazy("e-mail and password"),
    Assurance.SUBSTANTIAL: lazy("itsme"),
    Assurance.HIGH: lazy("itsme (advanced) or eID"),
}


class LoginRequired(PerronError):
    """The person must log in (again) at a higher level of assurance."""

    status_code = 401

    def __init__(self, level: Assurance, next_path: str) -> None:
        super().__init__(
            gettext("Please log in with %(method)s to continue.") % {"method": gettext(LEVEL_NAMES[level])}
        )
        self.level = level
        if next_path == "/admin" or next_path.startswith("/admin/"):
            self.login_url = "/login/staff?" + urlencode({"next": next_path})
        else:
            self.login_url = login_link(level, next_path)


def login_link(level: Assurance, next_path: str, method: str | None = None) -> str:
    """The citizens' login page for ``level``, coming back to ``next_path``."""
    params: dict[str, str] = {"level": str(int(level))}
    if method:
        params["method"] = method
    return "/login?" + urlencode(params | {"next": next_path})


class Forbidden(PerronError):
    status_code = 403


def session_token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            try:
                morsel = SimpleCookie(value.decode("latin-1")).get(SESSION_COOKIE)
            except CookieError:
                return None
            if morsel is not None and morsel.value:
                return morsel.value
    return None


class SessionMiddleware:
    """ASGI middleware of the commune site: ``scope['state']['user']``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            token = session_token(scope)
            user = None
            if token and len(token) <= 128 and not scope["path"].startswith("/static/"):
                runtime = scope["app"].state.runtime
                async with runtime.database.session() as session:
                    user = await load_user(session, token)
            state["user"] = user
            if user is not None:
                _prefer_account_language(state, user)
                activity = scope["app"].state.runtime.activity
                # Nearly always None: this process already recorded this person's day.
                visit = activity.visit(scope, user)
                with acting_as(Actor(ActorKind.PERSON, user.display_name, user.account_id)):
                    if visit is None:
                        await self.app(scope, receive, send)
                    else:  # records it after the response (perron.adoption.recording)
                        await activity.serve(self.app, scope, receive, send, visit)
                return
        await self.app(scope, receive, send)


def _prefer_account_language(state: dict[str, Any], user: CurrentUser) -> None:
    """The language a person set in their account, unless they chose another on this visit."""
    site = state.get("site")
    if state.get("language_chosen") or site is None or user.language not in site.languages:
        return
    state["language"] = user.language
    set_language(user.language)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    user: CurrentUser | None = connection.scope.get("state", {}).get("user")
    return user


def require_user(
    connection: ASGIConnection[Any, Any, Any, Any], level: Assurance = Assurance.LOW
) -> CurrentUser:
    """The logged-in person, at least at ``level``; otherwise a step-up to log in."""
    user = current_user(connection)
    if user is None or user.assurance < level:
        raise LoginRequired(max(level, Assurance.LOW), connection.scope["path"])
    return user


def check_action(
    connection: ASGIConnection[Any, Any, Any, Any], assurance: Assurance, residency: bool
) -> None:
    user = require_user(connection, assurance) if assurance > Assurance.NONE or residency else None
    if residency and user is not None and not user.resident and not user.is_staff:
        raise Forbidden(
            gettext(
                "This is reserved for residents of the commune. Your residency can be verified "
                "with itsme, with the code sent by post, or at the town hall."
            )
        )


def any_staff_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: any staff member of this commune, whatever their roles."""
    if not require_user(connection, Assurance.LOW).is_staff:
        raise Forbidden(gettext("This page is for the commune's staff."))


def staff_guard(role: str) -> Any:
    """Litestar guard: a staff member of this commune holding ``role`` (``admin`` holds all)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = require_user(connection, Assurance.LOW)
        if not (user.is_staff and user.has_role(role)):
            raise Forbidden(gettext("This page is for the commune's staff."))

    guard.__name__ = f"staff_{role}"
    return guard
