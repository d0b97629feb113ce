"""Who may do what: roles in a commune, its staff, and the roles above communes.

* **Commune roles** live on the account (``Account.roles``): the platform's own (``admin``,
  ``staff``, ``moderator``, ``territory.editor``) and those modules declare on their actions
  (``Action(role="news.editor")``). ``admin`` holds every role. ``admin``, ``staff`` and
  ``territory.editor`` are for staff accounts only; a citizen may hold ``moderator`` and
  module roles (a merchant, a community moderator). A commune always keeps one administrator.
* **Staff** are invited by e-mail: the account exists at once (pending), and a job creates
  the person's login in Keycloak's ``staff`` realm, which e-mails them a link to choose a
  password and set up their authenticator app. Removing a staff member closes the account,
  ends its sessions here, and a job ends its Keycloak sessions.
* **Platform roles** (:class:`PlatformRole`): the deployment's operators and intercommunale
  administrators, changed in the platform scope only and kept in the platform's audit log.

Keycloak is reached from jobs only: when it is down, the jobs wait and retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.audit import current_actor
from perron.config import Settings
from perron.db.repository import ensure_owned, ensure_tenant
from perron.db.scope import CrossTenantAccess, current_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.i18n import gettext, lazy
from perron.identity import actions
from perron.identity.jobs import login_settings
from perron.identity.models import Account, AccountKind, PlatformRole, WebSession
from perron.identity.oidc import STAFF as STAFF_REALM
from perron.identity.oidc import client_id_for
from perron.jobs import JobContext, enqueue, job
from perron.logging import get_logger
from perron.modules.registry import Registry, registry
from perron.tenancy.models import LANGUAGES, Commune, Intercommunale

log = get_logger("perron.identity.roles")

ADMIN = "admin"
STAFF = "staff"
MODERATOR = "moderator"
TERRITORY_EDITOR = "territory.editor"

PLATFORM_ROLE_LABELS: dict[str, str] = {
    ADMIN: lazy("Administrator: everything, including the staff list and the modules"),
    STAFF: lazy("Town hall staff: residents, registration on paper, residency"),
    MODERATOR: lazy("Moderator: reviews what people publish"),
    TERRITORY_EDITOR: lazy("Territory: streets, neighbourhoods and zones"),
}
"""The platform's own commune roles, with what they allow (English message ids)."""
STAFF_ONLY = frozenset({ADMIN, STAFF, TERRITORY_EDITOR})
"""Roles only staff accounts may hold (staff pages need a staff login)."""

OPERATOR = "operator"
INTERCOMMUNALE_ADMIN = "intercommunale_admin"

CREATE_STAFF_LOGIN_JOB = "perron.identity.create_staff_login"
END_LOGIN_SESSIONS_JOB = "perron.identity.end_login_sessions"


@dataclass(frozen=True, slots=True)
class RoleInfo:
    name: str
    label: str
    """What the role allows, in the current language."""
    module: str | None
    """The module declaring it; None for the platform's own."""
    staff_only: bool


def module_roles(modules: Registry | None = None) -> dict[str, tuple[str, str]]:
    """Roles the installed modules declare on their actions: ``{role: (module, description)}``
    (the description of the first action needing it)."""
    found: dict[str, tuple[str, str]] = {}
    for manifest in (modules or registry).ordered():
        for action in manifest.actions:
            if action.role and action.role not in PLATFORM_ROLE_LABELS and action.role not in found:
                found[action.role] = (manifest.name, action.description)
    return found


def role_catalogue(enabled_modules: Iterable[str], modules: Registry | None = None) -> list[RoleInfo]:
    """The roles a commune can give: the platform's, then those of its enabled modules."""
    current = modules or registry
    enabled = set(enabled_modules)
    roles = [
        RoleInfo(name, gettext(label), None, name in STAFF_ONLY)
        for name, label in PLATFORM_ROLE_LABELS.items()
    ]
    for name, (module, description) in sorted(module_roles(current).items()):
        if module not in enabled:
            continue
        manifest = current.get(module)
        title = manifest.title(_language()) if manifest else module
        label = f"{title}: {gettext(description)}" if description else title
        roles.append(RoleInfo(name, label, module, False))
    return roles


def _language() -> str:
    from perron.i18n import current_language

    return current_language()


async def _enabled_modules(session: AsyncSession, commune_id: UUID) -> set[str]:
    from perron.modules.activation import enabled_modules

    return await enabled_modules(session, commune_id)


def _clean_roles(roles: Iterable[str]) -> list[str]:
    if isinstance(roles, str):
        roles = [roles]
    return sorted({role.strip() for role in roles if isinstance(role, str) and role.strip()})


