"""What a request needs to know about its commune, loaded once and cached.

A :class:`TenantSite` is an immutable snapshot: it can be shared by every request to the
commune until a change invalidates it (:mod:`perron.cache`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import clock
from perron.tenancy.branding import fingerprint, icon_version, monogram, stylesheet
from perron.tenancy.models import (
    DEFAULT_PALETTE,
    HOME_SECTIONS,
    Branding,
    Commune,
    CommuneStatus,
    Domain,
    FontChoice,
    ModuleActivation,
)
from perron.tenancy.settings import CoreSettings, resolve


@dataclass(frozen=True, slots=True)
class SiteLogo:
    """The commune's stored logo (see :mod:`perron.media`)."""

    name: str
    media_type: str
    width: int
    height: int
    version: str


@dataclass(frozen=True, slots=True)
class SiteBranding:
    """Everything a theme needs to dress a commune's pages, as data. URLs carry a version
    (``?v=``) that changes with the content, so browsers may keep each one for a year."""

    palette: Mapping[str, str]
    font: FontChoice
    tagline: Mapping[str, str]
    css: str
    css_version: str
    intro: Mapping[str, str] = field(default_factory=dict)
    home_sections: tuple[str, ...] = HOME_SECTIONS
    logo: SiteLogo | None = None
    letter: str = ""
    """The commune's initial, drawn on its icons when it has no logo."""
    icon_version: str = ""
    logo_url: str | None = None
    icon_192_url: str = "/icons/icon-192.png"
    icon_512_url: str = "/icons/icon-512.png"
    apple_touch_icon_url: str = "/apple-touch-icon.png"
    favicon_url: str = "/favicon.ico"
    manifest_url: str = "/manifest.webmanifest"
    theme_color: str = DEFAULT_PALETTE["primary_color"]
    """The colour browsers give their bar around the site (the main colour)."""

    @classmethod
    def build(
        cls,
        palette: Mapping[str, str],
        font: FontChoice,
        tagline: Mapping[str, str],
        *,
        intro: Mapping[str, str] | None = None,
        home_sections: Iterable[str] = HOME_SECTIONS,
        logo: SiteLogo | None = None,
        letter: str = "",
    ) -> SiteBranding:
        css = stylesheet(palette, font)
        icons = icon_version(palette, letter, logo.version if logo else None)
        return cls(
            palette=dict(palette),
            font=font,
            tagline=dict(tagline),
            css=css,
            css_version=fingerprint(css),
            intro=dict(intro or {}),
            home_sections=tuple(home_sections),
            logo=logo,
            letter=letter,
            icon_version=icons,
            logo_url=f"/logo?v={logo.version}" if logo else None,
            icon_192_url=f"/icons/icon-192.png?v={icons}",
            icon_512_url=f"/icons/icon-512.png?v={icons}",
            apple_touch_icon_url=f"/apple-touch-icon.png?v={icons}",
            favicon_url=f"/favicon.ico?v={icons}",
            theme_color=palette["primary_color"],
        )

    @classmethod
    def from_row(cls, branding: Branding, commune_name: str) -> SiteBranding:
        logo = None
        if branding.logo_name and branding.logo_media_type and branding.logo_version:
            logo = SiteLogo(
                branding.logo_name,
                branding.logo_media_type,
                branding.logo_width or 0,
                branding.logo_height or 0,
                branding.logo_version,
            )
        return cls.build(
            branding.palette(),
            branding.font,
            branding.tagline or {},
            intro=branding.intro or {},
            home_sections=branding.home_sections or HOME_SECTIONS,
            logo=logo,
            letter=monogram(commune_name),
        )

    def intro_text(self, language: str) -> str:
        """The home page's introduction in ``language`` ("" when none was written in it)."""
        return self.intro.get(language, "")

    def shows(self, section: str) -> bool:
        return section in self.home_sections


DEFAULT_BRANDING = SiteBranding.build(DEFAULT_PALETTE, FontChoice.SYSTEM, {})


@dataclass(frozen=True, slots=True)
class PaidAccess:
    """Until when the commune's citizens may use a billable module (see
    :mod:`perron.billing.entitlements`): ``until`` is a moment in seconds since the epoch,
    None for no end in sight; ``reason`` says why (``active``, ``payment_failed``, ...)."""

    until: float | None
    reason: str

    def open_at(self, now: float) -> bool:
        return self.until is None or now < self.until


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
    paid_access: Mapping[str, PaidAccess] = field(default_factory=dict)
    """Billable modules switched on here and until when citizens may use them; empty when
    billing is off or none of the enabled modules is billable."""
    loaded_at: float = field(default_factory=time.monotonic, compare=False)

    def open_modules(self, now: float | None = None) -> frozenset[str]:
        """The enabled modules citizens may use now: all of them, unless billing closed some
        (their staff pages still work). Compared with the clock at each call, so a grace
        period ends on time without the snapshot being reloaded."""
        if not self.paid_access:
            return self.enabled_modules
        moment = clock.now() if now is None else now
        closed = {name for name, access in self.paid_access.items() if not access.open_at(moment)}
        return self.enabled_modules - closed if closed else self.enabled_modules

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def name(self, language: str | None = None) -> str:
        return self.names.get(language or self.default_language) or next(iter(self.names.values()), self.slug)

    def tagline(self, language: str) -> str:
        return self.branding.tagline.get(language, "")

    def notice(self, language: str) -> str:
        return self.status_notice.get(language) or next(iter(self.status_notice.values()), "")


async def load_site(session: AsyncSession, tenant_id: UUID, *, billing: bool = False) -> TenantSite | None:
    """Read a commune's snapshot; the caller's scope must allow reading that commune. With
    ``billing``, the snapshot says until when citizens may use each billable module."""
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
    enabled = frozenset(modules)
    access: Mapping[str, PaidAccess] = {}
    if billing and enabled:
        from perron.billing.entitlements import paid_access

        access = await paid_access(session, tenant_id, enabled)
    site_branding = SiteBranding.from_row(branding, commune.name()) if branding else DEFAULT_BRANDING
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
        enabled_modules=enabled,
        contact=await resolve(
            session, tenant_id, "core", CoreSettings, intercommunale_id=commune.intercommunale_id
        ),
        paid_access=access,
    )
