"""The outermost layer of every HTTP response, whatever answers it.

Plain ASGI (it runs on every request, before Litestar, so it must be cheap):

* a request id, returned as ``X-Request-ID`` and carried by every log line of the request;
* one structured access-log line per request, with the commune when there is one;
* Prometheus request metrics;
* security headers: a strict Content-Security-Policy without inline script, anti-framing,
  and HSTS on HTTPS.
"""

from __future__ import annotations

import functools
import secrets
import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from perron.audit import request_context
from perron.logging import get_logger

Scope = dict[str, Any]
Message = dict[str, Any]

access_log = get_logger("perron.access")

REQUESTS = Counter("perron_http_requests_total", "HTTP responses sent", ["site", "method", "status"])
LATENCY = Histogram(
    "perron_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["site"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@functools.cache
def _requests(site: str, method: str, status: int) -> Any:
    """Metric children looked up once per label set, not on every request."""
    return REQUESTS.labels(site, method, str(status))


@functools.cache
def _latency(site: str) -> Any:
    return LATENCY.labels(site)


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The pages' policy. Forms post to the site itself, and to the origins in
    ``form_targets``: logging out posts here and is redirected to Keycloak, and browsers
    apply ``form-action`` to a form's redirects too."""
    targets = " ".join(("'self'", *form_targets))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action {targets}; "
        "frame-ancestors 'none'"
    )


CSP = content_security_policy()


def _base_headers(csp: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), payment=(), geolocation=(self)"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


_BASE_HEADERS = _base_headers(CSP)
_HSTS = (b"strict-transport-security", b"max-age=31536000")
_KNOWN = {name for name, _ in _BASE_HEADERS} | {_HSTS[0]}


class RequestMiddleware:
    def __init__(self, app: Any, *, form_targets: tuple[str, ...] = ()) -> None:
        self.app = app
        self.base_headers = (
            _base_headers(content_security_policy(form_targets)) if form_targets else _BASE_HEADERS
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        with request_context(request_id):
            await self._handle(scope, receive, send, request_id)

    async def _handle(self, scope: Scope, receive: Any, send: Any, request_id: str) -> None:
        # Servers run each request in a task of its own context; binding overwrites what a
        # previous request in the same context (tests, in-process clients) left behind.
        structlog.contextvars.bind_contextvars(request_id=request_id, tenant=None)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers} & _KNOWN
                headers.extend(header for header in self.base_headers if header[0] not in present)
                if https and _HSTS[0] not in present:
                    headers.append(_HSTS)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            state = scope.get("state", {})
            site_kind = state.get("site_kind", "none")
            _requests(site_kind, scope["method"], status).inc()
            _latency(site_kind).observe(elapsed)
            access_log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                host=state.get("host"),
                tenant=state.get("tenant"),
            )
