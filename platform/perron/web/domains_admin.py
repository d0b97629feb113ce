"""The site's web addresses (``/admin/domains``, administrators): the list (main address
first), adding an address, making one the main address, removing one, and what to ask whoever
manages the domain name, in plain words.

Every change goes through :mod:`perron.tenancy.actions` (audited, caches and login clients
updated). A refusal is explained in the reader's language. An address another commune uses
is refused without saying which commune: the action's message names it for operators, this
page only says that another site of the platform uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from perron.db.engine import Database
from perron.errors import Conflict, NotFound
from perron.i18n import gettext, lazy
from perron.identity import roles
from perron.tenancy import actions
from perron.tenancy.actions import DomainTaken
from perron.tenancy.hosts import InvalidHost, display_host, host_problem, validate_site_domain
from perron.tenancy.models import Commune, Domain
from perron.tenancy.site import TenantSite
from perron.web.admin_pages import BACK, CONFIRMED, confirm_page, form_text, notice, page, see_other
from perron.web.auth import staff_guard

SiteRequest = Request[Any, Any, Any]

BASE = "/admin/domains"
GUARDS = [staff_guard(roles.ADMIN)]
MAX_DOMAINS = 10
"""Addresses a commune's admins may give its site (operators may add more): enough for the
spellings a commune uses, not a way to hold names for later."""

NOTICES = {
    "added": lazy(
        "The address is added. It leads to the site once whoever manages the domain name has made it "
        "point here (see below)."
    ),
    "already": lazy("This address was already one of the site's addresses: nothing changed."),
    "primary": lazy("The main address is changed. Visitors using the other addresses are sent to it."),
    "removed": lazy("The address is removed: it no longer leads to the site."),
    "unchanged": lazy("Nothing was changed."),
}


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _database(request: SiteRequest) -> Database:
    database: Database = request.app.state.runtime.database
    return database


def taken_message(error: DomainTaken) -> str:
    """Never which commune: a commune's admins only learn that the address is not free."""
    if error.owner is None:
        return gettext("This address belongs to the platform itself: choose another.")
    return gettext(
        "This address is already used by another site on this platform. If it really belongs to the "
        "commune, ask the platform's operator."
    )


async def _commune_and_domains(session: AsyncSession, site: TenantSite) -> tuple[Commune, list[Domain]]:
    commune = await actions.get_commune(session, site.slug)
    return commune, await actions.commune_domains(session, commune.id)


async def _domains_page(
    request: SiteRequest,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, str] | None = None,
) -> Response[bytes]:
    site = _site(request)
    async with _database(request).session() as session:
        _, domains = await _commune_and_domains(session, site)
    primary = next((domain.host for domain in domains if domain.is_primary), site.primary_host)
    return page(
        request,
        "perron/admin/domains.html",
        status_code=400 if errors else 200,
        domains=[
            {"host": domain.host, "shown": display_host(domain.host), "primary": domain.is_primary}
            for domain in domains
        ],
        primary=display_host(primary),
        full=len(domains) >= MAX_DOMAINS,
        limit=MAX_DOMAINS,
        errors=dict(errors or {}),
        submitted=dict(submitted or {}),
        notice=notice(request, NOTICES),
    )


@get(BASE, name="admin_domains", guards=GUARDS)
async def domains_page(request: SiteRequest) -> Response[bytes]:
    return await _domains_page(request)