async def _check_roles(
    session: AsyncSession, account_kind: AccountKind, commune_id: UUID, wanted: list[str], held: Iterable[str]
) -> None:
    """Every new role must exist (the platform's, or an enabled module's) and suit the account."""
    declared = module_roles()
    enabled: set[str] | None = None
    kept = set(held)
    for role in wanted:
        if role in kept:
            continue  # kept as it was, even if its module was switched off since
        if role not in PLATFORM_ROLE_LABELS and role not in declared:
            raise Invalid("roles", gettext("There is no role “%(role)s”.") % {"role": role[:80]})
        if role in declared:
            if enabled is None:
                enabled = await _enabled_modules(session, commune_id)
            module = declared[role][0]
            if module not in enabled:
                raise Invalid(
                    "roles",
                    gettext("The role “%(role)s” belongs to the module %(module)s, which is switched off.")
                    % {"role": role, "module": module},
                )
        if role in STAFF_ONLY and account_kind is not AccountKind.STAFF:
            raise Invalid(
                "roles",
                gettext("The role “%(role)s” is for staff accounts only.") % {"role": role},
            )


async def _other_admins(session: AsyncSession, account: Account) -> int:
    """Open staff accounts of the commune holding ``admin``, besides ``account``. The rows are
    locked (PostgreSQL) so two admins cannot remove each other at the same moment."""
    rows = await session.scalars(
        select(Account)
        .where(
            Account.kind == AccountKind.STAFF,
            Account.disabled.is_(False),
            Account.id != account.id,
        )
        .with_for_update()
    )
    return sum(1 for row in rows if ADMIN in (row.roles or []))


async def check_roles_change(
    session: AsyncSession, account: Account, roles: Iterable[str]
) -> tuple[list[str], list[str]]:
    """What :func:`set_roles` would change, ``(before, after)``, without changing it; raises
    ``Invalid`` as it would (for a confirmation page)."""
    ensure_owned(account)
    if account.disabled:
        raise Invalid("account", gettext("This account is closed."))
    wanted = _clean_roles(roles)
    before = sorted(account.roles or [])
    await _check_roles(session, account.kind, account.tenant_id, wanted, before)
    if ADMIN in before and ADMIN not in wanted and not await _other_admins(session, account):
        raise Invalid(
            "roles",
            gettext("%(name)s is the commune's last administrator: give the role to someone else first.")
            % {"name": account.display_name},
        )
    return before, wanted


async def set_roles(
    session: AsyncSession, account: Account, roles: Iterable[str], *, reason: str | None = None
) -> bool:
    """Give ``account`` exactly ``roles`` in its commune; returns whether anything changed.

    Refuses an unknown role (naming it), a role of a switched-off module, ``admin``/``staff``
    for a citizen, and taking ``admin`` from the commune's last administrator. Audited with
    the roles before and after (and ``reason``, if given)."""
    before, wanted = await check_roles_change(session, account, roles)
    if wanted == before:
        return False
    account.roles = wanted
    changes: dict[str, object] = {"roles": [before, wanted]}
    if reason:
        changes["reason"] = reason[:500]
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="account.roles",
        object_type="account",
        object_id=str(account.id),
        changes=changes,
    )
    return True


# --- Staff ---------------------------------------------------------------------------------


def check_email(email: str) -> str:
    address = (email or "").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address) or len(address) > 254:
        raise Invalid("email", gettext("Write an e-mail address such as name@commune.be."))
    return address


async def staff_members(session: AsyncSession) -> list[Account]:
    """The commune's open staff accounts, by name."""
    rows = await session.scalars(
        select(Account)
        .where(Account.kind == AccountKind.STAFF, Account.disabled.is_(False))
        .order_by(func.lower(Account.display_name), Account.id)
    )
    return list(rows)


@dataclass(frozen=True)
class Invitation:
    """A checked invitation: what :func:`invite_staff` will do."""

    email: str
    display_name: str
    roles: list[str]
    language: str
    again: Account | None
    """The person's former (closed) staff account, opened again."""


async def check_invitation(
    session: AsyncSession,
    commune_id: UUID,
    email: str,
    display_name: str,
    roles: Iterable[str],
    language: str,
) -> Invitation:
    """Check an invitation without making it; raises ``Invalid`` as :func:`invite_staff` would."""
    ensure_tenant(commune_id)
    address = check_email(email)
    name = " ".join((display_name or "").split())
    if not name:
        raise Invalid("display_name", gettext("Write the person's first and last name."))
    if len(name) > 200:
        raise Invalid("display_name", gettext("A name has at most 200 characters."))
    if language not in LANGUAGES:
        raise Invalid("language", gettext("Choose one of the languages offered."))
    wanted = _clean_roles(roles)
    if not wanted:
        raise Invalid("roles", gettext("Choose at least one role."))
    existing = await session.scalar(
        select(Account).where(Account.kind == AccountKind.STAFF, Account.email == address)
    )
    if existing is not None and not existing.disabled:
        raise Invalid("email", gettext("%(email)s is already on the commune's staff.") % {"email": address})
    await _check_roles(session, AccountKind.STAFF, commune_id, wanted, ())
    return Invitation(address, name, wanted, language, existing)


