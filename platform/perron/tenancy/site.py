"""What a request needs to know about its commune, loaded once and cached.

A :class:`TenantSite` is an immutable snapshot: it can be shared by every request to the
commune until a change invalidates it (:mod:`perron.cache`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.tenancy.branding import fingerprint, stylesheet
from perron.tenancy.models import (
    DEFAULT_PALETTE,
    Branding,
    Commune,
    CommuneStatus,
    Domain,
    FontChoice,
    ModuleActivation,
)
from perron.tenancy.settings import CoreSettings, resolve


@dataclass(frozen=True, slots=True)
class SiteBranding:
    palette: Mapping[str, str]
    font: FontChoice
    tagline: Mapping[str, str]
    css: str
    css_version: str

    @classmethod
    def build(cls, palette: Mapping[str, str], font: FontChoice, tagline: Mapping[str, str]) -> SiteBranding:
        css = stylesheet(palette, font)
        return cls(dict(palette), font, dict(tagline), css, fingerprint(css))


DEFAULT_BRANDING = SiteBranding.build(DEFAULT_PALETTE, FontChoice.SYSTEM, {})


@dataclass(frozen=True, slots=True)
class TenantSite:
    id: UUID
    slug: str
    nis_code: str
    status: CommuneStatus
    names: Mapping[str, str]
    languages: tuple[str, ...]
    primary_host: str
    intercommunale_id: UUID | None
    status_notice: Mapping[str, str]
    branding: SiteBranding
    enabled_modules: frozenset[str]
    contact: CoreSettings
    loaded_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def name(self, language: str | None = None) -> str:
        return self.names.get(language or self.default_language) or next(iter(self.names.values()), self.slug)

    def tagline(self, language: str) -> str:
        return self.branding.tagline.get(language, "")

    def notice(self, language: str) -> str:
        return self.status_notice.get(language) or next(iter(self.status_notice.values()), "")


async def load_site(session: AsyncSession, tenant_id: UUID) -> TenantSite | None:
    """Read a commune's snapshot; the caller's scope must allow reading that commune."""
    row = (
        await session.execute(
            select(Commune, Domain.host, Branding)
            .outerjoin(Domain, (Domain.commune_id == Commune.id) & Domain.is_primary.is_(True))
            .outerjoin(Branding, Branding.tenant_id == Commune.id)
            .where(Commune.id == tenant_id)
        )
    ).first()
    if row is None:
        return None
    commune, primary, branding = row
    modules = await session.scalars(
        select(ModuleActivation.module).where(
            ModuleActivation.tenant_id == tenant_id, ModuleActivation.enabled.is_(True)
        )
    )
    site_branding = (
        SiteBranding.build(branding.palette(), branding.font, branding.tagline)
        if branding
        else DEFAULT_BRANDING
    )
    return TenantSite(
        id=commune.id,
        slug=commune.slug,
        nis_code=commune.nis_code,
        status=commune.status,
        names=dict(commune.names),
        languages=tuple(commune.languages),
        primary_host=primary or "",
        intercommunale_id=commune.intercommunale_id,
        status_notice=dict(commune.status_notice or {}),
        branding=site_branding,
        enabled_modules=frozenset(modules),
        contact=await resolve(
            session, tenant_id, "core", CoreSettings, intercommunale_id=commune.intercommunale_id
        ),
    )
