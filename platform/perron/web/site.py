"""A commune's public site (the Litestar application behind every commune's domain).

Requests arrive here from :mod:`perron.web.asgi` with the commune resolved, its scope open,
and ``request.state.site`` / ``request.state.language`` set.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from litestar import Litestar, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router

from perron.config import Settings
from perron.db.scope import IsolationError
from perron.errors import PerronError
from perron.modules.registry import registry
from perron.modules.web import (
    RenderedWidget,
    admin_navigation,
    module_billing_notice,
    module_routers,
    navigation,
    render_widgets,
    services,
)
from perron.notifications.web import ROUTES as NOTIFICATION_ROUTES
from perron.tenancy.site import TenantSite
from perron.territory import web as territory_web
from perron.web import (
    account,
    admin,
    adoption,
    audit_admin,
    branding_admin,
    domains_admin,
    legal_admin,
    login,
    staff_admin,
)
from perron.web.auth import SessionMiddleware
from perron.web.brand_assets import ROUTES as BRAND_ROUTES
from perron.web.errors import error_handler
from perron.web.legal import ROUTES as LEGAL_ROUTES
from perron.web.page_cache import PUBLIC_PAGE, PageCacheMiddleware
from perron.web.pages import READ_ONLY, STATIC_PREFIX, render, site_context
from perron.web.templating import Templates

SiteRequest = Request[Any, Any, Any]


def current_site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def page(request: SiteRequest, template: str, *, status_code: int = 200, **context: Any) -> ASGIResponse:
    """Render a page of the commune's site with the context every page needs: the commune,
    the language, the person (``user``) and the navigation of the modules switched on."""
    return render(request, template, page_context(request, context), status_code)


def page_context(request: SiteRequest, context: dict[str, Any]) -> dict[str, Any]:
    state = request.scope["state"]
    site: TenantSite = state["site"]
    path = request.scope["path"]
    user = state.get("user")
    base = site_context(site, state["language"], path=path) | {
        "user": user,
        "contact": site.contact,
        "nav": navigation(registry, site, path),
        "login_url": "/login" if request.app.state.runtime.settings.login_enabled else None,
    }
    if path == "/admin" or path.startswith("/admin/"):
        base["admin_nav"] = admin_navigation(registry, site, path, user.roles if user else frozenset())
        base["billing_notice"] = module_billing_notice(registry, site, path)
    return base | context


@get("/", name="home", opt=PUBLIC_PAGE)
async def home(request: SiteRequest) -> ASGIResponse:
    site = current_site(request)
    language = request.scope["state"]["language"]
    widgets: Sequence[RenderedWidget] = ()
    if any(manifest.widgets for manifest in registry.ordered(site.open_modules())):
        async with request.app.state.runtime.database.session() as session:
            widgets = await render_widgets(registry, site, language, session, request.app.state.templates)
    return page(request, "perron/home.html", services=services(registry, site, language), widgets=widgets)


@get("/branding.css", name="branding_css", media_type="text/css", opt=READ_ONLY)
async def branding_css(request: SiteRequest) -> Response[str]:
    site = current_site(request)
    current = request.query_params.get("v") == site.branding.css_version
    cache = "public, max-age=31536000, immutable" if current else "public, max-age=60"
    return Response(site.branding.css, media_type="text/css", headers={"cache-control": cache})


def static_directories(settings: Settings) -> list[Path]:
    theme_static = settings.themes_dir / "default" / "static"
    platform_static = Path(str(resources.files("perron.web") / "static"))
    return [path for path in (theme_static, platform_static) if path.is_dir()]


def create_site_app(settings: Settings, templates: Templates, runtime: Any) -> Litestar:
    handle_error = error_handler(templates)
    page_cache = (
        LRUCache[tuple[Any, ...], Any](settings.page_cache_size) if settings.page_cache_size else None
    )
    app = Litestar(
        route_handlers=[
            home,
            branding_css,
            *BRAND_ROUTES,
            *admin.ROUTES,
            *adoption.ROUTES,
            *staff_admin.ROUTES,
            *branding_admin.ROUTES,
            *domains_admin.ROUTES,
            *legal_admin.ROUTES,
            *audit_admin.ROUTES,
            *account.ROUTES,
            *login.ROUTES,
            *territory_web.ROUTES,
            *LEGAL_ROUTES,
            *NOTIFICATION_ROUTES,
            *module_routers(registry),
            create_static_files_router(
                path=STATIC_PREFIX,
                directories=static_directories(settings),  # type: ignore[arg-type]
                cache_control=CacheControlHeader(max_age=86400, public=True),
            ),
        ],
        csrf_config=CSRFConfig(
            secret=settings.secret(),
            cookie_name="perron_csrf",
            cookie_secure=settings.env == "production",
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=[f"^{STATIC_PREFIX}/"],
        ),
        exception_handlers={
            HTTPException: handle_error,
            PerronError: handle_error,
            IsolationError: handle_error,
            Exception: handle_error,
        },
        middleware=[
            SessionMiddleware,  # type: ignore[list-item]
            DefineMiddleware(PageCacheMiddleware, cache=page_cache),  # type: ignore[arg-type]
        ],
        request_max_body_size=settings.max_request_body_bytes,
        debug=False,
        openapi_config=None,
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.templates = templates
    return app
