"""The platform console, on its own host (``PERRON_CONSOLE_HOST``).

It shows the platform's state to anyone (the way a public status page does: no commune's
data, only whether the platform works and how many communes it serves) and exposes the
Prometheus metrics to the monitoring system. Operator and intercommunale management
(:mod:`perron.console`) sit behind the staff login.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.static_files import create_static_files_router
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from perron.config import Settings
from perron.console.web import ROUTES as CONSOLE_ROUTES
from perron.console.web.middleware import ConsoleSessionMiddleware
from perron.db.scope import IsolationError
from perron.errors import PerronError
from perron.i18n import lazy
from perron.web.errors import error_handler
from perron.web.pages import READ_ONLY, STATIC_PREFIX
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
            *CONSOLE_ROUTES,
            metrics,
            create_static_files_router(path=STATIC_PREFIX, directories=static_directories(settings)),  # type: ignore[arg-type]
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
        middleware=[ConsoleSessionMiddleware],  # type: ignore[list-item]
        request_max_body_size=settings.max_request_body_bytes,
        debug=False,
        openapi_config=None,
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.templates = templates
    return app
