"""Communes as code: ``tenants/<slug>/tenant.toml`` and ``tenants/intercommunales.toml``.

:func:`load_definitions` reads and checks every file before anything is written: unknown
keys, wrong types, malformed slugs, NIS codes or domains, and collisions between files are
all reported at once, each with its file and key. :func:`apply_definitions` then makes the
database match the files in one transaction: a problem found while writing (a domain
already taken by a commune not in the files, a forbidden lifecycle move) rolls everything
back, so a rejected apply leaves the database as it was.

The database stays the source of truth for the lifecycle: ``status`` in a file is used when
the commune is created; later differences are reported, not applied (suspending and
resuming are deliberate acts, done with ``perron tenants suspend|resume``).
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.errors import Invalid, PerronError
from perron.i18n import using_language
from perron.media import MediaStore
from perron.tenancy import actions
from perron.tenancy.branding import (
    BrandingError,
    check_home_sections,
    check_intro,
    check_logo_size,
    prepare_logo,
)
from perron.tenancy.models import Commune, CommuneStatus, Intercommunale
from perron.tenancy.settings import CoreSettings, validate_values
from perron.tenancy.validation import check_domain, check_languages, check_names, check_nis_code, check_slug

TENANT_FILE = "tenant.toml"
INTERCOMMUNALES_FILE = "intercommunales.toml"


class DefinitionError(PerronError):
    """One or more definition files cannot be applied; ``problems`` lists each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_Strict = ConfigDict(extra="forbid", strict=True)
Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")]


def _rule(check: Callable[..., Any], value: Any, *args: Any) -> Any:
    try:
        return check(value, *args)
    except Invalid as error:
        raise ValueError(error.reason) from None


class BrandingDefinition(BaseModel):
    model_config = _Strict

    primary_color: Colour | None = None
    primary_text_color: Colour | None = None
    accent_color: Colour | None = None
    background_color: Colour | None = None
    text_color: Colour | None = None
    font: Literal["system", "humanist", "serif", "rounded"] | None = None
    tagline: dict[str, str] = Field(default_factory=dict)
    intro: dict[str, str] | None = None
    home_sections: list[str] | None = None
    logo: str | None = Field(default=None, description="an image file in the commune's folder")
    _logo_data: bytes | None = PrivateAttr(default=None)

    @field_validator("intro")
    @classmethod
    def _intro(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_intro(value)

    @field_validator("home_sections")
    @classmethod
    def _home_sections(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_home_sections(value)

    def palette(self) -> dict[str, str]:
        keys = ("primary_color", "primary_text_color", "accent_color", "background_color", "text_color")
        return {key: value for key in keys if (value := getattr(self, key)) is not None}

    def read_logo(self, folder: Path) -> str | None:
        """Read and check the logo file named by ``logo``; returns the problem, if any."""
        if self.logo is None:
            return None
        relative = Path(self.logo)
        resolved = (folder / relative).resolve()
        if relative.is_absolute() or not resolved.is_relative_to(folder.resolve()):
            return f"{self.logo!r} must be a file inside the commune's folder, such as 'logo.png'"
        if not resolved.is_file():
            return f"no file {resolved}"
        try:
            with using_language("en"):  # definition problems are reported in English, like the others
                check_logo_size(resolved.stat().st_size, relative.name)
                data = resolved.read_bytes()
                prepare_logo(data, relative.name)
        except BrandingError as error:
            return str(error)
        except OSError as error:
            return f"{resolved} cannot be read ({error.strerror or error})"
        self._logo_data = data
        return None

    @property
    def logo_data(self) -> bytes | None:
        return self._logo_data


class ModuleDefinition(BaseModel):
    model_config = _Strict

    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    demo: bool = False
    """Add the module's demo content when the module is first switched on for the commune."""


class TenantDefinition(BaseModel):
    model_config = _Strict

    slug: str
    nis_code: str
    names: dict[str, str]
    languages: list[str]
    domains: list[str] = Field(min_length=1, description="the first is the primary domain")
    status: Literal["provisioning", "active", "suspended"] = "active"
    intercommunale: str | None = None
    branding: BrandingDefinition = Field(default_factory=BrandingDefinition)
    contact: dict[str, Any] = Field(default_factory=dict)
    modules: dict[str, ModuleDefinition] = Field(default_factory=dict)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        return str(_rule(check_slug, value))

    @field_validator("nis_code")
    @classmethod
    def _nis(cls, value: str) -> str:
        return str(_rule(check_nis_code, value))

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        return list(_rule(check_languages, value))

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        hosts = [str(_rule(check_domain, host)) for host in value]
        if len(set(hosts)) != len(hosts):
            raise ValueError("a domain is listed twice")
        return hosts

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dict(_rule(validate_values, CoreSettings, value))

    def check_names(self) -> None:
        check_names(self.names, self.languages)


class IntercommunaleDefinition(BaseModel):
    model_config = _Strict

    slug: str
    names: dict[str, str]
    contact_email: str | None = None

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        return str(_rule(check_slug, value))


@dataclass
class DefinitionSet:
    intercommunales: list[IntercommunaleDefinition] = field(default_factory=list)
    tenants: list[tuple[Path, TenantDefinition]] = field(default_factory=list)


def _describe(error: ValidationError, source: Path) -> list[str]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "file"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "string_type" and isinstance(item.get("input"), int):
            message = f'must be text: write it in quotes, "{item["input"]}"'
        problems.append(f"{source}: {where}: {message}")
    return problems


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{path}: not valid TOML ({error})")
    except UnicodeDecodeError:
        problems.append(f"{path}: not UTF-8 text")
    return None


def load_definitions(directory: Path, *, installed_modules: frozenset[str] | None = None) -> DefinitionSet:
    """Read every definition under ``directory``; raise :class:`DefinitionError` listing
    every problem found, or return the definitions. Modules named in the files must be
    installed (by default: the modules installed in this environment)."""
    if installed_modules is None:
        from perron.modules.registry import registry  # the module SDK stands on tenancy

        registry.load_installed()
        installed_modules = frozenset(registry.modules)
    problems: list[str] = []
    result = DefinitionSet()
    if not directory.is_dir():
        raise DefinitionError([f"{directory}: no such folder"])
    intercommunales_path = directory / INTERCOMMUNALES_FILE
    if intercommunales_path.exists():
        data = _read_toml(intercommunales_path, problems)
        if data is not None:
            unknown = set(data) - {"intercommunale"}
            problems += [
                f"{intercommunales_path}: {key}: unknown key (expected [[intercommunale]] tables)"
                for key in sorted(unknown)
            ]
            for index, item in enumerate(data.get("intercommunale", [])):
                try:
                    result.intercommunales.append(IntercommunaleDefinition.model_validate(item))
                except ValidationError as error:
                    problems += [
                        problem.replace(": ", f": intercommunale[{index}].", 1)
                        for problem in _describe(error, intercommunales_path)
                    ]
    for folder in sorted(
        path for path in directory.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))
    ):
        path = folder / TENANT_FILE
        if not path.exists():
            problems.append(f"{folder}: has no {TENANT_FILE}")
            continue
        data = _read_toml(path, problems)
        if data is None:
            continue
        try:
            definition = TenantDefinition.model_validate(data)
            definition.check_names()
        except ValidationError as error:
            problems += _describe(error, path)
            continue
        except Invalid as error:
            problems.append(f"{path}: {error.message}")
            continue
        if definition.slug != folder.name:
            problems.append(f"{path}: slug: {definition.slug!r} differs from its folder name {folder.name!r}")
        logo_problem = definition.branding.read_logo(folder)
        if logo_problem:
            problems.append(f"{path}: branding.logo: {logo_problem}")
        for module in definition.modules:
            if module not in installed_modules:
                problems.append(f"{path}: modules.{module}: no module of that name is installed")
        result.tenants.append((path, definition))
    problems += _cross_file_problems(result)
    if problems:
        raise DefinitionError(problems)
    return result


