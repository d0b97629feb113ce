"""Rendered public pages, kept per process for anonymous visitors.

Most of a commune's traffic is people reading public pages that are the same for every
visitor: rendering them once per change instead of once per request is what keeps an old
phone on a slow line from waiting on the server.

A route opts in with ``opt=PUBLIC_PAGE``, which promises that its response depends only on
the commune's site snapshot, the language and the URL. The key is (commune id, snapshot
version, language, path, query string): any change that invalidates the commune's
snapshot (:func:`perron.cache.invalidate`) makes new keys, and the old entries age out of
the bounded LRU. Where billing limits a module in time, the key also holds the modules open
to citizens at this moment: a grace period that ends makes new keys by itself, so a paused
module's pages and widgets are never served from a copy made before. A request carrying any
cookie but the language choice (a session, a CSRF token) is never served from the cache,
and a response that sets a cookie or is not a 200 is never stored.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any

from cachetools import LRUCache
from prometheus_client import Counter

from perron.i18n import LANGUAGE_COOKIE

PUBLIC_PAGE = {"exclude_from_csrf": True, "public_page": True}
"""Route option: a read-only page (no form, no CSRF cookie) whose output depends only on the
commune, the language and the URL, so anonymous visitors may be served a stored copy."""

MAX_BODY = 256 * 1024
LOOKUPS = Counter("perron_page_cache_lookups_total", "Public page cache lookups", ["result"])
_HIT, _MISS, _BYPASS = (LOOKUPS.labels(result) for result in ("hit", "miss", "bypass"))

Entry = tuple[int, list[tuple[bytes, bytes]], bytes]


def _anonymous(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return False
        if name == b"cookie":
            try:
                names = set(SimpleCookie(value.decode("latin-1")))
            except CookieError:
                return False
            if names - {LANGUAGE_COOKIE}:
                return False
    return True


class PageCacheMiddleware:
    """Litestar route middleware (it runs after routing, so it sees the route's options)."""

    def __init__(self, app: Any, cache: LRUCache[tuple[Any, ...], Entry] | None) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        handler = scope.get("route_handler")
        if (
            self.cache is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or handler is None
            or not handler.opt.get("public_page")
        ):
            await self.app(scope, receive, send)
            return
        if not _anonymous(scope):
            _BYPASS.inc()
            await self.app(scope, receive, send)
            return
        state = scope["state"]
        site = state["site"]
        key = (
            site.id,
            site.loaded_at,
            site.open_modules() if site.paid_access else None,
            state["language"],
            scope["path"],
            scope.get("query_string", b""),
        )
        entry = self.cache.get(key)
        if entry is not None:
            _HIT.inc()
            status, headers, body = entry
            await send({"type": "http.response.start", "status": status, "headers": list(headers)})
            await send({"type": "http.response.body", "body": body})
            return
        _MISS.inc()
        await self.app(scope, receive, self._recording(send, key))

    def _recording(self, send: Any, key: tuple[Any, ...]) -> Any:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        cache = self.cache
        assert cache is not None

        async def record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and _storable(start, chunks):
                    cache[key] = (start["status"], list(start.get("headers", [])), b"".join(chunks))
            await send(message)

        return record


def _storable(start: dict[str, Any], chunks: list[bytes]) -> bool:
    if start.get("status") != 200 or sum(len(chunk) for chunk in chunks) > MAX_BODY:
        return False
    return not any(name.lower() == b"set-cookie" for name, _ in start.get("headers", []))
