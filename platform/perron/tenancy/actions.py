"""Every change to communes, their domains, branding, modules and settings.

Each action validates its input before touching anything, makes the change in the caller's
transaction, records who did it in the audit log, and invalidates the caches that the
change makes stale (after commit). The caller commits; a rejected input raises before any
change, so nothing is half-written.

Actions on a commune run either in that commune's scope (its admins) or in the platform
scope (operators, intercommunales, ``perron`` commands).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.billing.jobs import membership_changed as billing_membership_changed
from perron.cache import invalidate
from perron.db.repository import ensure_tenant
from perron.db.scope import tenant_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.i18n import gettext
from perron.identity.jobs import commune_login_changed
from perron.media import MediaStore
from perron.sentinels import NOT_GIVEN, NotGiven
from perron.tenancy.branding import (
    BrandingError,
    check_home_sections,
    check_intro,
    check_tagline,
    prepare_logo,
    validate_palette,
)
from perron.tenancy.models import (
    DEFAULT_PALETTE,
    HOME_SECTIONS,
    STATUS_TRANSITIONS,
    Branding,
    Commune,
    CommuneSettings,
    CommuneStatus,
    Domain,
    FontChoice,
    Intercommunale,
    IntercommunaleSettings,
    ModuleActivation,
)
from perron.tenancy.settings import NAMESPACES, read_layers, validate_values
from perron.tenancy.validation import check_domain, check_languages, check_names, check_nis_code, check_slug

# Lookups ------------------------------------------------------------------------------


async def get_commune(session: AsyncSession, slug: str) -> Commune:
    commune = await session.scalar(select(Commune).where(Commune.slug == slug))
    if commune is None:
        raise NotFound(f"no commune has the slug {slug!r}")
    ensure_tenant(commune.id)
    return commune


async def get_intercommunale(session: AsyncSession, slug: str) -> Intercommunale:
    found = await session.scalar(select(Intercommunale).where(Intercommunale.slug == slug))
    if found is None:
        raise NotFound(f"no intercommunale has the slug {slug!r}")
    return found


async def communes_with_primary_host(
    session: AsyncSession, status: CommuneStatus | None = None
) -> list[tuple[Commune, str]]:
    """Communes (of one status, or all) with their primary domain, by slug, in one query."""
    query = (
        select(Commune, Domain.host)
        .outerjoin(Domain, (Domain.commune_id == Commune.id) & Domain.is_primary.is_(True))
        .order_by(Commune.slug)
    )
    if status is not None:
        query = query.where(Commune.status == status)
    return [(commune, host or "") for commune, host in (await session.execute(query)).tuples()]


async def commune_domains(session: AsyncSession, commune_id: UUID) -> list[Domain]:
    rows = await session.scalars(
        select(Domain).where(Domain.commune_id == commune_id).order_by(Domain.is_primary.desc(), Domain.host)
    )
    return list(rows)


# Intercommunales ----------------------------------------------------------------------


async def create_intercommunale(
    session: AsyncSession, *, slug: str, names: Mapping[str, str], contact_email: str | None = None
) -> Intercommunale:
    check_slug(slug)
    clean_names = check_names(names, [next(iter(names), "fr")] if names else ["fr"])
    if await session.scalar(select(Intercommunale.id).where(Intercommunale.slug == slug)):
        raise Conflict(f"an intercommunale already has the slug {slug!r}")
    body = Intercommunale(slug=slug, names=clean_names, contact_email=contact_email)
    session.add(body)
    await session.flush()
    audit.record_platform(
        session,
        action="intercommunale.create",
        object_type="intercommunale",
        object_id=slug,
        intercommunale_id=body.id,
        changes={"names": [None, clean_names]},
    )
    return body


async def update_intercommunale(
    session: AsyncSession,
    body: Intercommunale,
    *,
    names: Mapping[str, str] | None = None,
    contact_email: str | None = None,
) -> bool:
    new_names = check_names(names, list(names) or ["fr"]) if names is not None else dict(body.names)
    new_email = contact_email if contact_email is not None else body.contact_email
    changes = audit.diff(
        {"names": dict(body.names), "contact_email": body.contact_email},
        {"names": new_names, "contact_email": new_email},
    )
    if not changes:
        return False
    body.names, body.contact_email = new_names, new_email
    audit.record_platform(
        session,
        action="intercommunale.update",
        object_type="intercommunale",
        object_id=body.slug,
        intercommunale_id=body.id,
        changes=changes,
    )
    return True


# Communes -----------------------------------------------------------------------------


async def create_commune(
    session: AsyncSession,
    *,
    slug: str,
    nis_code: str,
    names: Mapping[str, str],
    languages: list[str],
    domains: list[str],
    console_host: str | None = None,
    intercommunale: str | None = None,
    status: CommuneStatus = CommuneStatus.PROVISIONING,
) -> Commune:
    """Create a commune with its primary domain (the first of ``domains``) and aliases."""
    check_slug(slug)
    nis_code = check_nis_code(nis_code)
    languages = check_languages(languages)
    clean_names = check_names(names, languages)
    if not domains:
        raise Invalid("domains", "a commune needs at least one domain")
    hosts = [check_domain(host, f"domains[{index}]") for index, host in enumerate(domains)]
    if len(set(hosts)) != len(hosts):
        raise Invalid("domains", "a domain is listed twice")
    if status not in {CommuneStatus.PROVISIONING, CommuneStatus.ACTIVE}:
        raise Invalid("status", "a new commune starts as provisioning or active")
    body = await get_intercommunale(session, intercommunale) if intercommunale else None

    if await session.scalar(select(Commune.id).where(Commune.slug == slug)):
        raise Conflict(f"a commune already has the slug {slug!r}")
    holder = await session.scalar(select(Commune.slug).where(Commune.nis_code == nis_code))
    if holder:
        raise Conflict(f"NIS code {nis_code} already belongs to commune {holder!r}")
    for host in hosts:
        await _check_host_free(session, host, console_host)

    commune = Commune(
        slug=slug,
        nis_code=nis_code,
        names=clean_names,
        languages=languages,
        status=status,
        intercommunale_id=body.id if body else None,
    )
    session.add(commune)
    await session.flush()
    for index, host in enumerate(hosts):
        session.add(Domain(host=host, commune_id=commune.id, is_primary=index == 0))
    session.add(Branding(tenant_id=commune.id))
    audit.record(
        session,
        tenant_id=commune.id,
        action="commune.create",
        object_type="commune",
        object_id=slug,
        changes=audit.diff(
            {},
            {
                "nis_code": nis_code,
                "names": clean_names,
                "languages": languages,
                "domains": hosts,
                "status": status,
                "intercommunale": intercommunale,
            },
        ),
    )
    invalidate(session, commune.id, hosts=True)
    commune_login_changed(session, commune.id)
    if body is not None:
        billing_membership_changed(session, commune.id)
    await session.flush()
    return commune


async def update_commune(
    session: AsyncSession,
    commune: Commune,
    *,
    names: Mapping[str, str] | None = None,
    languages: list[str] | None = None,
    nis_code: str | None = None,
    intercommunale: str | NotGiven | None = NOT_GIVEN,
) -> bool:
    """Change what identifies a commune; returns whether anything changed."""
    ensure_tenant(commune.id)
    new_languages = check_languages(languages) if languages is not None else list(commune.languages)
    new_names = check_names(names if names is not None else commune.names, new_languages)
    new_nis = check_nis_code(nis_code) if nis_code is not None else commune.nis_code
    if new_nis != commune.nis_code:
        holder = await session.scalar(select(Commune.slug).where(Commune.nis_code == new_nis))
        if holder:
            raise Conflict(f"NIS code {new_nis} already belongs to commune {holder!r}")
    new_body_id = commune.intercommunale_id
    if intercommunale is not NOT_GIVEN:
        new_body_id = (await get_intercommunale(session, intercommunale)).id if intercommunale else None
    before = {
        "names": dict(commune.names),
        "languages": list(commune.languages),
        "nis_code": commune.nis_code,
        "intercommunale_id": commune.intercommunale_id,
    }
    after = {
        "names": new_names,
        "languages": new_languages,
        "nis_code": new_nis,
        "intercommunale_id": new_body_id,
    }
    changes = audit.diff(before, after)
    if not changes:
        return False
    commune.names, commune.languages, commune.nis_code = new_names, new_languages, new_nis
    if commune.intercommunale_id != new_body_id:
        billing_membership_changed(session, commune.id)
    commune.intercommunale_id = new_body_id
    audit.record(
        session,
        tenant_id=commune.id,
        action="commune.update",
        object_type="commune",
        object_id=commune.slug,
        changes=changes,
    )
    invalidate(session, commune.id)
    commune_login_changed(session, commune.id)
    return True


async def set_status(
    session: AsyncSession, commune: Commune, status: CommuneStatus, *, notice: Mapping[str, str] | None = None
) -> bool:
    """Move a commune along its lifecycle; returns whether it moved."""
    ensure_tenant(commune.id)
    if status == commune.status and notice is None:
        return False
    if status != commune.status and status not in STATUS_TRANSITIONS[commune.status]:
        allowed = ", ".join(sorted(STATUS_TRANSITIONS[commune.status])) or "nothing (archived is final)"
        raise Conflict(
            f"commune {commune.slug!r} is {commune.status}; it can move to {allowed}, not {status}"
        )
    clean_notice = dict(commune.status_notice or {})
    if notice is not None:
        clean_notice = check_names(
            {lang: text for lang, text in notice.items() if text and text.strip()}, [], field="notice"
        )
    if status != CommuneStatus.SUSPENDED:
        clean_notice = {}
    changes = audit.diff(
        {"status": commune.status, "status_notice": commune.status_notice or {}},
        {"status": status, "status_notice": clean_notice},
    )
    if not changes:
        return False
    commune.status = status
    commune.status_notice = clean_notice
    audit.record(
        session,
        tenant_id=commune.id,
        action=f"commune.{_status_verb(status)}",
        object_type="commune",
        object_id=commune.slug,
        changes=changes,
    )
    invalidate(session, commune.id)
    commune_login_changed(session, commune.id)
    return True


def _status_verb(status: CommuneStatus) -> str:
    return {
        CommuneStatus.ACTIVE: "activate",
        CommuneStatus.SUSPENDED: "suspend",
        CommuneStatus.ARCHIVED: "archive",
        CommuneStatus.PROVISIONING: "provision",
    }[status]


# Domains ------------------------------------------------------------------------------


class DomainTaken(Conflict):
    """The host already answers for another commune (``owner``, its slug) or is the
    console's own host (``owner`` is None). The message names the owner, for operators and
    the command line; a commune's admin console says only that the address is taken."""

    def __init__(self, host: str, owner: str | None) -> None:
        super().__init__(
            f"{host} is the platform console's own host"
            if owner is None
            else f"{host} is already a domain of commune {owner!r}"
        )
        self.host = host
        self.owner = owner


