"""The two legal pages every commune's site has: the accessibility statement (``/accessibility``)
and the privacy notice (``/privacy``).

Both are written from the commune's own data: its name, its contact settings (``core``
namespace: e-mail, phone, address, data protection officer) and its NIS code, which places it
in a region and so names the ombudsman a citizen may turn to. The statement follows the model
of the EU Web Accessibility Directive (Implementing Decision (EU) 2018/1523) that Belgian
public bodies publish: commitment, compliance status, content that is not accessible,
preparation of the statement, feedback and contact, enforcement procedure.

What only the commune knows (other purposes, recipients, retention, content known not to be
accessible, how to ask for an accessible version, its last review) it writes at
``/admin/legal`` (:mod:`perron.tenancy.legal`); both pages show it, escaped, in the page's
language or else in the commune's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from litestar import Request, get
from litestar.response.base import ASGIResponse

from perron.i18n import LANGUAGE_COOKIE, format_date, pick, pick_language
from perron.identity.sessions import SESSION_COOKIE, SESSION_LIFETIME
from perron.mail import paragraphs
from perron.tenancy.legal import CommuneLegalTexts, legal_texts
from perron.tenancy.site import TenantSite
from perron.web.page_cache import PUBLIC_PAGE

SiteRequest = Request[Any, Any, Any]

ASSESSED_ON = dt.date(2026, 11, 22)
"""When the platform's pages and the default theme were last assessed (self-assessment and the
axe-core check of ``tests/a11y``): the date of the statement. Change it at each new assessment."""

LANGUAGE_COOKIE_DAYS = 365
"""How long the language choice is remembered (the cookie set in ``perron.web.asgi``)."""


class Region(StrEnum):
    BRUSSELS = "brussels"
    FLANDERS = "flanders"
    WALLONIA = "wallonia"


def region_of(nis_code: str) -> Region | None:
    """The region of a commune from its NIS code, whose first digits are its province
    (21: Brussels-Capital; 1, 23, 24, 3, 4, 7: Flanders; 25, 5, 6, 8, 9: Wallonia, which
    includes the German-speaking Community's communes). None for a code outside these."""
    code = nis_code.strip()
    if len(code) != 5 or not code.isdigit():
        return None
    if code.startswith("21"):
        return Region.BRUSSELS
    if code[0] in "1347" or code[:2] in ("23", "24"):
        return Region.FLANDERS
    if code[0] in "5689" or code[:2] == "25":
        return Region.WALLONIA
    return None


@dataclass(frozen=True)
class PublicBody:
    """An authority a citizen can turn to; names and addresses in the languages it uses."""

    names: Mapping[str, str]
    addresses: Mapping[str, str]
    phone: str
    websites: Mapping[str, str]
    email: str = ""

    def shown(self, language: str) -> dict[str, str | None]:
        """What a page in ``language`` shows, with the language of the name when it differs."""
        return {
            "name": pick(self.names, language),
            "name_language": pick_language(self.names, language),
            "address": pick(self.addresses, language),
            "address_language": pick_language(self.addresses, language),
            "phone": self.phone,
            "website": pick(self.websites, language),
            "email": self.email,
        }


OMBUDSMEN: Mapping[Region | None, PublicBody] = {
    Region.WALLONIA: PublicBody(
        names={"fr": "Le Médiateur de la Wallonie et de la Fédération Wallonie-Bruxelles"},
        addresses={"fr": "Rue Lucien Namèche 54, 5000 Namur"},
        phone="0800 19 199",
        websites={"fr": "https://www.le-mediateur.be"},
    ),
    Region.FLANDERS: PublicBody(
        names={"nl": "Vlaamse Ombudsdienst"},
        addresses={"nl": "Leuvenseweg 86, 1000 Brussel"},
        phone="1700",
        websites={"nl": "https://www.vlaamseombudsdienst.be"},
    ),
    Region.BRUSSELS: PublicBody(
        names={
            "fr": "Ombuds.brussels",
            "nl": "Ombuds.brussels",
            "de": "Ombuds.brussels",
            "en": "Ombuds.brussels",
        },
        addresses={
            "fr": "Place de la Vieille Halle aux Blés 1, 1000 Bruxelles",
            "nl": "Oud Korenhuis 1, 1000 Brussel",
        },
        phone="02 549 67 00",
        websites={"fr": "https://www.ombuds.brussels"},
    ),
    None: PublicBody(
        names={
            "fr": "Le Médiateur fédéral",
            "nl": "De Federale Ombudsman",
            "de": "Der Föderale Ombudsmann",
            "en": "The Federal Ombudsman",
        },
        addresses={"fr": "Rue Ducale 43, 1000 Bruxelles", "nl": "Hertogsstraat 43, 1000 Brussel"},
        phone="0800 99 961",
        websites={"fr": "https://www.federaalombudsman.be"},
    ),
}
"""Where a complaint about a commune site's accessibility goes when the commune's answer does
not satisfy: the ombudsman of the commune's region; the federal ombudsman otherwise."""

DATA_PROTECTION_AUTHORITY = PublicBody(
    names={
        "fr": "Autorité de protection des données",
        "nl": "Gegevensbeschermingsautoriteit",
        "de": "Datenschutzbehörde",
        "en": "Data Protection Authority",
    },
    addresses={"fr": "Rue de la Presse 35, 1000 Bruxelles", "nl": "Drukpersstraat 35, 1000 Brussel"},
    phone="+32 2 274 48 00",
    websites={
        "fr": "https://www.autoriteprotectiondonnees.be",
        "nl": "https://www.gegevensbeschermingsautoriteit.be",
        "de": "https://www.datenschutzbehorde.be",
        "en": "https://www.dataprotectionauthority.be",
    },
    email="contact@apd-gba.be",
)
"""Belgium's supervisory authority under the GDPR, where any complaint about personal data goes."""


def _page(request: SiteRequest, template: str, **context: Any) -> ASGIResponse:
    from perron.web.site import page  # the site application imports this module's routes

    return page(request, template, **context)


def _state(request: SiteRequest) -> tuple[TenantSite, str]:
    state = request.scope["state"]
    return state["site"], state["language"]


async def _commune_texts(request: SiteRequest, site: TenantSite) -> dict[str, Any]:
    """What the commune added to the page (``/admin/legal``), per field in the page's language
    (else in the commune's languages), as plain text the template escapes. Every change to
    them refreshes the commune's snapshot, so the page cache never serves stale texts."""
    async with request.app.state.runtime.database.session() as session:
        texts: CommuneLegalTexts = await legal_texts(session, site.id)
    return {"commune_texts": texts, "paragraphs": paragraphs}


@get("/accessibility", name="accessibility_statement", opt=PUBLIC_PAGE)
async def accessibility_statement(request: SiteRequest) -> ASGIResponse:
    site, language = _state(request)
    texts = await _commune_texts(request, site)
    reviewed_on = texts["commune_texts"].reviewed_on
    return _page(
        request,
        "perron/accessibility.html",
        assessed_on=format_date(ASSESSED_ON, "long", language=language),
        reviewed_on=format_date(reviewed_on, "long", language=language) if reviewed_on else "",
        ombudsman=OMBUDSMEN[region_of(site.nis_code)].shown(language),
        **texts,
    )


@get("/privacy", name="privacy_notice", opt=PUBLIC_PAGE)
async def privacy_notice(request: SiteRequest) -> ASGIResponse:
    site, language = _state(request)
    csrf = request.app.csrf_config
    return _page(
        request,
        "perron/privacy.html",
        **await _commune_texts(request, site),
        authority=DATA_PROTECTION_AUTHORITY.shown(language),
        cookies={
            "session": SESSION_COOKIE,
            "session_hours": int(SESSION_LIFETIME.total_seconds() // 3600),
            "csrf": csrf.cookie_name if csrf else "",
            "language": LANGUAGE_COOKIE,
            "language_days": LANGUAGE_COOKIE_DAYS,
        },
    )


ROUTES = [accessibility_statement, privacy_notice]
