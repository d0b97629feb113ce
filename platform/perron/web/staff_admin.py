"""The commune's people, for its staff: the staff list (``/admin/staff``, administrators
only) and the residents (``/admin/residents``, staff holding ``staff``).

* Staff: invite by e-mail with roles, change roles, remove. Each change is shown on a
  confirmation page first (what will change, "yes" or "go back"), then made and audited.
* Residents: find a person by name or street, register someone on paper, verify residency
  at the town hall, and issue a code sent by post. The letter with the code is the answer to
  the form that issued it: the code is never stored, so it cannot be shown again.

Every page works without JavaScript; a refused form comes back with what was typed, an error
summary and each message next to its field. Everything is read in the commune's scope: an
account of another commune is "not found".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.db.engine import Database
from perron.errors import Invalid
from perron.i18n import format_list, gettext, language_name, lazy, set_language
from perron.identity import residency, roles
from perron.identity.models import Account, AccountKind
from perron.identity.residency import CodeState, code_state
from perron.tenancy.models import LANGUAGES
from perron.tenancy.site import TenantSite
from perron.territory import service as territory
from perron.web.admin_pages import BACK, CONFIRMED, notice
from perron.web.admin_pages import confirm_page as _confirm
from perron.web.admin_pages import form_text as _text
from perron.web.admin_pages import page as _page
from perron.web.admin_pages import see_other as _redirect
from perron.web.auth import current_user, staff_guard

SiteRequest = Request[Any, Any, Any]

ADMIN_GUARDS = [staff_guard(roles.ADMIN)]
STAFF_GUARDS = [staff_guard(roles.STAFF)]
STAFF_BASE = "/admin/staff"
RESIDENTS_BASE = "/admin/residents"

NOTICES = {
    "invited": lazy(
        "The invitation is made. The login service e-mails the person a link to choose a password "
        "and set up an authenticator app; until then they are shown as waiting."
    ),
    "roles-saved": lazy("The roles are saved."),
    "removed": lazy("The staff member is removed: their access ended at once."),
    "unchanged": lazy("Nothing was changed."),
    "registered": lazy("The person is registered, and their residency is verified."),
    "verified": lazy("The residency is verified."),
}

METHODS = {
    "itsme": lazy("with itsme"),
    "code": lazy("with the code sent by post"),
    "town_hall": lazy("at the town hall"),
}

CODE_STATES = {
    CodeState.WAITING: lazy("Waiting to be typed in"),
    CodeState.USED: lazy("Used"),
    CodeState.EXPIRED: lazy("No longer valid (expired, or replaced by a newer code)"),
    CodeState.LOCKED: lazy("Locked after too many wrong tries"),
}


# --- Helpers -------------------------------------------------------------------------------


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _language(request: SiteRequest) -> str:
    language: str = request.scope["state"]["language"]
    return language


def _database(request: SiteRequest) -> Database:
    database: Database = request.app.state.runtime.database
    return database


def _notice(request: SiteRequest) -> str | None:
    return notice(request, NOTICES)


def _list(form: Any, name: str) -> list[str]:
    return [value for value in form.getall(name, []) if isinstance(value, str)]


def _user_id(request: SiteRequest) -> UUID | None:
    user = current_user(request)
    return user.account_id if user else None


def _role_labels(names: Sequence[str], catalogue: Sequence[roles.RoleInfo]) -> list[str]:
    labels = roles.role_labels(names, catalogue)
    return [labels[name] for name in names]


def _roles_text(names: Sequence[str], catalogue: Sequence[roles.RoleInfo]) -> str:
    if not names:
        return gettext("none")
    return format_list(list(roles.role_labels(names, catalogue).values()))


# --- Staff ---------------------------------------------------------------------------------


async def _open_account(session: AsyncSession, account_id: UUID, kind: AccountKind) -> Account:
    """An open account of this commune, of ``kind``; anything else is a missing page."""
    account = await session.scalar(
        select(Account).where(Account.id == account_id, Account.kind == kind, Account.disabled.is_(False))
    )
    if account is None:
        raise NotFoundException()
    return account


async def _staff_account(session: AsyncSession, account_id: UUID) -> Account:
    return await _open_account(session, account_id, AccountKind.STAFF)


def _staff_roles(site: TenantSite) -> list[roles.RoleInfo]:
    return roles.role_catalogue(site.enabled_modules)


async def _staff_page(
    request: SiteRequest,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
) -> Response[bytes]:
    site = _site(request)
    catalogue = _staff_roles(site)
    async with _database(request).session() as session:
        members = await roles.staff_members(session)
    me = _user_id(request)
    rows = [
        {
            "id": member.id,
            "name": member.display_name,
            "email": member.email,
            "roles": _role_labels(sorted(member.roles or []), catalogue),
            "pending": member.subject is None,
            "me": member.id == me,
        }
        for member in members
    ]
    return _page(
        request,
        "perron/admin/staff.html",
        status_code=400 if errors else 200,
        members=rows,
        catalogue=catalogue,
        languages=[(code, language_name(code)) for code in LANGUAGES],
        errors=dict(errors or {}),
        submitted=dict(submitted or {"language": _language(request), "roles": []}),
        notice=_notice(request),
    )


@get(STAFF_BASE, name="admin_staff", guards=ADMIN_GUARDS)
async def staff_list(request: SiteRequest) -> Response[bytes]:
    return await _staff_page(request)


@post(STAFF_BASE, name="admin_staff_invite", guards=ADMIN_GUARDS)
async def staff_invite(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    values: dict[str, Any] = {
        "email": _text(form, "email"),
        "display_name": _text(form, "display_name"),
        "language": _text(form, "language"),
        "roles": _list(form, "roles"),
    }
    confirm = _text(form, "confirm")
    if confirm == BACK:
        return await _staff_page(request, submitted=values)
    try:
        if confirm != CONFIRMED:
            async with _database(request).session() as session:
                invitation = await roles.check_invitation(
                    session,
                    site.id,
                    values["email"],
                    values["display_name"],
                    values["roles"],
                    values["language"],
                )
            catalogue = _staff_roles(site)
            return _confirm(
                request,
                title=gettext("Invite %(name)s?") % {"name": invitation.display_name},
                lines=[
                    gettext("%(name)s (%(email)s) joins the commune's staff.")
                    % {"name": invitation.display_name, "email": invitation.email},
                    gettext("Roles: %(roles)s.") % {"roles": _roles_text(invitation.roles, catalogue)},
                    gettext("Language of their e-mails: %(language)s.")
                    % {"language": language_name(invitation.language)},
                    gettext(
                        "The login service e-mails them a link to choose a password and set up an "
                        "authenticator app on their phone."
                    ),
                ],
                action=STAFF_BASE,
                fields=[
                    ("email", values["email"]),
                    ("display_name", values["display_name"]),
                    ("language", values["language"]),
                    *[("roles", role) for role in values["roles"]],
                ],
                button=gettext("Yes, invite them"),
                cancel=gettext("No, go back to the form"),
            )
        async with _database(request).transaction() as session:
            await roles.invite_staff(
                session, site.id, values["email"], values["display_name"], values["roles"], values["language"]
            )
    except Invalid as error:
        return await _staff_page(request, errors={error.field: error.reason}, submitted=values)
    return _redirect(STAFF_BASE, "invited")


async def _member_page(
    request: SiteRequest,
    account_id: UUID,
    *,
    errors: Mapping[str, str] | None = None,
    chosen: Sequence[str] | None = None,
) -> Response[bytes]:
    site = _site(request)
    catalogue = _staff_roles(site)
    async with _database(request).session() as session:
        account = await _staff_account(session, account_id)
    held = sorted(account.roles or [])
    offered = [info.name for info in catalogue]
    # Roles of a module switched off since are kept on the account: show them too.
    extra = [roles.RoleInfo(name, name, None, False) for name in held if name not in offered]
    return _page(
        request,
        "perron/admin/staff_member.html",
        status_code=400 if errors else 200,
        member=account,
        pending=account.subject is None,
        me=account.id == _user_id(request),
        catalogue=[*catalogue, *extra],
        chosen=list(chosen if chosen is not None else held),
        roles=_role_labels(held, catalogue),
        errors=dict(errors or {}),
        notice=_notice(request),
    )


@get(f"{STAFF_BASE}/{{account_id:uuid}}", name="admin_staff_member", guards=ADMIN_GUARDS)
async def staff_member(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    return await _member_page(request, account_id)


@post(f"{STAFF_BASE}/{{account_id:uuid}}/roles", name="admin_staff_roles", guards=ADMIN_GUARDS)
async def staff_roles(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    form = await request.form()
    wanted = _list(form, "roles")
    confirm = _text(form, "confirm")
    if confirm == BACK:
        return await _member_page(request, account_id, chosen=wanted)
    path = f"{STAFF_BASE}/{account_id}"
    return await _change_roles(request, account_id, wanted, confirm, path, _staff_account)


AccountLoader = Callable[[AsyncSession, UUID], Awaitable[Account]]


async def _change_roles(
    request: SiteRequest, account_id: UUID, wanted: list[str], confirm: str, path: str, load: AccountLoader
) -> Response[bytes]:
    """Change someone's roles (staff or resident), after a confirmation page."""
    catalogue = _staff_roles(_site(request))
    try:
        if confirm != CONFIRMED:
            async with _database(request).session() as session:
                account = await load(session, account_id)
                before, after = await roles.check_roles_change(session, account, wanted)
            if before == after:
                return _redirect(path, "unchanged")
            warning = None
            if account.id == _user_id(request) and roles.ADMIN in before and roles.ADMIN not in after:
                warning = gettext(
                    "You are taking the administrator role from yourself: you will lose this page."
                )
            return _confirm(
                request,
                title=gettext("Change the roles of %(name)s?") % {"name": account.display_name},
                lines=[
                    gettext("Roles now: %(roles)s.") % {"roles": _roles_text(before, catalogue)},
                    gettext("Roles after the change: %(roles)s.") % {"roles": _roles_text(after, catalogue)},
                ],
                action=f"{path}/roles",
                fields=[("roles", role) for role in after] or [("roles", "")],
                button=gettext("Yes, change the roles"),
                cancel=gettext("No, go back"),
                warning=warning,
            )
        async with _database(request).transaction() as session:
            account = await load(session, account_id)
            await roles.set_roles(session, account, wanted)
    except Invalid as error:
        if path.startswith(STAFF_BASE):
            return await _member_page(request, account_id, errors={error.field: error.reason}, chosen=wanted)
        return await _person_page(request, account_id, errors={error.field: error.reason}, chosen=wanted)
    if account.id == _user_id(request) and roles.ADMIN not in (account.roles or []):
        return _redirect("/admin", "roles-saved")
    return _redirect(path, "roles-saved")


