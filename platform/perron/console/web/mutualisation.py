"""An intercommunale's module defaults and shared settings, with the preview of who a change
affects before it is saved."""

from __future__ import annotations

import json
from typing import Any

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from perron.console import access, mutualisation
from perron.console.web.common import (
    ConsoleRequest,
    console_page,
    errors_of,
    form_of,
    language_of,
    logged_in_guard,
    require_console_user,
    runtime_of,
)
from perron.errors import Invalid, NotFound, PerronError
from perron.i18n import gettext
from perron.modules.forms import build_form, parse_form
from perron.modules.registry import registry
from perron.tenancy.models import LANGUAGES


@get("/intercommunales/{slug:str}/modules", name="console_mutual_modules", guards=[logged_in_guard])
async def modules(request: ConsoleRequest, slug: FromPath[str]) -> Response[bytes]:
    user = require_console_user(request)
    language = language_of(request)
    async with runtime_of(request).database.session() as session:
        body = await access.intercommunale_for(session, user, slug)
        defaults = await mutualisation.module_defaults(session, body)
    items = [
        {
            "name": manifest.name,
            "title": manifest.title(language),
            "description": manifest.description(language),
            "default_on": defaults.get(manifest.name, False),
            "has_settings": manifest.settings is not None,
        }
        for manifest in registry.ordered()
    ]
    return console_page(
        request,
        "perron/console/mutual_modules.html",
        body=body,
        name=body.name(language),
        items=items,
        done=request.query_params.get("done"),
    )


@post("/intercommunales/{slug:str}/modules", name="console_mutual_modules_save", guards=[logged_in_guard])
async def modules_save(request: ConsoleRequest, slug: FromPath[str]) -> Redirect:
    user = require_console_user(request)
    form = await form_of(request)
    chosen = {key.removeprefix("module.") for key in form if key.startswith("module.")}
    async with runtime_of(request).database.transaction() as session:
        body = await access.intercommunale_for(session, user, slug)
        await mutualisation.set_module_defaults(session, body, chosen)
    return Redirect(f"/intercommunales/{slug}/modules?done=saved", status_code=303)


def _manifest(name: str) -> Any:
    manifest = registry.get(name)
    if manifest is None or manifest.settings is None:
        raise NotFoundException()
    return manifest


async def _settings_page(
    request: ConsoleRequest,
    slug: str,
    name: str,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    preview: mutualisation.Preview | None = None,
    payload: str = "",
) -> Response[bytes]:
    user = require_console_user(request)
    manifest = _manifest(name)
    language = language_of(request)
    schema = registry.settings_schema(name)
    async with runtime_of(request).database.session() as session:
        body = await access.intercommunale_for(session, user, slug)
        values, locked = await mutualisation.current(session, body, name)
    effective = schema.model_validate({**schema().model_dump(), **values})
    fields = build_form(
        schema,
        effective,
        own=values,
        languages=LANGUAGES,
        errors=errors or {},
        submitted={key: value for key, value in (submitted or {}).items() if not key.startswith("allow.")}
        if submitted is not None
        else None,
    )
    allowed = (
        {field.name for field in fields if submitted.get(f"allow.{field.name}")}
        if submitted is not None
        else {field.name for field in fields if field.name not in locked}
    )
    return console_page(
        request,
        "perron/console/mutual_settings.html",
        status_code=400 if errors else 200,
        body=body,
        name=body.name(language),
        module=manifest,
        module_title=manifest.title(language),
        fields=fields,
        labels={field.name: field.label for field in fields},
        allowed=allowed,
        errors=errors or {},
        preview=preview,
        payload=payload,
        language=language,
        done=request.query_params.get("done"),
    )


@get(
    "/intercommunales/{slug:str}/modules/{name:str}", name="console_mutual_settings", guards=[logged_in_guard]
)
async def settings(request: ConsoleRequest, slug: FromPath[str], name: FromPath[str]) -> Response[bytes]:
    return await _settings_page(request, slug, name)


@post(
    "/intercommunales/{slug:str}/modules/{name:str}",
    name="console_mutual_settings_save",
    guards=[logged_in_guard],
)
async def settings_save(
    request: ConsoleRequest, slug: FromPath[str], name: FromPath[str]
) -> Response[bytes] | Redirect:
    """First the preview of who the change affects; saved only once confirmed."""
    user = require_console_user(request)
    _manifest(name)
    form = await form_of(request)
    schema = registry.settings_schema(name)
    try:
        if form.get("confirm") == "yes":
            try:
                change = json.loads(str(form.get("payload", "")))
                values, locked = dict(change["values"]), list(change["locked"])
            except (ValueError, KeyError, TypeError):
                raise Invalid(
                    "payload", gettext("The confirmation could not be read: start again.")
                ) from None
            async with runtime_of(request).database.transaction() as session:
                body = await access.intercommunale_for(session, user, slug)
                await mutualisation.apply(session, body, name, values, locked)
            return Redirect(f"/intercommunales/{slug}/modules/{name}?done=saved", status_code=303)
        values = parse_form(schema, form, locked=frozenset())
        locked = sorted(field for field in schema.model_fields if not form.get(f"allow.{field}"))
        async with runtime_of(request).database.session() as session:
            body = await access.intercommunale_for(session, user, slug)
            found = await mutualisation.preview(session, body, name, values, locked)
    except NotFound:
        raise
    except PerronError as error:
        return await _settings_page(request, slug, name, errors=errors_of(error, "settings"), submitted=form)
    payload = json.dumps({"values": values, "locked": locked})
    return await _settings_page(request, slug, name, submitted=form, preview=found, payload=payload)


ROUTES = [modules, modules_save, settings, settings_save]