async def invite_staff(
    session: AsyncSession,
    commune_id: UUID,
    email: str,
    display_name: str,
    roles: Iterable[str],
    language: str,
) -> Account:
    """Add a staff member: a pending staff account now, their Keycloak login by a job (which
    stores its id as the account's subject). The same e-mail twice in a commune is refused; a
    person removed earlier is invited again on their former account."""
    invitation = await check_invitation(session, commune_id, email, display_name, roles, language)
    if invitation.again is None:
        account = await actions.create_account(
            session,
            commune_id,
            display_name=invitation.display_name,
            kind=AccountKind.STAFF,
            email=invitation.email,
            language=invitation.language,
        )
    else:
        account = invitation.again
        account.disabled = False
        account.display_name = invitation.display_name
        account.language = invitation.language
    account.roles = invitation.roles
    audit.record(
        session,
        tenant_id=commune_id,
        action="staff.invite",
        object_type="account",
        object_id=str(account.id),
        changes={"email": invitation.email, "roles": invitation.roles, "again": invitation.again is not None},
    )
    if account.subject is None:
        enqueue(session, CREATE_STAFF_LOGIN_JOB, tenant_id=commune_id, account_id=str(account.id))
    return account


async def check_removal(session: AsyncSession, account: Account) -> None:
    """Raise ``Invalid`` if :func:`remove_staff` would refuse (for a confirmation page)."""
    ensure_owned(account)
    if account.kind is not AccountKind.STAFF:
        raise Invalid("account", gettext("This is not a staff account."))
    if account.disabled:
        raise Invalid("account", gettext("This account is closed."))
    if current_actor().person_id == account.id:
        raise Invalid("account", gettext("You cannot remove yourself: ask another administrator."))
    if ADMIN in (account.roles or []) and not await _other_admins(session, account):
        raise Invalid(
            "account",
            gettext("%(name)s is the commune's last administrator: give the role to someone else first.")
            % {"name": account.display_name},
        )


async def remove_staff(session: AsyncSession, account: Account) -> None:
    """Close a staff member's access: roles taken away, account disabled, sessions ended here
    and (by a job) at Keycloak. Refuses one's own account and the last administrator."""
    await check_removal(session, account)
    before = sorted(account.roles or [])
    account.disabled = True
    account.roles = []
    await session.execute(delete(WebSession).where(WebSession.account_id == account.id))
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="staff.remove",
        object_type="account",
        object_id=str(account.id),
        changes={"roles": [before, []], "disabled": [False, True]},
    )
    if account.subject is not None:
        enqueue(
            session,
            END_LOGIN_SESSIONS_JOB,
            tenant_id=account.tenant_id,
            realm="staff",
            subject=account.subject,
        )


def _split_name(name: str) -> tuple[str, str]:
    """``Anne-Marie Van den Berg`` → (``Anne-Marie``, ``Van den Berg``) for Keycloak."""
    first, _, last = name.strip().partition(" ")
    return first, last.strip() or first


@job(CREATE_STAFF_LOGIN_JOB, max_retries=12, min_backoff_ms=5_000)
async def create_staff_login(ctx: JobContext, *, account_id: str) -> None:
    """Create an invited staff member's Keycloak login and link it to their account
    (idempotent: a login that already exists for the address is linked instead)."""
    from perron.identity import keycloak

    settings = login_settings(CREATE_STAFF_LOGIN_JOB)
    if settings is None:
        return
    account = await ctx.session.scalar(select(Account).where(Account.id == UUID(account_id)))
    if account is None or account.disabled or account.subject is not None or not account.email:
        log.info("identity.staff_login_not_needed", account=account_id)
        return
    slug = await ctx.session.scalar(select(Commune.slug).where(Commune.id == account.tenant_id))
    first, last = _split_name(account.display_name)
    language = account.language if account.language in keycloak.LANGUAGES else "fr"
    try:
        subject = await keycloak.create_staff_user(
            settings,
            account.email,
            first,
            last,
            language,
            client_id=client_id_for(slug) if slug else None,
        )
    except Conflict:
        subject = await _existing_staff_login(settings, account.email)
    taken = await ctx.session.scalar(
        select(Account.id).where(Account.subject == subject, Account.id != account.id)
    )
    if taken is not None:
        raise Conflict(f"the staff login {subject} already belongs to another account of this commune")
    account.subject = subject
    audit.record(
        ctx.session,
        tenant_id=account.tenant_id,
        action="staff.login_created",
        object_type="account",
        object_id=str(account.id),
        changes={"subject": subject},
    )
    log.info("identity.staff_login_created", account=account_id)