def _cross_file_problems(definitions: DefinitionSet) -> list[str]:
    problems: list[str] = []
    for label, values in (
        ("slug", [(path, tenant.slug) for path, tenant in definitions.tenants]),
        ("nis_code", [(path, tenant.nis_code) for path, tenant in definitions.tenants]),
        ("domains", [(path, host) for path, tenant in definitions.tenants for host in tenant.domains]),
    ):
        counts = Counter(value for _, value in values)
        for value, count in counts.items():
            if count > 1:
                files = ", ".join(str(path) for path, other in values if other == value)
                problems.append(f"{label} {value!r} appears in several definitions: {files}")
    return problems


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class Report:
    name: str
    outcome: Outcome
    changes: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)


async def apply_definitions(
    session: AsyncSession,
    definitions: DefinitionSet,
    *,
    console_host: str | None,
    create_only: bool = False,
    on_progress: Callable[[Report], None] | None = None,
    media: MediaStore | None = None,
) -> list[Report]:
    """Make the database match the definitions, in the caller's transaction (platform scope).
    Logos are stored in ``media``; without it, logos named by the files are left out (and
    the report says so)."""
    reports: list[Report] = []

    def done(report: Report) -> None:
        reports.append(report)
        if on_progress:
            on_progress(report)

    for body in definitions.intercommunales:
        existing = await session.scalar(select(Intercommunale).where(Intercommunale.slug == body.slug))
        if existing is None:
            await actions.create_intercommunale(
                session, slug=body.slug, names=body.names, contact_email=body.contact_email
            )
            done(Report(f"intercommunale {body.slug}", Outcome.CREATED))
        elif create_only:
            done(Report(f"intercommunale {body.slug}", Outcome.UNCHANGED))
        else:
            changed = await actions.update_intercommunale(
                session, existing, names=body.names, contact_email=body.contact_email
            )
            done(Report(f"intercommunale {body.slug}", Outcome.UPDATED if changed else Outcome.UNCHANGED))
    from perron.territory.loader import load_territory  # territory stands on tenancy, not the reverse

    for path, tenant in definitions.tenants:
        try:
            report = await _apply_tenant(
                session, tenant, console_host=console_host, create_only=create_only, media=media
            )
            report.remarks += await load_territory(session, tenant.slug, path.parent)  # create-only
            done(report)
        except PerronError as error:
            raise DefinitionError([f"{path}: {error.message}"]) from None
    return reports


