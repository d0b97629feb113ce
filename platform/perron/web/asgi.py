"""The application every server runs: it picks who answers a request from its Host.

* ``/healthz`` and ``/readyz`` answer on any host (load balancers probe by address);
* the console host goes to the operator and intercommunale console;
* a commune's primary domain goes to the commune's site, inside that commune's scope;
* an alias domain answers 301 to the same path on the primary domain;
* an unknown host answers a plain 404 that names no commune;
* a suspended commune answers a 503 page in its own branding (its static files still load);
  one being provisioned a plain 503; an archived one a plain 410.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

import structlog

from perron.billing import webhooks as stripe_webhooks
from perron.db.scope import tenant_scope
from perron.i18n import LANGUAGE_COOKIE, negotiate, set_language
from perron.identity import backchannel
from perron.logging import get_logger
from perron.runtime import Runtime
from perron.tenancy.hosts import InvalidHost, split_host_header
from perron.tenancy.models import LANGUAGES, CommuneStatus
from perron.tenancy.resolver import Outcome
from perron.tenancy.site import TenantSite
from perron.web.pages import STATIC_PREFIX, site_context

log = get_logger("perron.web")

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
ALWAYS_SERVED_FOLDERS = (STATIC_PREFIX + "/", "/icons/")
ALWAYS_SERVED_FILES = frozenset(
    {
        "/branding.css",
        "/favicon.ico",
        "/logo",
        "/apple-touch-icon.png",
        "/apple-touch-icon-precomposed.png",
        "/manifest.webmanifest",
        "/accessibility",
        "/privacy",
    }
)
"""What a suspended commune still serves: its notice shows its logo and colours."""


def _always_served(path: str) -> bool:
    return path in ALWAYS_SERVED_FILES or path.startswith(ALWAYS_SERVED_FOLDERS)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:  # browsers send IDN hosts as punycode; a few clients send raw UTF-8
                return str(value.decode("utf-8"))
            except UnicodeDecodeError:
                return str(value.decode("latin-1"))
    return None


def _canonical_host_header(scope: dict[str, Any], host: str, port: int | None) -> None:
    """What the applications behind see: the host as Perron stores it (ASCII, lower case)."""
    value = (f"{host}:{port}" if port else host).encode("ascii")
    scope["headers"] = [(key, value if key == b"host" else raw) for key, raw in scope.get("headers", ())]


async def _respond(
    send: Any, status: int, content_type: bytes, body: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole response from the dispatcher itself (never cached by browsers or proxies)."""
    payload = body.encode()
    start_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": payload})