async def _check_host_free(
    session: AsyncSession, host: str, console_host: str | None, commune_id: UUID | None = None
) -> None:
    if console_host and host == console_host:
        raise DomainTaken(host, None)
    owner = await session.execute(
        select(Commune.slug, Commune.id)
        .join(Domain, Domain.commune_id == Commune.id)
        .where(Domain.host == host)
    )
    row = owner.first()
    if row is not None and row.id != commune_id:
        # Naming the other commune is fine for operators and the command line; a commune's
        # admin pages catch DomainTaken and say only that the address is taken.
        raise DomainTaken(host, row.slug)


async def add_domain(
    session: AsyncSession,
    commune: Commune,
    host: str,
    *,
    primary: bool = False,
    console_host: str | None = None,
) -> Domain | None:
    """Add a domain (an alias unless ``primary``); returns None if the commune already had it."""
    ensure_tenant(commune.id)
    host = check_domain(host)
    await _check_host_free(session, host, console_host, commune.id)
    domains = await commune_domains(session, commune.id)
    existing = next((domain for domain in domains if domain.host == host), None)
    if existing is not None:
        if primary and not existing.is_primary:
            await set_primary_domain(session, commune, host)
        return None
    if primary:
        for domain in domains:
            domain.is_primary = False
        await session.flush()
    domain = Domain(host=host, commune_id=commune.id, is_primary=primary or not domains)
    session.add(domain)
    audit.record(
        session,
        tenant_id=commune.id,
        action="domain.add",
        object_type="domain",
        object_id=host,
        changes={"host": [None, host], "is_primary": [None, domain.is_primary]},
    )
    invalidate(session, commune.id, hosts=True)
    commune_login_changed(session, commune.id)
    await session.flush()
    return domain