@post(f"{STAFF_BASE}/{{account_id:uuid}}/remove", name="admin_staff_remove", guards=ADMIN_GUARDS)
async def staff_remove(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    form = await request.form()
    confirm = _text(form, "confirm")
    path = f"{STAFF_BASE}/{account_id}"
    if confirm == BACK:
        return await _member_page(request, account_id)
    try:
        if confirm != CONFIRMED:
            async with _database(request).session() as session:
                account = await _staff_account(session, account_id)
                await roles.check_removal(session, account)
            return _confirm(
                request,
                title=gettext("Remove %(name)s from the staff?") % {"name": account.display_name},
                lines=[
                    gettext("Their roles are taken away and they are logged out at once."),
                    gettext("They can be invited again later with the same e-mail address."),
                ],
                action=f"{path}/remove",
                fields=[],
                button=gettext("Yes, remove them"),
                cancel=gettext("No, go back"),
            )
        async with _database(request).transaction() as session:
            account = await _staff_account(session, account_id)
            await roles.remove_staff(session, account)
    except Invalid as error:
        return await _member_page(request, account_id, errors={error.field: error.reason})
    return _redirect(STAFF_BASE, "removed")


# --- Residents -----------------------------------------------------------------------------


async def _resident(session: AsyncSession, account_id: UUID) -> Account:
    return await _open_account(session, account_id, AccountKind.CITIZEN)


async def _street_options(session: AsyncSession, site: TenantSite, language: str) -> list[tuple[str, str]]:
    streets = await territory.streets(session)
    return sorted(
        (
            (str(street.id), f"{street.name(language, site.languages)} ({street.postcode})")
            for street in streets
        ),
        key=lambda option: option[1].casefold(),
    )


async def _chosen_street(session: AsyncSession, value: str, field: str) -> territory.StreetInfo:
    try:
        street_id = UUID(value)
    except ValueError:
        raise Invalid(field, gettext("Choose the street from the list.")) from None
    found = (await territory.index(session)).streets.get(street_id)
    if found is None:
        raise Invalid(field, gettext("Choose the street from the list."))
    return found


def _address(account: Account) -> str:
    parts = [
        " ".join(part for part in (account.street, account.house_number) if part),
        account.postcode or "",
    ]
    return ", ".join(part for part in parts if part)


@get(RESIDENTS_BASE, name="admin_residents", guards=STAFF_GUARDS)
async def residents_list(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    name = (request.query_params.get("name") or "").strip()[:200]
    street = (request.query_params.get("street") or "").strip()
    errors: dict[str, str] = {}
    async with _database(request).session() as session:
        options = await _street_options(session, site, _language(request))
        street_id = None
        if street:
            try:
                street_id = (await _chosen_street(session, street, "street")).id
            except Invalid as error:
                errors[error.field] = error.reason
        found, more = (
            ([], False) if errors else await residency.find_residents(session, name=name, street_id=street_id)
        )
    rows = [
        {
            "id": account.id,
            "name": account.display_name,
            "birth_year": account.birth_year,
            "address": _address(account),
            "resident": account.is_resident,
            "method": gettext(METHODS[account.residency_method])
            if account.residency_method in METHODS
            else "",
            "has_login": account.subject is not None,
        }
        for account in found
    ]
    return _page(
        request,
        "perron/admin/residents.html",
        status_code=400 if errors else 200,
        rows=rows,
        more=more,
        limit=residency.SEARCH_LIMIT,
        query={"name": name, "street": street},
        searched=bool(name or street),
        streets=options,
        errors=errors,
        notice=_notice(request),
    )


async def _register_page(
    request: SiteRequest,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
) -> Response[bytes]:
    site = _site(request)
    async with _database(request).session() as session:
        options = await _street_options(session, site, _language(request))
    return _page(
        request,
        "perron/admin/residents_new.html",
        status_code=400 if errors else 200,
        streets=options,
        languages=[(code, language_name(code)) for code in site.languages],
        errors=dict(errors or {}),
        submitted=dict(submitted or {"language": site.default_language}),
    )


@get(f"{RESIDENTS_BASE}/new", name="admin_residents_new", guards=STAFF_GUARDS)
async def residents_new(request: SiteRequest) -> Response[bytes]:
    return await _register_page(request)


@post(f"{RESIDENTS_BASE}/new", name="admin_residents_register", guards=STAFF_GUARDS)
async def residents_register(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    values = {
        name: _text(form, name)
        for name in ("display_name", "birth_year", "street", "house_number", "language", "email")
    }
    try:
        async with _database(request).transaction() as session:
            street = await _chosen_street(session, values["street"], "street")
            account = await residency.register_in_person(
                session,
                site.id,
                display_name=values["display_name"],
                birth_year=values["birth_year"],
                street=street.name(site.default_language, site.languages),
                house_number=values["house_number"],
                postcode=street.postcode,
                language=values["language"],
                email=values["email"] or None,
            )
    except Invalid as error:
        return await _register_page(request, errors={error.field: error.reason}, submitted=values)
    return _redirect(f"{RESIDENTS_BASE}/{account.id}", "registered")


HALL = "hall-"
CODE = "code-"
FORM_FIELDS = {"street", "house_number", "document_seen"}


def _form_errors(prefix: str, error: Invalid) -> dict[str, str]:
    field = error.field if error.field in FORM_FIELDS else "form"
    return {f"{prefix}{field}": error.reason}


async def _person_page(
    request: SiteRequest,
    account_id: UUID,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, str] | None = None,
    chosen: Sequence[str] | None = None,
) -> Response[bytes]:
    site = _site(request)
    language = _language(request)
    user = current_user(request)
    is_admin = bool(user and user.has_role(roles.ADMIN))
    async with _database(request).session() as session:
        account = await _resident(session, account_id)
        options = await _street_options(session, site, language)
        index = await territory.index(session)
        codes = await residency.codes_of(session, account)
    street = index.find_street(account.street or "", account.postcode or "") if account.street else None
    defaults = {"street": str(street.id) if street else "", "house_number": account.house_number or ""}
    values = dict(submitted or {})
    for prefix in (HALL, CODE):
        for name, value in defaults.items():
            values.setdefault(prefix + name, value)
    catalogue = [info for info in _staff_roles(site) if not info.staff_only]
    held = sorted(account.roles or [])
    offered = {info.name for info in catalogue}
    catalogue += [roles.RoleInfo(name, name, None, False) for name in held if name not in offered]
    return _page(
        request,
        "perron/admin/residents_person.html",
        status_code=400 if errors else 200,
        resident=account,
        address=_address(account),
        method=gettext(METHODS[account.residency_method]) if account.residency_method in METHODS else "",
        codes=[
            {
                "id": code.id,
                "created_at": code.created_at,
                "created_by": code.created_by,
                "address": f"{code.street} {code.house_number or ''}, {code.postcode}",
                "expires_at": code.expires_at,
                "state": gettext(CODE_STATES[code_state(code)]),
            }
            for code in codes
        ],
        streets=options,
        submitted=values,
        errors=dict(errors or {}),
        notice=_notice(request),
        is_admin=is_admin,
        catalogue=catalogue,
        chosen=list(chosen if chosen is not None else held),
        roles=_role_labels(held, catalogue),
        lifetime_days=residency.CODE_LIFETIME.days,
    )


@get(f"{RESIDENTS_BASE}/{{account_id:uuid}}", name="admin_resident", guards=STAFF_GUARDS)
async def resident_page(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    return await _person_page(request, account_id)


@post(f"{RESIDENTS_BASE}/{{account_id:uuid}}/town-hall", name="admin_resident_town_hall", guards=STAFF_GUARDS)
async def resident_town_hall(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    form = await request.form()
    values = {HALL + name: _text(form, HALL + name) for name in ("street", "house_number", "document_seen")}
    try:
        async with _database(request).transaction() as session:
            account = await _resident(session, account_id)
            street = await _chosen_street(session, values[HALL + "street"], "street")
            await residency.verify_at_town_hall(
                session,
                account,
                street=street.name(_site(request).default_language),
                house_number=values[HALL + "house_number"],
                postcode=street.postcode,
                document_seen=values[HALL + "document_seen"] == "yes",
            )
    except Invalid as error:
        return await _person_page(request, account_id, errors=_form_errors(HALL, error), submitted=values)
    return _redirect(f"{RESIDENTS_BASE}/{account_id}", "verified")


@post(f"{RESIDENTS_BASE}/{{account_id:uuid}}/codes", name="admin_resident_code", guards=STAFF_GUARDS)
async def resident_code(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    """Issue a code and answer with the letter to print: the one time the code is shown."""
    site = _site(request)
    form = await request.form()
    values = {CODE + name: _text(form, CODE + name) for name in ("street", "house_number")}
    settings = request.app.state.runtime.settings
    try:
        async with _database(request).transaction() as session:
            account = await _resident(session, account_id)
            street = await _chosen_street(session, values[CODE + "street"], "street")
            issued = await residency.issue_code(
                session,
                settings,
                account,
                street=street.name(site.default_language),
                house_number=values[CODE + "house_number"],
                postcode=street.postcode,
            )
    except Invalid as error:
        return await _person_page(request, account_id, errors=_form_errors(CODE, error), submitted=values)
    # The letter speaks the person's language when the commune offers it.
    letter_language = account.language if account.language in site.languages else site.default_language
    request.scope["state"]["language"] = letter_language
    set_language(letter_language)
    record = issued.record
    response = _page(
        request,
        "perron/admin/residents_letter.html",
        resident=account,
        street=street.name(letter_language, site.languages),
        house_number=record.house_number,
        postcode=record.postcode,
        code=issued.display,
        issued_at=record.created_at,
        expires_at=record.expires_at,
        code_url=f"{request.url.scheme}://{request.url.netloc}/account/residency",
        max_tries=residency.MAX_WRONG_TRIES,
        back=f"{RESIDENTS_BASE}/{account.id}",
    )
    response.headers["cache-control"] = "no-store"
    return response


@get(
    f"{RESIDENTS_BASE}/{{account_id:uuid}}/letter/{{code_id:uuid}}",
    name="admin_resident_letter",
    guards=STAFF_GUARDS,
)
async def resident_letter(
    request: SiteRequest, account_id: FromPath[UUID], code_id: FromPath[UUID]
) -> Response[bytes]:
    """A letter already issued: what it said and where it stands, never its code."""
    async with _database(request).session() as session:
        account = await _resident(session, account_id)
        code = await residency.get_code(session, account, code_id)
    if code is None:
        raise NotFoundException()
    state = code_state(code)
    return _page(
        request,
        "perron/admin/residents_code.html",
        resident=account,
        code=code,
        state=gettext(CODE_STATES[state]),
        max_tries=residency.MAX_WRONG_TRIES,
    )


@post(f"{RESIDENTS_BASE}/{{account_id:uuid}}/roles", name="admin_resident_roles", guards=ADMIN_GUARDS)
async def resident_roles(request: SiteRequest, account_id: FromPath[UUID]) -> Response[bytes]:
    form = await request.form()
    wanted = _list(form, "roles")
    confirm = _text(form, "confirm")
    if confirm == BACK:
        return await _person_page(request, account_id, chosen=wanted)
    return await _change_roles(
        request, account_id, wanted, confirm, f"{RESIDENTS_BASE}/{account_id}", _resident
    )


ROUTES = [
    staff_list,
    staff_invite,
    staff_member,
    staff_roles,
    staff_remove,
    residents_list,
    residents_new,
    residents_register,
    resident_page,
    resident_town_hall,
    resident_code,
    resident_letter,
    resident_roles,
]
