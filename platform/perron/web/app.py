"""Build the ASGI application a server runs (``uvicorn perron.web.app:create_app --factory``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from perron.config import Settings, load_settings
from perron.logging import configure_logging
from perron.runtime import Runtime
from perron.web.asgi import PerronASGI
from perron.web.console import create_console_app
from perron.web.middleware import RequestMiddleware
from perron.web.site import create_site_app


def build(settings: Settings, *, run_worker: bool | None = None) -> tuple[Any, Runtime]:
    runtime = Runtime(settings, run_worker=run_worker)
    site_app = create_site_app(settings, runtime.templates, runtime)
    console_app = create_console_app(settings, runtime.templates, runtime)
    login_origin = urlsplit(settings.keycloak_url)
    form_targets = (f"{login_origin.scheme}://{login_origin.netloc}",) if settings.login_enabled else ()
    return RequestMiddleware(PerronASGI(runtime, site_app, console_app), form_targets=form_targets), runtime


def create_app() -> Any:
    settings = load_settings()
    configure_logging(settings)
    app, _runtime = build(settings)
    return app