async def plain(send: Any, status: int, body: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _respond(send, status, b"text/plain; charset=utf-8", body, headers)


async def html(send: Any, status: int, body: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _respond(send, status, b"text/html; charset=utf-8", body, headers)


class PerronASGI:
    def __init__(self, runtime: Runtime, site_app: ASGIApp, console_app: ASGIApp) -> None:
        self.runtime = runtime
        self.site_app = site_app
        self.console_app = console_app
        self.console_host = runtime.settings.console_host
        self._inner_lifespans: list[Callable[[], Awaitable[None]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        if path == "/healthz":
            await plain(send, 200, "ok\n")
            return
        if path == "/readyz":
            await self._readiness(send)
            return
        if path == backchannel.PATH:
            await self._backchannel_logout(scope, receive, send)
            return
        if path == stripe_webhooks.PATH:
            await self._stripe_webhook(scope, receive, send)
            return
        try:
            address = split_host_header(_header(scope, b"host"))
        except InvalidHost as error:
            await plain(send, 400, f"Bad request: {error}.\n")
            return
        state = scope.setdefault("state", {})
        state["host"] = address.host
        _canonical_host_header(scope, address.host, address.port)
        if address.host == self.console_host:
            state["site_kind"] = "console"
            self._choose_language(scope, LANGUAGES)
            await self.console_app(scope, receive, send)
            return
        resolution = await self.runtime.resolver.resolve(address.host)
        if resolution.outcome is Outcome.UNKNOWN or resolution.site is None:
            await plain(send, 404, "Not found: no site answers at this address.\n")
            return
        site = resolution.site
        if resolution.outcome is Outcome.REDIRECT:
            await self._redirect(scope, send, site, address.port)
            return
        await self._serve_site(scope, receive, send, site)

    async def _serve_site(self, scope: dict[str, Any], receive: Any, send: Any, site: TenantSite) -> None:
        state = scope["state"]
        state["site_kind"] = "commune"
        state["tenant"] = site.slug
        structlog.contextvars.bind_contextvars(tenant=site.slug)
        if site.status is CommuneStatus.PROVISIONING:
            await plain(send, 503, "This site is being prepared and will open soon.\n")
            return
        if site.status is CommuneStatus.ARCHIVED:
            await plain(send, 410, "This site has closed.\n")
            return
        language, send = self._choose_language(scope, site.languages, send)
        state["site"] = site
        with tenant_scope(site.id):
            if site.status is CommuneStatus.SUSPENDED and not _always_served(scope["path"]):
                await self._suspended(send, site, language)
                return
            await self.site_app(scope, receive, send)

    async def _suspended(self, send: Any, site: TenantSite, language: str) -> None:
        body = self.runtime.templates.render(
            "perron/suspended.html",
            site_context(site, language) | {"notice": site.notice(language)},
            language,
        )
        await html(send, 503, body, [(b"retry-after", b"3600")])

    async def _redirect(self, scope: dict[str, Any], send: Any, site: TenantSite, port: int | None) -> None:
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        port_part = f":{port}" if port and port not in (80, 443) else ""
        location = f"{scope.get('scheme', 'http')}://{site.primary_host}{port_part}{path}"
        if query:
            location += f"?{query}"
        await plain(send, 301, f"Moved to {location}\n", [(b"location", location.encode("latin-1"))])

    def _choose_language(self, scope: dict[str, Any], offered: Any, send: Any = None) -> tuple[str, Any]:
        raw_query = scope.get("query_string", b"")
        requested = (parse_qs(raw_query.decode("latin-1")).get("lang") or [None])[0] if raw_query else None
        cookie_value = None
        cookie_header = _header(scope, b"cookie")
        if cookie_header:
            try:
                morsel = SimpleCookie(cookie_header).get(LANGUAGE_COOKIE)
            except CookieError:
                morsel = None
            cookie_value = morsel.value if morsel else None
        language = negotiate(
            offered,
            requested=requested,
            cookie=cookie_value,
            accept_language=_header(scope, b"accept-language"),
        )
        set_language(language)
        scope["state"]["language"] = language
        # Whether the visitor chose it (a link, their remembered choice): a logged-in
        # person's account language only replaces a language guessed from the browser.
        scope["state"]["language_chosen"] = language in (requested, cookie_value)
        if send is None or requested != language or cookie_value == language:
            return language, send
        # An explicit choice (?lang=nl, from the language links) is remembered for a year.
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{LANGUAGE_COOKIE}={language}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}"

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        return language, send_with_cookie

    async def _backchannel_logout(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _posted_body(scope, receive, send, backchannel.MAX_BODY)
        if body is None:
            return
        status, answer = await backchannel.handle(self.runtime, body)
        await _respond(send, status, b"application/json", json.dumps(answer) + "\n")

    async def _stripe_webhook(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.runtime.settings.billing_enabled:
            await plain(send, 404, "Not found.\n")
            return
        body = await _posted_body(scope, receive, send, stripe_webhooks.MAX_BODY)
        if body is None:
            return
        signature = _header(scope, b"stripe-signature")
        status, answer = await stripe_webhooks.handle(self.runtime, body, signature)
        await _respond(send, status, b"application/json", json.dumps(answer) + "\n")

    async def _readiness(self, send: Any) -> None:
        checks = await self.runtime.readiness()
        ready = all(value == "ok" for value in checks.values())
        body = json.dumps({"status": "ready" if ready else "unavailable", "checks": checks}) + "\n"
        await _respond(send, 200 if ready else 503, b"application/json", body)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.runtime.start()
            for app in (self.site_app, self.console_app):
                self._inner_lifespans.append(await _start_lifespan(app))
        except Exception as error:
            log.exception("startup.failed")
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        # Everything built at start-up lives as long as the process: keep the garbage
        # collector from scanning it again on every collection of the oldest generation.
        gc.collect()
        gc.freeze()
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        for stop in reversed(self._inner_lifespans):
            await stop()
        await self.runtime.stop()
        await send({"type": "lifespan.shutdown.complete"})


async def _posted_body(scope: dict[str, Any], receive: Any, send: Any, limit: int) -> bytes | None:
    """The body of a POST of at most ``limit`` bytes; otherwise answers (405, 413) and None."""
    if scope["method"] != "POST":
        await plain(send, 405, "Use POST.\n", [(b"allow", b"POST")])
        return None
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if len(body) > limit:
            log.warning("request.too_large", path=scope["path"], limit=limit)
            await plain(send, 413, "Too large.\n")
            return None
        if not message.get("more_body"):
            return body


async def _start_lifespan(app: ASGIApp) -> Callable[[], Awaitable[None]]:
    """Run an inner application's lifespan protocol; returns what shuts it down."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()
    failure: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.failed":
            failure.append(message.get("message", "startup failed"))
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    task: asyncio.Task[None] = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    if failure:
        raise RuntimeError(failure[0])

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task

    return stop
