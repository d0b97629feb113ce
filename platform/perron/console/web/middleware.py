"""The console's session middleware: who is asking, and the scope their request runs in."""

from __future__ import annotations

from typing import Any

from perron.audit import acting_as
from perron.console.auth import console_token, load_console_user
from perron.db.scope import platform_scope
from perron.i18n import set_language
from perron.tenancy.models import LANGUAGES


class ConsoleSessionMiddleware:
    """Puts the :class:`~perron.console.auth.ConsoleUser` (or None) in
    ``scope['state']['console_user']``. A logged-in person's request runs in the platform
    scope (the console manages many communes; :mod:`perron.console.access` decides what each
    person sees) and acts as that person in the audit logs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = console_token(scope)
        user = None
        if token:
            runtime = scope["app"].state.runtime
            with platform_scope("console: who is asking"):
                async with runtime.database.session() as session:
                    user = await load_console_user(session, token)
        state["console_user"] = user
        if user is None:
            await self.app(scope, receive, send)
            return
        if not state.get("language_chosen") and user.language in LANGUAGES:
            state["language"] = user.language
            set_language(user.language)
        with acting_as(user.actor), platform_scope(f"console: {user.email}"):
            await self.app(scope, receive, send)
