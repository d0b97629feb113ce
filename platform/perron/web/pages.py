"""What every page of a commune's site needs in its template context."""

from __future__ import annotations

from typing import Any

from perron.i18n import language_name
from perron.tenancy.site import TenantSite

STATIC_PREFIX = "/static"


def static_url(path: str) -> str:
    return f"{STATIC_PREFIX}/{path.lstrip('/')}"


def site_context(site: TenantSite, language: str, *, path: str = "/") -> dict[str, Any]:
    return {
        "site": site,
        "site_name": site.name(language),
        "language": language,
        "languages": [(code, language_name(code)) for code in site.languages],
        "branding_css": f"/branding.css?v={site.branding.css_version}",
        "static_url": static_url,
        "path": path,
    }
