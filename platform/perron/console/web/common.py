"""What every console page needs: the person, the page around the content, forms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler

from perron.console.auth import ConsoleUser
from perron.errors import PerronError
from perron.i18n import gettext, language_name, lazy
from perron.tenancy.models import LANGUAGES
from perron.web.pages import PAGE_HEADERS, render_text, static_url

ConsoleRequest = Request[Any, Any, Any]


class ConsoleLoginRequired(PerronError):
    """The console needs a login: pages send the browser to it, then back."""

    status_code = 401

    def __init__(self, next_path: str) -> None:
        super().__init__(gettext("Please log in to use the console."))
        self.login_url = "/login?" + urlencode({"next": next_path})


def path_id(raw: str) -> UUID:
    """An id from the address; anything else is a page that does not exist."""
    try:
        return UUID(raw)
    except ValueError:
        raise NotFoundException() from None


def console_user(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleUser | None:
    user: ConsoleUser | None = connection.scope.get("state", {}).get("console_user")
    return user


def require_console_user(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleUser:
    user = console_user(connection)
    if user is None:
        raise ConsoleLoginRequired(connection.scope["path"])
    return user


def logged_in_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: anyone holding a console role."""
    require_console_user(connection)


def runtime_of(request: ConsoleRequest) -> Any:
    return request.app.state.runtime


def language_of(request: ConsoleRequest) -> str:
    language: str = request.scope.get("state", {}).get("language", "fr")
    return language


NAV = (
    ("/", lazy("Overview"), False),
    ("/communes", lazy("Communes"), False),
    ("/intercommunales", lazy("Intercommunales"), False),
    ("/onboardings", lazy("Onboarding"), False),
    ("/jobs", lazy("Failed jobs"), True),
    ("/archives", lazy("Import a commune"), True),
    ("/operators", lazy("Operators"), True),
)


def navigation(user: ConsoleUser | None, path: str) -> list[dict[str, Any]]:
    if user is None:
        return []
    items = []
    for url, title, operators_only in NAV:
        if operators_only and not user.operator:
            continue
        current = path == url if url == "/" else path == url or path.startswith(url + "/")
        items.append({"url": url, "title": gettext(title), "current": current})
    return items


def console_page(
    request: ConsoleRequest, template: str, *, status_code: int = 200, **context: Any
) -> Response[bytes]:
    user = console_user(request)
    path = request.scope["path"]
    language = language_of(request)
    base = {
        "user": user,
        "nav": navigation(user, path),
        "language": language,
        "languages": [(code, language_name(code)) for code in LANGUAGES],
        "static_url": static_url,
        "path": path,
        "login_enabled": runtime_of(request).settings.login_enabled,
    }
    body = render_text(request, template, base | context)
    return Response(body.encode(), status_code=status_code, media_type=MediaType.HTML, headers=PAGE_HEADERS)


async def form_of(request: ConsoleRequest) -> dict[str, Any]:
    """A submitted form's fields (the CSRF token left out; files kept as uploads)."""
    data = await request.form()
    values: dict[str, Any] = {}
    for key, value in data.multi_items():
        if key == "_csrf_token":
            continue
        values[key] = value if isinstance(value, UploadFile) else str(value)
    return values


def errors_of(error: PerronError, default_field: str = "form") -> dict[str, str]:
    """``{field: message}`` for a refused form (the field names the input to correct)."""
    field = getattr(error, "field", None) or default_field
    reason = getattr(error, "reason", None) or error.message
    return {str(field): str(reason)}


def texts(form: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """``{language: text}`` from fields named ``<prefix>.<language>`` (empty ones left out)."""
    found = {}
    for code in LANGUAGES:
        value = str(form.get(f"{prefix}.{code}", "")).strip()
        if value:
            found[code] = value
    return found
