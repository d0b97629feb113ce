"""Error pages: in the commune's branding and language, with a reference, never a trace.

A client that asks for JSON gets ``{"error", "message", "request_id"}`` instead. An attempt
to reach another commune's data (:class:`~perron.db.scope.IsolationError`) looks exactly
like a missing page from outside, and is logged as a security event inside.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect
from sqlalchemy.exc import DBAPIError

from perron.db.scope import IsolationError
from perron.errors import PerronError
from perron.i18n import current_language, gettext, lazy
from perron.logging import get_logger
from perron.web.pages import site_context
from perron.web.templating import Templates

log = get_logger("perron.web.errors")

INSUFFICIENT_PRIVILEGE = "42501"

TITLES = {
    400: lazy("This request could not be understood"),
    401: lazy("Please sign in"),
    403: lazy("You are not allowed to do this"),
    404: lazy("This page does not exist"),
    405: lazy("This action is not possible here"),
    409: lazy("This conflicts with what already exists"),
    413: lazy("What you sent is too large"),
    429: lazy("Too many requests"),
    500: lazy("Something went wrong on our side"),
    503: lazy("This service is unavailable for a moment"),
}

EXPLANATIONS = {
    400: lazy("Check what you entered and try again."),
    403: lazy("If you think you should be allowed, contact your commune."),
    404: lazy("The address may be mistyped, or the page may have moved. Try the home page."),
    413: lazy("Send a smaller file or a shorter text."),
    500: lazy("The error has been recorded. Please try again in a few minutes."),
}

CSRF_EXPLANATION = lazy(
    "The form was open for too long or came from elsewhere. Reload the page and send it again."
)


def _is_row_security_violation(exc: BaseException) -> bool:
    """PostgreSQL refused a row under row-level security (lock 2 caught what 1 and 3 missed),
    possibly wrapped by a repository's own exception."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and getattr(seen.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _status_and_message(exc: Exception) -> tuple[int, str | None]:
    if isinstance(exc, IsolationError) or _is_row_security_violation(exc):
        log.warning("security.isolation_blocked", error=str(exc), error_type=type(exc).__name__)
        return 404, None
    if isinstance(exc, PerronError):
        return exc.status_code, exc.message
    if isinstance(exc, HTTPException):
        if exc.status_code == 403 and "csrf" in str(exc.detail).lower():
            return 403, gettext(CSRF_EXPLANATION)
        return exc.status_code, None
    log.error("http.unhandled_exception", exc_info=exc)
    return 500, None


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_handler(templates: Templates, template: str = "perron/error.html") -> Any:
    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        login_url = getattr(exc, "login_url", None)
        if (
            login_url
            and request.method in ("GET", "HEAD")
            and request.app.state.runtime.settings.login_enabled
            and not _wants_json(request)
        ):
            # Not an error for the person: a (stronger) login, then back to this page.
            return Redirect(login_url, status_code=303, headers={"cache-control": "no-store"})
        status, message = _status_and_message(exc)
        title = gettext(TITLES.get(status, TITLES[500] if status >= 500 else TITLES[400]))
        explanation = message or gettext(EXPLANATIONS.get(status, EXPLANATIONS[500] if status >= 500 else ""))
        request_id = request.scope.get("state", {}).get("request_id", "")
        headers = {"cache-control": "no-store"}
        if isinstance(exc, NotAuthorizedException | PermissionDeniedException) and exc.headers:
            headers.update(exc.headers)
        if _wants_json(request):
            return Response(
                {"error": title, "message": explanation, "request_id": request_id},
                status_code=status,
                media_type=MediaType.JSON,
                headers=headers,
            )
        language = request.scope.get("state", {}).get("language") or current_language()
        site = request.scope.get("state", {}).get("site")
        context: dict[str, Any] = {"language": language}
        try:  # the commune's page around the error: its menu, the person, its contact
            if site is not None and "language" in request.scope.get("state", {}):
                from perron.web.site import page_context  # the site app imports this module

                context = page_context(request, {})
            elif site is not None:
                context = site_context(site, language)
        except Exception:  # what failed may be what builds pages: show a plain one
            log.exception("http.error_page_context_failed")
        context |= {"status": status, "title": title, "explanation": explanation, "request_id": request_id}
        body = templates.render(template, context, language)
        return Response(body, status_code=status, media_type=MediaType.HTML, headers=headers)

    return handle