@post(BASE, name="admin_domains_add", guards=GUARDS)
async def domain_add(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    typed = form_text(form, "host")
    submitted = {"host": typed}
    try:
        host = validate_site_domain(typed)
    except InvalidHost as error:
        return await _domains_page(request, errors={"host": host_problem(error)}, submitted=submitted)
    console_host = request.app.state.runtime.settings.console_host
    try:
        async with _database(request).transaction() as session:
            commune, domains = await _commune_and_domains(session, site)
            if host not in {domain.host for domain in domains} and len(domains) >= MAX_DOMAINS:
                return await _domains_page(
                    request,
                    errors={
                        "host": gettext(
                            "The site already has %(limit)s addresses, the most it can have: "
                            "remove one first."
                        )
                        % {"limit": MAX_DOMAINS}
                    },
                    submitted=submitted,
                )
            added = await actions.add_domain(session, commune, host, console_host=console_host)
    except DomainTaken as error:
        return await _domains_page(request, errors={"host": taken_message(error)}, submitted=submitted)
    return see_other(BASE, "added" if added is not None else "already")


def _chosen(form: Mapping[str, Any], domains: list[Domain]) -> Domain | None:
    """The domain a form names, among the commune's own (another's is "not one of ours")."""
    typed = form_text(form, "host")
    try:
        host = validate_site_domain(typed)
    except InvalidHost:
        return None
    return next((domain for domain in domains if domain.host == host), None)


NOT_OURS = lazy("This address is not one of the site's addresses.")


@post(f"{BASE}/primary", name="admin_domains_primary", guards=GUARDS)
async def domain_primary(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    confirm = form_text(form, "confirm")
    if confirm == BACK:
        return see_other(BASE, "unchanged")
    async with _database(request).session() as session:
        commune, domains = await _commune_and_domains(session, site)
    target = _chosen(form, domains)
    if target is None:
        return await _domains_page(request, errors={"domains": gettext(NOT_OURS)})
    if target.is_primary:
        return see_other(BASE, "unchanged")
    shown = display_host(target.host)
    if confirm != CONFIRMED:
        return confirm_page(
            request,
            title=gettext("Make %(host)s the main address?") % {"host": shown},
            lines=[
                gettext("Visitors who use any other address of the site are sent to %(host)s.")
                % {"host": shown},
                gettext("The login pages and the e-mails of the site use %(host)s too.") % {"host": shown},
                gettext("You will need to log in again, at the new address."),
            ],
            warning=gettext(
                "Before you continue, open %(host)s in a new tab of your browser. If you arrive on "
                "this site, the address is ready. If not, the domain name does not point here yet, "
                "and the site could not be reached at its main address."
            )
            % {"host": shown},
            action=f"{BASE}/primary",
            fields=[("host", target.host)],
            button=gettext("Yes, make it the main address"),
            cancel=gettext("No, go back"),
        )
    try:
        async with _database(request).transaction() as session:
            commune = await actions.get_commune(session, site.slug)
            await actions.set_primary_domain(session, commune, target.host)
    except NotFound:
        return await _domains_page(request, errors={"domains": gettext(NOT_OURS)})
    return see_other(BASE, "primary")


@post(f"{BASE}/remove", name="admin_domains_remove", guards=GUARDS)
async def domain_remove(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    confirm = form_text(form, "confirm")
    if confirm == BACK:
        return see_other(BASE, "unchanged")
    async with _database(request).session() as session:
        commune, domains = await _commune_and_domains(session, site)
    target = _chosen(form, domains)
    if target is None:
        return await _domains_page(request, errors={"domains": gettext(NOT_OURS)})
    main_address = gettext(
        "%(host)s is the site's main address: make another address the main one first, then remove it."
    ) % {"host": display_host(target.host)}
    if target.is_primary:
        return await _domains_page(request, errors={"domains": main_address})
    shown = display_host(target.host)
    if confirm != CONFIRMED:
        return confirm_page(
            request,
            title=gettext("Remove the address %(host)s?") % {"host": shown},
            lines=[
                gettext("People who type %(host)s will no longer reach the site.") % {"host": shown},
                gettext("Links and bookmarks that use this address stop working."),
                gettext("You can add the address again later."),
            ],
            action=f"{BASE}/remove",
            fields=[("host", target.host)],
            button=gettext("Yes, remove the address"),
            cancel=gettext("No, keep it"),
        )
    try:
        async with _database(request).transaction() as session:
            commune = await actions.get_commune(session, site.slug)
            await actions.remove_domain(session, commune, target.host)
    except NotFound:
        return await _domains_page(request, errors={"domains": gettext(NOT_OURS)})
    except Conflict:  # it became the main address in the meantime
        return await _domains_page(request, errors={"domains": main_address})
    return see_other(BASE, "removed")


ROUTES = [domains_page, domain_add, domain_primary, domain_remove]
