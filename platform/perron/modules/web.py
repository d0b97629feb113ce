"""How modules' routes, navigation and widgets join a commune's site."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.static_files import create_static_files_router
from markupsafe import Markup

from perron.i18n import gettext, lazy
from perron.identity.models import Assurance
from perron.logging import get_logger
from perron.modules.manifest import WidgetContext
from perron.modules.registry import Registry
from perron.tenancy.site import TenantSite
from perron.web.auth import Forbidden, check_action, require_user

log = get_logger("perron.modules")

MODULE_OPT = "perron_module"


@dataclass(frozen=True, slots=True)
class NavItem:
    title: str
    url: str
    current: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class RenderedWidget:
    module: str
    name: str
    title: str
    html: Markup


def _module_of(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> str:
    name: str = handler.opt[MODULE_OPT]
    return name


def module_enabled_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A module's routes do not exist in a commune where it is switched off."""
    site: TenantSite | None = connection.scope.get("state", {}).get("site")
    if site is None or _module_of(connection, handler) not in site.enabled_modules:
        raise NotFoundException()


def module_open_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A module's citizen pages do not exist where it is switched off, nor where billing
    closed it to citizens (a paused module: its staff pages still answer)."""
    site: TenantSite | None = connection.scope.get("state", {}).get("site")
    if site is None or _module_of(connection, handler) not in site.open_modules():
        raise NotFoundException()


def module_staff_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A module's admin pages: staff holding ``admin`` or one of the module's roles."""
    user = require_user(connection, Assurance.LOW)
    module = _module_of(connection, handler)
    if not user.is_staff or not (
        "admin" in user.roles or any(r.startswith(f"{module}.") for r in user.roles)
    ):
        raise Forbidden(gettext("This page is for the commune's staff."))


def requires(module: str, action: str) -> Any:
    """Litestar guard for a route doing one of a module's declared actions."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        from perron.modules.registry import registry

        manifest = registry.get(module)
        if manifest is None:
            raise NotFoundException()
        declared = manifest.action(action)
        if declared.role is not None:
            user = require_user(connection, max(declared.assurance, Assurance.LOW))
            if not user.has_role(declared.role):
                raise Forbidden(gettext("This page is for the commune's staff."))
            return
        check_action(connection, declared.assurance, declared.residency)

    guard.__name__ = f"requires_{module}_{action}"
    return guard


def module_routers(registry: Registry) -> list[Router]:
    routers: list[Router] = []
    for manifest in registry.ordered():
        opt = {MODULE_OPT: manifest.name}
        if manifest.routes:
            routers.append(
                Router(
                    path=manifest.path,
                    route_handlers=list(manifest.routes),
                    guards=[module_open_guard],
                    opt=opt,
                )
            )
        if manifest.admin_routes:
            routers.append(
                Router(
                    path=f"/admin{manifest.path}",
                    route_handlers=list(manifest.admin_routes),
                    guards=[module_enabled_guard, module_staff_guard],
                    opt=opt,
                )
            )
        if manifest.static is not None:
            routers.append(
                create_static_files_router(
                    path=f"/static/modules/{manifest.name}",
                    directories=[Path(manifest.static)],
                    cache_control=CacheControlHeader(max_age=86400, public=True),
                    opt=opt | {"exclude_from_csrf": True},
                    guards=[module_enabled_guard],
                )
            )
    return routers


def _current(url: str, path: str) -> bool:
    return path == url or path.startswith(url.rstrip("/") + "/")


def navigation(registry: Registry, site: TenantSite, path: str) -> list[NavItem]:
    items: list[NavItem] = []
    for manifest in registry.ordered(site.open_modules()):
        for entry in manifest.nav:
            url = manifest.path + entry.path
            items.append(NavItem(gettext(entry.title), url, _current(url, path)))
    return items


def admin_navigation(registry: Registry, site: TenantSite, path: str, roles: frozenset[str]) -> list[NavItem]:
    items = [NavItem(gettext("Overview"), "/admin", path == "/admin")]
    is_admin = "admin" in roles
    for manifest in registry.ordered(site.enabled_modules):
        if not (is_admin or any(role.startswith(f"{manifest.name}.") for role in roles)):
            continue
        for entry in manifest.admin_nav:
            url = f"/admin{manifest.path}{entry.path}"
            items.append(NavItem(gettext(entry.title), url, _current(url, path)))
    platform: list[tuple[bool, str, str, str]] = [
        (
            is_admin or "territory.editor" in roles,
            lazy("Territory"),
            "/admin/territory",
            lazy("Streets, neighbourhoods and zones of the commune."),
        ),
        (
            is_admin or "staff" in roles,
            lazy("Residents"),
            "/admin/residents",
            lazy("Find a resident, register someone, verify a residency."),
        ),
        (is_admin, lazy("Staff"), "/admin/staff", lazy("Who works on the site, and their roles.")),
        (
            is_admin,
            lazy("Modules"),
            "/admin/modules",
            lazy("The online services the site offers, and their settings."),
        ),
        (is_admin, lazy("Branding"), "/admin/branding", lazy("Colours, font, logo, texts and home page.")),
        (is_admin, lazy("Web addresses"), "/admin/domains", lazy("The addresses the site answers at.")),
        (
            is_admin,
            lazy("Privacy and accessibility"),
            "/admin/legal",
            lazy("What the commune adds to its privacy notice and accessibility statement."),
        ),
        (is_admin, lazy("Audit log"), "/admin/audit", lazy("Who changed what, and when.")),
        (
            is_admin,
            lazy("Site usage"),
            "/admin/adoption",
            lazy("How many citizens use the site and its services."),
        ),
    ]
    for allowed, title, url, description in platform:
        if allowed:
            items.append(NavItem(gettext(title), url, _current(url, path), gettext(description)))
    return items


def services(registry: Registry, site: TenantSite, language: str) -> list[NavItem]:
    """The modules open to citizens, as the home page lists them."""
    return [
        NavItem(m.title(language), m.path, description=m.description(language))
        for m in registry.ordered(site.open_modules())
        if m.routes
    ]


async def render_widgets(
    registry: Registry, site: TenantSite, language: str, session: Any, templates: Any
) -> Sequence[RenderedWidget]:
    """The home-page widgets of every module open to citizens; one failing is logged and
    left out."""
    from perron.tenancy.settings import resolve

    rendered: list[RenderedWidget] = []
    for manifest in registry.ordered(site.open_modules()):
        if not manifest.widgets:
            continue
        try:
            settings = await resolve(
                session,
                site.id,
                manifest.namespace,
                registry.settings_schema(manifest.name),
                intercommunale_id=site.intercommunale_id,
            )
            for widget in manifest.widgets:
                context = await widget.load(WidgetContext(site.id, session, language, settings))
                if not context:
                    continue
                html = templates.render(
                    widget.template, {"language": language, "site": site} | context, language
                )
                title = gettext(widget.title) if widget.title else manifest.title(language)
                rendered.append(RenderedWidget(manifest.name, widget.name, title, Markup(html)))  # noqa: S704
        except Exception:
            log.exception("widget.failed", module=manifest.name)
    return rendered


def module_billing_notice(registry: Registry, site: TenantSite, path: str) -> str | None:
    """On a module's staff pages: what billing does to it for citizens (a payment failed, a
    pause for non-payment, a subscription ending), or None."""
    if not site.paid_access:
        return None
    for manifest in registry.ordered(site.enabled_modules):
        prefix = f"/admin{manifest.path}"
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            from perron import clock
            from perron.billing.entitlements import staff_notice

            return staff_notice(site.paid_access.get(manifest.name), clock.now())
    return None