async def _apply_tenant(
    session: AsyncSession,
    tenant: TenantDefinition,
    *,
    console_host: str | None,
    create_only: bool,
    media: MediaStore | None = None,
) -> Report:
    name = f"commune {tenant.slug}"
    commune = await session.scalar(select(Commune).where(Commune.slug == tenant.slug))
    if commune is not None and create_only:
        return Report(name, Outcome.UNCHANGED)
    changes: list[str] = []
    remarks: list[str] = []
    created = commune is None
    if commune is None:
        status = CommuneStatus(tenant.status)
        commune = await actions.create_commune(
            session,
            slug=tenant.slug,
            nis_code=tenant.nis_code,
            names=tenant.names,
            languages=tenant.languages,
            domains=tenant.domains,
            console_host=console_host,
            intercommunale=tenant.intercommunale,
            status=CommuneStatus.PROVISIONING if status is CommuneStatus.SUSPENDED else status,
        )
        if status is CommuneStatus.SUSPENDED:
            await actions.set_status(session, commune, CommuneStatus.ACTIVE)
            await actions.set_status(session, commune, CommuneStatus.SUSPENDED)
        remarks.append(f"answers at {tenant.domains[0]}")
    else:
        if await actions.update_commune(
            session,
            commune,
            names=tenant.names,
            languages=tenant.languages,
            nis_code=tenant.nis_code,
            intercommunale=tenant.intercommunale,
        ):
            changes.append("names, languages or NIS code")
        await _sync_domains(session, commune, tenant.domains, console_host, changes, remarks)
        if commune.status.value != tenant.status:
            remarks.append(
                f"status is {commune.status.value} in the database and {tenant.status} in the file: "
                "kept (use perron tenants suspend/resume)"
            )
    if await actions.update_branding(
        session,
        commune.id,
        palette=tenant.branding.palette(),
        font=tenant.branding.font,
        tagline=tenant.branding.tagline,
        intro=tenant.branding.intro,
        home_sections=tenant.branding.home_sections,
    ):
        changes.append("branding")
    logo = tenant.branding.logo_data
    if logo is not None:
        if media is None:
            remarks.append("logo left out: no media storage was given")
        elif await actions.set_logo(session, commune.id, logo, tenant.branding.logo, media=media):
            changes.append("logo")
    if tenant.contact and await actions.update_commune_settings(session, commune.id, "core", tenant.contact):
        changes.append("contact")
    await session.flush()
    if created:
        return Report(name, Outcome.CREATED, [], remarks)
    return Report(name, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes, remarks)


async def _sync_domains(
    session: AsyncSession,
    commune: Commune,
    hosts: list[str],
    console_host: str | None,
    changes: list[str],
    remarks: list[str],
) -> None:
    current = {domain.host: domain for domain in await actions.commune_domains(session, commune.id)}
    for index, host in enumerate(hosts):
        if host not in current:
            await actions.add_domain(session, commune, host, primary=index == 0, console_host=console_host)
            changes.append(f"domain {host} added")
        elif index == 0 and not current[host].is_primary:
            await actions.set_primary_domain(session, commune, host)
            changes.append(f"domain {host} made primary")
    for host in sorted(set(current) - set(hosts)):
        remarks.append(f"domain {host} is in the database but not in the file: kept")


async def apply_modules(session: AsyncSession, commune_id: UUID, tenant: TenantDefinition) -> list[str]:
    """Switch the commune's modules on or off as its file says, in the commune's own scope
    and transaction: modules' hooks and demo content run where they always run, inside the
    commune (never in the platform scope of :func:`apply_definitions`)."""
    from perron.modules import activation  # the module SDK stands on tenancy, not the reverse

    changes: list[str] = []
    for module, spec in tenant.modules.items():
        if spec.settings and await actions.update_commune_settings(
            session, commune_id, f"module:{module}", spec.settings
        ):
            changes.append(f"module {module} settings")
        if spec.enabled and await activation.enable(session, commune_id, module):
            changes.append(f"module {module} enabled")
            if spec.demo and await activation.seed(session, commune_id, module):
                changes.append(f"module {module} demo content")
        elif not spec.enabled and await activation.disable(session, commune_id, module):
            changes.append(f"module {module} disabled")
    return changes