async def set_primary_domain(session: AsyncSession, commune: Commune, host: str) -> bool:
    ensure_tenant(commune.id)
    host = check_domain(host)
    domains = await commune_domains(session, commune.id)
    target = next((domain for domain in domains if domain.host == host), None)
    if target is None:
        raise NotFound(f"{host} is not a domain of commune {commune.slug!r}")
    if target.is_primary:
        return False
    previous = next((domain.host for domain in domains if domain.is_primary), None)
    for domain in domains:
        domain.is_primary = False
    await session.flush()
    target.is_primary = True
    audit.record(
        session,
        tenant_id=commune.id,
        action="domain.make_primary",
        object_type="domain",
        object_id=host,
        changes={"primary": [previous, host]},
    )
    invalidate(session, commune.id, hosts=True)
    commune_login_changed(session, commune.id)
    await session.flush()
    return True


async def remove_domain(session: AsyncSession, commune: Commune, host: str) -> None:
    ensure_tenant(commune.id)
    host = check_domain(host)
    domains = await commune_domains(session, commune.id)
    target = next((domain for domain in domains if domain.host == host), None)
    if target is None:
        raise NotFound(f"{host} is not a domain of commune {commune.slug!r}")
    if target.is_primary:
        raise Conflict(f"{host} is the primary domain of {commune.slug!r}; make another domain primary first")
    await session.delete(target)
    audit.record(
        session,
        tenant_id=commune.id,
        action="domain.remove",
        object_type="domain",
        object_id=host,
        changes={"host": [host, None]},
    )
    invalidate(session, commune.id, hosts=True)
    commune_login_changed(session, commune.id)
    await session.flush()