async def _existing_staff_login(settings: Settings, email: str) -> str:
    from perron.identity import keycloak

    async with keycloak.connected(settings, STAFF_REALM) as kc:
        users = await kc.a_get_users({"email": email, "exact": True})
    if not users:
        raise keycloak.KeycloakUnavailable(
            f"Keycloak said {email} exists but did not find it; trying again later"
        )
    return str(users[0]["id"])


@job(END_LOGIN_SESSIONS_JOB, max_retries=12, min_backoff_ms=5_000)
async def end_login_sessions(ctx: JobContext, *, realm: str, subject: str) -> None:
    """End every Keycloak session of a login (after its account here was closed)."""
    from perron.identity import keycloak

    settings = login_settings(END_LOGIN_SESSIONS_JOB)
    if settings is None:
        return
    try:
        await keycloak.logout_user(settings, realm, subject)
    except NotFound:
        log.info("identity.login_gone", realm=realm)


# --- Platform roles ------------------------------------------------------------------------


def _require_platform_scope() -> None:
    scope = current_scope()
    if scope is None or not scope.is_platform:
        raise CrossTenantAccess("platform roles are changed in the platform scope only")


async def _grant(
    session: AsyncSession, role: str, email: str, display_name: str, intercommunale_id: UUID | None
) -> PlatformRole:
    _require_platform_scope()
    address = check_email(email)
    name = " ".join((display_name or "").split())
    if not name:
        raise Invalid("display_name", gettext("Write the person's first and last name."))
    if len(name) > 200:
        raise Invalid("display_name", gettext("A name has at most 200 characters."))
    query = select(PlatformRole.id).where(PlatformRole.role == role, PlatformRole.email == address)
    if intercommunale_id is None:
        query = query.where(PlatformRole.intercommunale_id.is_(None))
    else:
        query = query.where(PlatformRole.intercommunale_id == intercommunale_id)
    if await session.scalar(query) is not None:
        raise Conflict(f"{address} already holds this role")
    granted = PlatformRole(role=role, email=address, display_name=name, intercommunale_id=intercommunale_id)
    session.add(granted)
    await session.flush()
    audit.record_platform(
        session,
        action="platform_role.grant",
        object_type="platform_role",
        object_id=str(granted.id),
        intercommunale_id=intercommunale_id,
        changes={"role": role, "email": address, "display_name": name},
    )
    return granted


async def grant_operator(session: AsyncSession, email: str, display_name: str) -> PlatformRole:
    """Make a person (by their staff login's e-mail) an operator of the deployment."""
    return await _grant(session, OPERATOR, email, display_name, None)


async def grant_intercommunale_admin(
    session: AsyncSession, intercommunale_id: UUID, email: str, display_name: str
) -> PlatformRole:
    """Make a person an administrator of an intercommunale (its member communes only)."""
    _require_platform_scope()
    if await session.scalar(select(Intercommunale.id).where(Intercommunale.id == intercommunale_id)) is None:
        raise NotFound(f"there is no intercommunale {intercommunale_id}")
    return await _grant(session, INTERCOMMUNALE_ADMIN, email, display_name, intercommunale_id)


async def revoke_platform_role(session: AsyncSession, role_id: UUID) -> None:
    """Take a platform role away; the deployment always keeps one operator."""
    _require_platform_scope()
    granted = await session.get(PlatformRole, role_id)
    if granted is None:
        raise NotFound(f"there is no platform role {role_id}")
    if granted.role == OPERATOR:
        operators = await session.scalar(
            select(func.count()).select_from(PlatformRole).where(PlatformRole.role == OPERATOR)
        )
        if (operators or 0) <= 1:
            raise Conflict(f"{granted.email} is the last operator: make someone else an operator first")
    await session.delete(granted)
    audit.record_platform(
        session,
        action="platform_role.revoke",
        object_type="platform_role",
        object_id=str(granted.id),
        intercommunale_id=granted.intercommunale_id,
        changes={"role": granted.role, "email": granted.email},
    )


async def platform_roles(session: AsyncSession, *, email: str | None = None) -> list[PlatformRole]:
    """The platform roles held (by one person if ``email`` is given)."""
    _require_platform_scope()
    query = select(PlatformRole).order_by(PlatformRole.role, PlatformRole.email)
    if email is not None:
        query = query.where(PlatformRole.email == email.strip().lower())
    return list(await session.scalars(query))


def role_labels(names: Iterable[str], catalogue: Iterable[RoleInfo]) -> Mapping[str, str]:
    """Labels for role names (an unknown one, from a module since removed, shows its name)."""
    known = {info.name: info.label for info in catalogue}
    return {name: known.get(name, name) for name in names}
