"""Bringing a commune on board: the request (a :class:`Spec`), checked step by step, then
handed to the provisioning job (:mod:`perron.console.provisioning`).

An onboarding starts as a draft that the wizard fills in one step at a time; every step is
checked when it is saved, and everything again (against the database as it is then) when the
person launches it. A CSV line becomes an onboarding launched at once. The same checks run in
both cases, so a commune is never half-described.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.console.models import IntercommunaleModule, Onboarding, OnboardingStatus
from perron.errors import Conflict, Invalid
from perron.i18n import gettext
from perron.identity.roles import check_email
from perron.jobs import enqueue
from perron.jobs.status import PlatformJobRun
from perron.modules.registry import registry
from perron.tenancy.branding import BrandingError, prepare_logo, validate_palette
from perron.tenancy.hosts import InvalidHost, host_problem, validate_site_domain
from perron.tenancy.models import DEFAULT_PALETTE, LANGUAGES, Commune, Domain, FontChoice, Intercommunale
from perron.tenancy.validation import (
    RESERVED_SLUGS,
    check_languages,
    check_names,
    check_nis_code,
    check_slug,
)

PROVISION_JOB = "perron.console.provision_commune"
MAX_ADMINS = 5
MAX_ALIASES = 10
MAX_TAGLINE = 160

STEPS = ("commune", "addresses", "branding", "modules", "admins", "review")
"""The wizard's steps, in order (their names are in the URLs)."""


@dataclass(frozen=True, slots=True)
class Admin:
    email: str
    name: str
    language: str