# Branding, modules, settings --------------------------------------------------------


async def _branding_of(session: AsyncSession, commune_id: UUID, *, lock: bool = False) -> Branding:
    query = select(Branding).where(Branding.tenant_id == commune_id)
    if lock:  # two uploads at once: one waits for the other (PostgreSQL; SQLite has one writer)
        query = query.with_for_update()
    branding = await session.scalar(query)
    if branding is None:
        branding = Branding(tenant_id=commune_id, **DEFAULT_PALETTE)
        session.add(branding)
    return branding


async def update_branding(
    session: AsyncSession,
    commune_id: UUID,
    *,
    palette: Mapping[str, str] | None = None,
    font: str | None = None,
    tagline: Mapping[str, str] | None = None,
    intro: Mapping[str, str] | None = None,
    home_sections: Sequence[str] | None = None,
) -> bool:
    """Change a commune's colours, font, tagline, home-page introduction or home-page
    sections; a palette failing WCAG AA is refused, naming the failing pairs."""
    ensure_tenant(commune_id)
    branding = await _branding_of(session, commune_id)
    before: dict[str, Any] = {
        **branding.palette(),
        "font": branding.font,
        "tagline": dict(branding.tagline or {}),
        "intro": dict(branding.intro or {}),
        "home_sections": list(branding.home_sections or HOME_SECTIONS),
    }
    try:
        new_palette = validate_palette({**branding.palette(), **(palette or {})})
        new_intro = check_intro(intro) if intro is not None else before["intro"]
        new_tagline = check_tagline(tagline) if tagline is not None else before["tagline"]
        new_sections = (
            check_home_sections(home_sections) if home_sections is not None else before["home_sections"]
        )
    except BrandingError as error:
        raise Invalid(error.field, str(error)) from None
    new_font = branding.font
    if font is not None:
        try:
            new_font = FontChoice(font)
        except ValueError:
            choices = ", ".join(choice.value for choice in FontChoice)
            raise Invalid(
                "font",
                gettext("%(font)r is not offered; choose among %(choices)s.")
                % {"font": font, "choices": choices},
            ) from None
    after: dict[str, Any] = {
        **new_palette,
        "font": new_font,
        "tagline": new_tagline,
        "intro": new_intro,
        "home_sections": new_sections,
    }
    changes = audit.diff(before, after)
    if not changes:
        return False
    for key, value in new_palette.items():
        setattr(branding, key, value)
    branding.font, branding.tagline = new_font, new_tagline
    branding.intro, branding.home_sections = new_intro, new_sections
    audit.record(
        session,
        tenant_id=commune_id,
        action="branding.update",
        object_type="branding",
        object_id=None,
        changes=changes,
    )
    invalidate(session, commune_id)
    commune_login_changed(session, commune_id)
    return True


