"""The platform console, on its own host (``PERRON_CONSOLE_HOST``).

It shows the platform's state to anyone (the way a public status page does: no commune's
data, only whether the platform works and how many communes it serves) and exposes the
Prometheus metrics to the monitoring system. Operator and intercommunale management sit
behind the staff login.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from perron import __version__
from perron.config import Settings
from perron.errors import PerronError
from perron.i18n import lazy
from perron.tenancy.actions import count_communes
from perron.tenancy.models import CommuneStatus
from perron.web.errors import error_handler
from perron.web.pages import READ_ONLY, STATIC_PREFIX, render, static_url
from perron.web.site import static_directories
from perron.web.templating import Templates

LOOPBACK = {"127.0.0.1", "::1"}

# Words the status page shows from data; listed so that they are translated.
_STATUS_WORDS = (
    lazy("Database"),
    lazy("Broker"),
    lazy("Runtime"),
    lazy("unreachable"),
    lazy("starting"),
    lazy("Provisioning"),
    lazy("Active"),
    lazy("Suspended"),
    lazy("Archived"),
)


@get("/", name="console_status", opt=READ_ONLY)
async def status(request: Request[Any, Any, Any]) -> ASGIResponse:
    runtime = request.app.state.runtime
    checks = await runtime.readiness()
    async with runtime.database.session() as session:
        counts = await count_communes(session)
    context = {
        "checks": checks,
        "healthy": all(value == "ok" for value in checks.values()),
        "counts": {status: counts.get(status, 0) for status in CommuneStatus},
        "version": __version__,
        "language": request.scope["state"].get("language", "en"),
        "static_url": static_url,
    }
    return render(request, "perron/console/status.html", context)


@get("/metrics", name="metrics", media_type=CONTENT_TYPE_LATEST, opt=READ_ONLY)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    settings: Settings = request.app.state.runtime.settings
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}"
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            raise NotAuthorizedException(headers={"www-authenticate": "Bearer"})
    elif (request.client.host if request.client else "") not in LOOPBACK:
        raise NotAuthorizedException(headers={"www-authenticate": "Bearer"})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_console_app(settings: Settings, templates: Templates, runtime: Any) -> Litestar:
    handle_error = error_handler(templates, "perron/console/error.html")
    app = Litestar(
        route_handlers=[
            status,
            metrics,
            create_static_files_router(path=STATIC_PREFIX, directories=static_directories(settings)),  # type: ignore[arg-type]
        ],
        csrf_config=CSRFConfig(
            secret=settings.secret(),
            cookie_name="perron_csrf",
            cookie_secure=settings.env == "production",
            cookie_httponly=True,
            exclude=[f"^{STATIC_PREFIX}/"],
        ),
        exception_handlers={HTTPException: handle_error, PerronError: handle_error, Exception: handle_error},
        request_max_body_size=settings.max_request_body_bytes,
        debug=False,
        openapi_config=None,
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.templates = templates
    return app
