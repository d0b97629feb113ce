"""The staff area of a commune's site (``/admin``): overview, and the modules switched on
with their settings. Modules add their own pages under ``/admin/<module>``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from perron.errors import Invalid, PerronError
from perron.modules import activation
from perron.modules.forms import build_form, parse_form
from perron.modules.registry import registry
from perron.web.auth import any_staff_guard, staff_guard

SiteRequest = Request[Any, Any, Any]


def _runtime(request: SiteRequest) -> Any:
    return request.app.state.runtime


def _page(request: SiteRequest, template: str, *, status_code: int = 200, **context: Any) -> Response[bytes]:
    from perron.modules.context import page

    return page(request, template, status_code=status_code, **context)


@get("/admin", name="admin_home", guards=[any_staff_guard])
async def admin_home(request: SiteRequest) -> Response[bytes]:
    return _page(request, "perron/admin/index.html")


@get("/admin/modules", name="admin_modules", guards=[staff_guard("admin")])
async def admin_modules(request: SiteRequest) -> Response[bytes]:
    site = request.scope["state"]["site"]
    language = request.scope["state"]["language"]
    modules = [
        {
            "name": manifest.name,
            "title": manifest.title(language),
            "description": manifest.description(language),
            "version": manifest.version,
            "enabled": manifest.name in site.enabled_modules,
            "has_settings": manifest.settings is not None,
        }
        for manifest in registry.ordered()
    ]
    return _page(request, "perron/admin/modules.html", modules=modules)


def _manifest_or_404(name: str) -> Any:
    manifest = registry.get(name)
    if manifest is None:
        raise NotFoundException()
    return manifest


@post("/admin/modules/{name:str}/{switch:str}", name="admin_module_switch", guards=[staff_guard("admin")])
async def admin_module_switch(request: SiteRequest, name: FromPath[str], switch: FromPath[str]) -> Redirect:
    _manifest_or_404(name)
    if switch not in ("enable", "disable"):
        raise NotFoundException()
    site = request.scope["state"]["site"]
    async with _runtime(request).database.transaction() as session:
        if switch == "enable":
            await activation.enable(session, site.id, name)
        else:
            await activation.disable(session, site.id, name)
    return Redirect("/admin/modules", status_code=303)


async def _settings_page(
    request: SiteRequest,
    name: str,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    saved: bool = False,
) -> Response[bytes]:
    manifest = _manifest_or_404(name)
    site = request.scope["state"]["site"]
    async with _runtime(request).database.session() as session:
        schema, effective, own, locked = await activation.settings_layers(session, site.id, name)
    fields = build_form(
        schema,
        effective,
        own=own,
        locked=locked,
        languages=site.languages,
        errors=errors or {},
        submitted=submitted,
    )
    return _page(
        request,
        "perron/admin/module_settings.html",
        status_code=400 if errors else 200,
        module=manifest,
        module_title=manifest.title(request.scope["state"]["language"]),
        fields=fields,
        errors=errors or {},
        saved=saved,
    )


@get("/admin/modules/{name:str}/settings", name="admin_module_settings", guards=[staff_guard("admin")])
async def admin_module_settings(request: SiteRequest, name: FromPath[str]) -> Response[bytes]:
    return await _settings_page(request, name, saved=request.query_params.get("saved") == "1")


@post("/admin/modules/{name:str}/settings", name="admin_module_settings_save", guards=[staff_guard("admin")])
async def admin_module_settings_save(request: SiteRequest, name: FromPath[str]) -> Response[bytes] | Redirect:
    _manifest_or_404(name)
    site = request.scope["state"]["site"]
    form = {key: value for key, value in (await request.form()).items() if key != "_csrf_token"}
    try:
        async with _runtime(request).database.transaction() as session:
            _, _, _, locked = await activation.settings_layers(session, site.id, name)
            values = parse_form(registry.settings_schema(name), form, locked=locked)
            await activation.update_settings(session, site.id, name, values)
    except Invalid as error:
        return await _settings_page(request, name, errors={error.field: error.reason}, submitted=form)
    except PerronError as error:
        return await _settings_page(request, name, errors={"settings": error.message}, submitted=form)
    return Redirect(f"/admin/modules/{name}/settings?saved=1", status_code=303)


ROUTES = [admin_home, admin_modules, admin_module_switch, admin_module_settings, admin_module_settings_save]