def slug_for(name: str) -> str:
    """A slug from a commune's name: ``La Louvière`` → ``la-louviere``."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:63].strip("-")
    return slug if slug and slug not in RESERVED_SLUGS else f"commune-{slug}".strip("-")[:63]


# Each step's check: the form's values in, the spec's part out, or Invalid naming the field.


def check_commune_step(form: Mapping[str, str]) -> dict[str, Any]:
    languages = [code for code in LANGUAGES if form.get(f"language.{code}")]
    default = form.get("default_language") or (languages[0] if languages else "")
    if default in languages:
        languages.remove(default)
        languages.insert(0, default)
    if not languages:
        raise Invalid("languages", gettext("Choose at least one language for the site."))
    check_languages(languages)
    names = {code: form.get(f"name.{code}", "").strip() for code in LANGUAGES}
    names = {code: name for code, name in names.items() if name}
    missing = [code for code in languages if code not in names]
    if missing:
        raise Invalid(f"name.{missing[0]}", gettext("Write the commune's name in each language of its site."))
    names = check_names(names, languages)
    raw_nis = form.get("nis_code", "").strip()
    if not raw_nis:
        raise Invalid("nis_code", gettext("Write the commune's NIS code (five digits, from Statbel)."))
    nis_code = check_nis_code(raw_nis)
    raw_slug = form.get("slug", "").strip().lower()
    slug = check_slug(raw_slug or slug_for(names[languages[0]]))
    return {"names": names, "languages": languages, "nis_code": nis_code, "slug": slug}


def check_addresses_step(form: Mapping[str, str]) -> dict[str, Any]:
    primary = form.get("primary_domain", "").strip()
    if not primary:
        raise Invalid(
            "primary_domain", gettext("Write the address the site will answer on, such as ciney.be.")
        )
    hosts = [_domain(primary, "primary_domain")]
    aliases = [
        line.strip() for line in form.get("aliases", "").replace(",", "\n").splitlines() if line.strip()
    ]
    if len(aliases) > MAX_ALIASES:
        raise Invalid("aliases", gettext("At most %(count)d other addresses.") % {"count": MAX_ALIASES})
    for alias in aliases:
        hosts.append(_domain(alias, "aliases"))
    if len(set(hosts)) != len(hosts):
        raise Invalid("aliases", gettext("An address is written twice."))
    return {"domains": hosts}


def _domain(value: str, field: str) -> str:
    """A domain the commune's site can answer on, or Invalid saying why in the person's words."""
    try:
        return validate_site_domain(value)
    except InvalidHost as error:
        raise Invalid(field, host_problem(error)) from None


def check_branding_step(form: Mapping[str, str], languages: Sequence[str]) -> dict[str, Any]:
    palette = {key: form.get(key, "").strip() or DEFAULT_PALETTE[key] for key in DEFAULT_PALETTE}
    try:
        palette = validate_palette(palette)
    except BrandingError as error:
        raise Invalid("palette", str(error)) from None
    font = form.get("font", FontChoice.SYSTEM.value)
    if font not in {choice.value for choice in FontChoice}:
        raise Invalid("font", gettext("Choose one of the fonts offered."))
    tagline = {code: form.get(f"tagline.{code}", "").strip() for code in languages}
    tagline = {code: text for code, text in tagline.items() if text}
    for code, text in tagline.items():
        if len(text) > MAX_TAGLINE:
            raise Invalid(
                f"tagline.{code}",
                gettext("A tagline has at most %(count)d characters.") % {"count": MAX_TAGLINE},
            )
    return {"branding": {"palette": palette, "font": font, "tagline": tagline}}


def check_logo(data: bytes, filename: str | None) -> None:
    """Refuse a logo the commune could not use, before it is stored in the draft."""
    try:
        prepare_logo(data, filename)
    except BrandingError as error:
        raise Invalid("logo", str(error)) from None


def check_modules_step(form: Mapping[str, Any], languages: Sequence[str]) -> dict[str, Any]:
    """The modules chosen and their settings (fields named ``<module>.<setting>``)."""
    from perron.modules.forms import parse_form

    chosen: dict[str, dict[str, Any]] = {}
    for manifest in registry.ordered():
        if not form.get(f"module.{manifest.name}"):
            continue
        values: dict[str, Any] = {}
        if manifest.settings is not None:
            prefix = f"{manifest.name}."
            own = {key.removeprefix(prefix): value for key, value in form.items() if key.startswith(prefix)}
            try:
                values = parse_form(registry.settings_schema(manifest.name), own, locked=frozenset())
            except Invalid as error:
                raise Invalid(f"{prefix}{error.field}", error.reason) from None
        chosen[manifest.name] = values
    return {"modules": chosen}


def check_admins_step(form: Mapping[str, str], languages: Sequence[str]) -> dict[str, Any]:
    admins: list[dict[str, str]] = []
    seen: set[str] = set()
    for index in range(1, MAX_ADMINS + 1):
        email = form.get(f"admin{index}.email", "").strip()
        name = " ".join(form.get(f"admin{index}.name", "").split())
        if not email and not name:
            continue
        if not name:
            raise Invalid(f"admin{index}.name", gettext("Write the person's first and last name."))
        if len(name) > 200:
            raise Invalid(f"admin{index}.name", gettext("A name has at most 200 characters."))
        try:
            address = check_email(email)
        except Invalid as error:
            raise Invalid(f"admin{index}.email", error.reason) from None
        if address in seen:
            raise Invalid(f"admin{index}.email", gettext("This address is written twice."))
        seen.add(address)
        language = form.get(f"admin{index}.language") or languages[0]
        if language not in LANGUAGES:
            raise Invalid(f"admin{index}.language", gettext("Choose one of the languages offered."))
        admins.append({"email": address, "name": name, "language": language})
    if not admins:
        raise Invalid("admin1.email", gettext("Invite at least one administrator of the commune."))
    return {"admins": admins}


# Conflicts with what exists --------------------------------------------------------------


async def check_free(
    session: AsyncSession,
    spec: Mapping[str, Any],
    *,
    console_host: str,
    onboarding_id: UUID | None = None,
) -> None:
    """Refuse a slug, NIS code or domain that a commune, or another onboarding under way,
    already has. A commune created by this very onboarding (a re-run) is not a conflict."""
    own_commune = None
    if onboarding_id is not None:
        own_commune = await session.scalar(
            select(Onboarding.commune_id).where(Onboarding.id == onboarding_id)
        )
    if "slug" in spec:
        holder = await session.scalar(select(Commune.id).where(Commune.slug == spec["slug"]))
        if holder is not None and holder != own_commune:
            raise Conflict(
                gettext("A commune already has the short name “%(slug)s”: choose another one.")
                % {"slug": spec["slug"]},
                field="slug",
            )
    if "nis_code" in spec:
        holder = await session.scalar(select(Commune.id).where(Commune.nis_code == spec["nis_code"]))
        if holder is not None and holder != own_commune:
            raise Conflict(
                gettext("NIS code %(code)s already belongs to a commune of the platform.")
                % {"code": spec["nis_code"]},
                field="nis_code",
            )
    for host in spec.get("domains", ()):
        if host == console_host:
            raise Conflict(
                gettext("%(host)s is the console's own address.") % {"host": host}, field="primary_domain"
            )
        holder = await session.scalar(select(Domain.commune_id).where(Domain.host == host))
        if holder is not None and holder != own_commune:
            raise Conflict(
                gettext("%(host)s is already the address of another site on the platform.") % {"host": host},
                field="primary_domain",
            )
    pending = select(Onboarding).where(
        Onboarding.status == OnboardingStatus.QUEUED, Onboarding.commune_id.is_(None)
    )
    if onboarding_id is not None:
        pending = pending.where(Onboarding.id != onboarding_id)
    for other in await session.scalars(pending):
        theirs = other.spec
        if spec.get("slug") and theirs.get("slug") == spec["slug"]:
            raise Conflict(
                gettext("Another onboarding under way uses the short name “%(slug)s”.")
                % {"slug": spec["slug"]},
                field="slug",
            )
        if spec.get("nis_code") and theirs.get("nis_code") == spec["nis_code"]:
            raise Conflict(
                gettext("Another onboarding under way is for NIS code %(code)s.")
                % {"code": spec["nis_code"]},
                field="nis_code",
            )
        shared = set(spec.get("domains", ())) & set(theirs.get("domains", ()))
        if shared:
            raise Conflict(
                gettext("Another onboarding under way uses the address %(host)s.")
                % {"host": sorted(shared)[0]},
                field="primary_domain",
            )


def check_complete(spec: Mapping[str, Any]) -> None:
    """Everything the provisioning needs is there (the wizard's steps were all saved)."""
    for key, step, field in (
        ("names", "commune", "name.fr"),
        ("domains", "addresses", "primary_domain"),
        ("branding", "branding", "palette"),
        ("modules", "modules", "modules"),
        ("admins", "admins", "admin1.email"),
    ):
        if key not in spec:
            raise Invalid(
                field, gettext("The step “%(step)s” is not filled in yet.") % {"step": step_title(step)}
            )
    installed = set(registry.modules)
    missing = sorted(set(spec["modules"]) - installed)
    if missing:
        raise Invalid(
            "modules", gettext("The module %(module)s is not installed any more.") % {"module": missing[0]}
        )


def step_title(step: str) -> str:
    return {
        "commune": gettext("The commune"),
        "addresses": gettext("Addresses"),
        "branding": gettext("Branding"),
        "modules": gettext("Modules"),
        "admins": gettext("Administrators"),
        "review": gettext("Review and create"),
    }[step]


# Drafts and launching --------------------------------------------------------------------


async def default_modules(session: AsyncSession, intercommunale_id: UUID | None) -> dict[str, dict[str, Any]]:
    """The modules a new member of the intercommunale gets unless the wizard says otherwise."""
    if intercommunale_id is None:
        return {}
    rows = await session.scalars(
        select(IntercommunaleModule.module).where(
            IntercommunaleModule.intercommunale_id == intercommunale_id,
            IntercommunaleModule.default_on.is_(True),
        )
    )
    return {name: {} for name in rows if name in registry.modules}


async def new_draft(session: AsyncSession, body: Intercommunale | None, created_by: str) -> Onboarding:
    draft = Onboarding(
        intercommunale_id=body.id if body else None,
        status=OnboardingStatus.DRAFT,
        spec={"intercommunale": body.slug if body else None},
        created_by=created_by,
    )
    session.add(draft)
    await session.flush()
    return draft


def save_step(draft: Onboarding, step: str, values: Mapping[str, Any]) -> None:
    if draft.status is not OnboardingStatus.DRAFT:
        raise Conflict(gettext("This onboarding was already launched; it cannot be changed any more."))
    draft.spec = {**draft.spec, **values}
    draft.step = max(draft.step, STEPS.index(step) + 2)


async def launch(
    session: AsyncSession, onboarding: Onboarding, *, console_host: str, demo: bool = False
) -> UUID:
    """Check the whole request against the database as it is now, then queue the
    provisioning job (in the caller's transaction). Returns the job's id."""
    if onboarding.status not in (OnboardingStatus.DRAFT,):
        raise Conflict(gettext("This onboarding was already launched."))
    spec = dict(onboarding.spec)
    check_complete(spec)
    await check_free(session, spec, console_host=console_host, onboarding_id=onboarding.id)
    spec["demo"] = bool(demo)
    onboarding.spec = spec
    onboarding.status = OnboardingStatus.QUEUED
    job_id = enqueue(session, PROVISION_JOB, tenant_id=None, onboarding_id=str(onboarding.id)).id
    onboarding.job_id = job_id
    audit.record_platform(
        session,
        action="onboarding.launch",
        object_type="onboarding",
        object_id=str(onboarding.id),
        intercommunale_id=onboarding.intercommunale_id,
        changes={"slug": spec.get("slug"), "nis_code": spec.get("nis_code"), "domains": spec.get("domains")},
    )
    return job_id


async def run_again(session: AsyncSession, onboarding: Onboarding) -> UUID:
    """Queue the provisioning again after a failure; every step it already did is kept."""
    if onboarding.status is OnboardingStatus.DONE:
        raise Conflict(gettext("This commune is already on board."))
    if onboarding.status is OnboardingStatus.DRAFT:
        raise Conflict(gettext("This onboarding was not launched yet."))
    onboarding.status = OnboardingStatus.QUEUED
    job_id = enqueue(session, PROVISION_JOB, tenant_id=None, onboarding_id=str(onboarding.id)).id
    onboarding.job_id = job_id
    audit.record_platform(
        session,
        action="onboarding.retry",
        object_type="onboarding",
        object_id=str(onboarding.id),
        intercommunale_id=onboarding.intercommunale_id,
    )
    return job_id


def admins_of(spec: Mapping[str, Any]) -> list[Admin]:
    return [Admin(entry["email"], entry["name"], entry["language"]) for entry in spec.get("admins", ())]


def chosen_languages(spec: Mapping[str, Any]) -> Iterable[str]:
    return spec.get("languages") or ("fr",)


async def job_states(session: AsyncSession, job_ids: list[UUID]) -> dict[UUID, str]:
    """The status of many provisioning jobs, in one query."""
    if not job_ids:
        return {}
    rows = await session.execute(
        select(PlatformJobRun.id, PlatformJobRun.status).where(PlatformJobRun.id.in_(job_ids))
    )
    return {job_id: str(getattr(state, "value", state)) for job_id, state in rows.tuples()}