def _logo_state(branding: Branding) -> dict[str, Any]:
    return {
        "logo": branding.logo_name,
        "logo_size": f"{branding.logo_width}×{branding.logo_height}" if branding.logo_name else None,
    }


async def set_logo(
    session: AsyncSession, commune_id: UUID, data: bytes, filename: str | None = None, *, media: MediaStore
) -> bool:
    """Give a commune a new logo (PNG, JPEG or WebP, at most 2 MB and 4000×4000 pixels).

    The image is checked and re-encoded before anything is stored (no metadata survives);
    a refused file raises :class:`Invalid` naming the problem and changes nothing. Returns
    whether the logo changed (the same image again changes nothing). The previous logo's
    file is deleted once the change is committed."""
    ensure_tenant(commune_id)
    try:
        # Decoding an image is work for a processor, not for the event loop.
        prepared = await asyncio.to_thread(prepare_logo, data, filename)
    except BrandingError as error:
        raise Invalid(error.field, str(error)) from None
    branding = await _branding_of(session, commune_id, lock=True)
    before = _logo_state(branding)
    previous = branding.logo_name
    with tenant_scope(commune_id):  # the commune's own files, whoever acts for it
        name = media.put_for(session, "logo", prepared.data, prepared.media_type)
        if name == previous:
            return False
        if previous:
            media.delete_after_commit(session, previous)
    branding.logo_name, branding.logo_media_type = name, prepared.media_type
    branding.logo_width, branding.logo_height = prepared.width, prepared.height
    branding.logo_version = name.split("/", 1)[1][:16]
    changes = audit.diff(before, _logo_state(branding))
    if filename:
        changes["uploaded_file"] = [None, filename.replace("\\", "/").rsplit("/", 1)[-1][:200]]
    audit.record(
        session,
        tenant_id=commune_id,
        action="branding.logo_set",
        object_type="branding",
        object_id=None,
        changes=changes,
    )
    invalidate(session, commune_id)
    commune_login_changed(session, commune_id)
    return True


