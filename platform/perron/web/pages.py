"""What every page of a commune's site needs in its template context."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request
from litestar.response.base import ASGIResponse
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from perron.i18n import current_language, language_name
from perron.tenancy.site import TenantSite
from perron.web.templating import Templates

STATIC_PREFIX = "/static"
PAGE_HEADERS = {"cache-control": "no-cache"}
"""Pages may be stored by browsers but are checked again before each use."""
CSRF_INPUT = Markup('<input type="hidden" name="_csrf_token" value="{}">')

READ_ONLY = {"exclude_from_csrf": True}
"""Route option of a page that shows no form and changes nothing: it mints no CSRF cookie
(visitors who only read get no cookie at all). Never put it on a page with a form."""


def render(
    request: Request[Any, Any, Any], template: str, context: dict[str, Any], status_code: int = 200
) -> ASGIResponse:
    """Render a template with Jinja directly into Litestar's low-level response (its
    Template and Response objects cost more than rendering a small page) and add the CSRF
    token for forms."""
    return ASGIResponse(
        body=render_text(request, template, context).encode(),
        status_code=status_code,
        media_type=MediaType.HTML,
        headers=PAGE_HEADERS,
    )


def render_text(request: Request[Any, Any, Any], template: str, context: dict[str, Any]) -> str:
    """The HTML of a page, with the CSRF token for its forms."""
    templates: Templates = request.app.state.templates
    token = ScopeState.from_scope(request.scope).csrf_token
    csrf = "" if token is Empty else token
    context = context | {
        "csrf_token": csrf,
        "csrf_input": Markup('<input type="hidden" name="_csrf_token" value="{}">').format(csrf)
        if csrf
        else "",
    }
    language = request.scope.get("state", {}).get("language") or current_language()
    return templates.render(template, context, language)


def static_url(path: str) -> str:
    return f"{STATIC_PREFIX}/{path.lstrip('/')}"


def site_context(site: TenantSite, language: str, *, path: str = "/") -> dict[str, Any]:
    return {
        "site": site,
        "site_name": site.name(language),
        "language": language,
        "languages": [(code, language_name(code)) for code in site.languages],
        "branding_css": f"/branding.css?v={site.branding.css_version}",
        "static_url": static_url,
        "path": path,
    }
