"""A commune's logo, app icons and web-app manifest: what lets a citizen see the commune's
colours in a browser tab and install its site on a phone's home screen.

Every URL a page links to carries a version (``?v=``, from :class:`perron.tenancy.site.
SiteBranding`) that changes with the content, and is then cached for a year; the same path
without the current version is cached for a few minutes only. Icons are drawn on first
request (from the logo, or the commune's initial) and kept per process, keyed by that
version, so a change of colours or logo gives new icons at once.

None of these responses sets a cookie, and the dispatcher serves them even while the
commune is suspended, so its notice still shows the commune's logo.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any
from uuid import UUID

from cachetools import LRUCache
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException

from perron.logging import get_logger
from perron.media import MediaStore
from perron.tenancy.branding import IconKind, icon_media_type, render_icon
from perron.tenancy.site import TenantSite
from perron.web.pages import READ_ONLY

log = get_logger("perron.web.brand")

SiteRequest = Request[Any, Any, Any]

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
MANIFEST_TYPE = "application/manifest+json"

_icons: LRUCache[tuple[UUID, str, IconKind], bytes] = LRUCache(maxsize=512)
"""Drawn icons, by commune, icon version and kind (a few KB each)."""


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _media(request: SiteRequest) -> MediaStore:
    return MediaStore.for_settings(request.app.state.runtime.settings)


def _matches(request: SiteRequest, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    return header.strip() == "*" or etag in (candidate.strip() for candidate in header.split(","))


def _versioned(request: SiteRequest, version: str, body: bytes, media_type: str) -> Response[bytes]:
    """A response cached for a year when asked for with the current version, briefly otherwise;
    answers 304 to a browser that already holds this version."""
    etag = f'"{version}"'
    current = request.query_params.get("v") == version
    headers = {"cache-control": IMMUTABLE if current else SHORT, "etag": etag}
    if _matches(request, etag):
        return Response(b"", status_code=304, headers=headers, media_type=media_type)
    return Response(body, media_type=media_type, headers=headers)


@get("/logo", name="brand_logo", opt=READ_ONLY)
async def logo(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    stored = site.branding.logo
    if stored is None:
        raise NotFoundException()
    if _matches(request, f'"{stored.version}"'):
        return _versioned(request, stored.version, b"", stored.media_type)
    try:
        data = await asyncio.to_thread(_media(request).read, stored.name)
    except FileNotFoundError:
        log.warning("media.missing", name=stored.name, commune=site.slug)
        raise NotFoundException() from None
    return _versioned(request, stored.version, data, stored.media_type)


async def _icon(request: SiteRequest, kind: IconKind) -> Response[bytes]:
    site = _site(request)
    branding = site.branding
    version = branding.icon_version
    key = (site.id, version, kind)
    body = _icons.get(key)
    if body is None:
        logo_data: bytes | None = None
        keep = True
        if branding.logo is not None:
            try:
                logo_data = await asyncio.to_thread(_media(request).read, branding.logo.name)
            except FileNotFoundError:
                log.warning("media.missing", name=branding.logo.name, commune=site.slug)
                keep = False  # drawn from the initial this time; try the logo again next time
        body = await asyncio.to_thread(
            render_icon, kind, branding.palette, letter=branding.letter, logo=logo_data
        )
        if keep:
            _icons[key] = body
    return _versioned(request, version, body, icon_media_type(kind))


@get("/icons/icon-192.png", name="brand_icon_192", opt=READ_ONLY)
async def icon_192(request: SiteRequest) -> Response[bytes]:
    return await _icon(request, IconKind.ICON_192)


@get("/icons/icon-512.png", name="brand_icon_512", opt=READ_ONLY)
async def icon_512(request: SiteRequest) -> Response[bytes]:
    return await _icon(request, IconKind.ICON_512)


@get(
    ["/apple-touch-icon.png", "/apple-touch-icon-precomposed.png"],
    name="brand_apple_touch_icon",
    opt=READ_ONLY,
)
async def apple_touch_icon(request: SiteRequest) -> Response[bytes]:
    """iPhones look for it at this address even when no page names it."""
    return await _icon(request, IconKind.APPLE_TOUCH)


@get("/favicon.ico", name="brand_favicon", opt=READ_ONLY)
async def favicon(request: SiteRequest) -> Response[bytes]:
    return await _icon(request, IconKind.FAVICON)


def manifest_for(site: TenantSite, language: str) -> dict[str, Any]:
    """The web-app manifest of a commune's site, in one of its languages."""
    branding = site.branding
    name = site.name(language)
    manifest: dict[str, Any] = {
        "id": "/",
        "name": name,
        "short_name": name,
        "lang": language,
        "dir": "ltr",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": branding.theme_color,
        "background_color": branding.palette["background_color"],
        "categories": ["government"],
        "icons": [
            {
                "src": branding.icon_192_url,
                "sizes": "192x192",
                "type": "image/png",
                "purpose": "any maskable",
            },
            {
                "src": branding.icon_512_url,
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "any maskable",
            },
        ],
    }
    description = site.tagline(language)
    if description:
        manifest["description"] = description
    return manifest


@get("/manifest.webmanifest", name="web_app_manifest", opt=READ_ONLY)
async def manifest(request: SiteRequest) -> Response[bytes]:
    """In the visitor's language. Browsers fetch a manifest without cookies, so pages link
    it with ``?lang=`` to get the language the visitor reads the site in."""
    site = _site(request)
    body = json.dumps(manifest_for(site, request.scope["state"]["language"]), ensure_ascii=False).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
    headers = {"cache-control": "no-cache", "etag": etag, "vary": "Accept-Language, Cookie"}
    if _matches(request, etag):
        return Response(b"", status_code=304, headers=headers, media_type=MANIFEST_TYPE)
    return Response(body, media_type=MANIFEST_TYPE, headers=headers)


ROUTES = [logo, icon_192, icon_512, apple_touch_icon, favicon, manifest]
"""The route handlers, for the commune site's application."""