async def remove_logo(session: AsyncSession, commune_id: UUID, *, media: MediaStore) -> bool:
    """Take a commune's logo away (its icons show its initial again); returns whether it had one."""
    ensure_tenant(commune_id)
    branding = await _branding_of(session, commune_id, lock=True)
    if not branding.logo_name:
        return False
    before = _logo_state(branding)
    with tenant_scope(commune_id):
        media.delete_after_commit(session, branding.logo_name)
    branding.logo_name = branding.logo_media_type = branding.logo_version = None
    branding.logo_width = branding.logo_height = None
    audit.record(
        session,
        tenant_id=commune_id,
        action="branding.logo_remove",
        object_type="branding",
        object_id=None,
        changes=audit.diff(before, _logo_state(branding)),
    )
    invalidate(session, commune_id)
    commune_login_changed(session, commune_id)
    return True


async def set_module_enabled(session: AsyncSession, commune_id: UUID, module: str, enabled: bool) -> bool:
    ensure_tenant(commune_id)
    activation = await session.get(ModuleActivation, (commune_id, module))
    if activation is not None and activation.enabled == enabled:
        return False
    if activation is None:
        if not enabled:
            return False
        activation = ModuleActivation(tenant_id=commune_id, module=module, enabled=True)
        session.add(activation)
    else:
        activation.enabled = enabled
    audit.record(
        session,
        tenant_id=commune_id,
        action="module.enable" if enabled else "module.disable",
        object_type="module",
        object_id=module,
        changes={"enabled": [not enabled, enabled]},
    )
    invalidate(session, commune_id)
    return True


async def update_commune_settings(
    session: AsyncSession, commune_id: UUID, namespace: str, values: Mapping[str, Any]
) -> bool:
    """Store a commune's own values for a namespace. Known namespaces are validated against
    their schema, and keys the commune's intercommunale locked are refused."""
    ensure_tenant(commune_id)
    schema = NAMESPACES.get(namespace)
    if schema is not None:
        layers = await read_layers(session, commune_id, namespace)
        validate_values(schema, dict(values), locked=layers.locked)
    row = await session.get(CommuneSettings, (commune_id, namespace))
    before = dict(row.values) if row else {}
    after = dict(values)
    changes = audit.diff(before, after)
    if not changes:
        return False
    if row is None:
        session.add(CommuneSettings(tenant_id=commune_id, namespace=namespace, values=after))
    else:
        row.values = after
    audit.record(
        session,
        tenant_id=commune_id,
        action="settings.update",
        object_type="settings",
        object_id=namespace,
        changes=changes,
    )
    invalidate(session, commune_id)
    return True


async def update_intercommunale_settings(
    session: AsyncSession,
    body: Intercommunale,
    namespace: str,
    values: Mapping[str, Any],
    locked: list[str] | None = None,
) -> bool:
    row = await session.get(IntercommunaleSettings, (body.id, namespace))
    new_values = dict(values)
    new_locked = sorted(set(locked or []))
    unknown_locks = set(new_locked) - set(new_values)
    if unknown_locks:
        raise Invalid("locked", f"cannot lock {', '.join(sorted(unknown_locks))}: no value is set for it")
    changes = audit.diff(
        {"values": dict(row.values) if row else {}, "locked": list(row.locked) if row else []},
        {"values": new_values, "locked": new_locked},
    )
    if not changes:
        return False
    if row is None:
        session.add(
            IntercommunaleSettings(
                intercommunale_id=body.id, namespace=namespace, values=new_values, locked=new_locked
            )
        )
    else:
        row.values, row.locked = new_values, new_locked
    audit.record_platform(
        session,
        action="intercommunale.settings",
        object_type="settings",
        object_id=namespace,
        intercommunale_id=body.id,
        changes=changes,
    )
    member_ids = await session.scalars(select(Commune.id).where(Commune.intercommunale_id == body.id))
    for member_id in member_ids:
        invalidate(session, member_id)
    return True


async def count_communes(session: AsyncSession) -> dict[CommuneStatus, int]:
    rows = await session.execute(select(Commune.status, func.count()).group_by(Commune.status))
    return dict(rows.tuples().all())
