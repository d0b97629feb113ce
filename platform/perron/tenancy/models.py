"""The deployment's registry (platform tables) and each commune's configuration (tenant-owned)."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantOwned, Timestamps, new_id, utcnow

LANGUAGES = ("fr", "nl", "de", "en")
"""Languages a commune's site can offer: Belgium's three official languages, and English."""


class CommuneStatus(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"


# Which lifecycle moves are allowed; anything else is refused with the reason.
STATUS_TRANSITIONS: dict[CommuneStatus, frozenset[CommuneStatus]] = {
    CommuneStatus.PROVISIONING: frozenset({CommuneStatus.ACTIVE, CommuneStatus.ARCHIVED}),
    CommuneStatus.ACTIVE: frozenset({CommuneStatus.SUSPENDED, CommuneStatus.ARCHIVED}),
    CommuneStatus.SUSPENDED: frozenset({CommuneStatus.ACTIVE, CommuneStatus.ARCHIVED}),
    CommuneStatus.ARCHIVED: frozenset(),
}


class Intercommunale(Timestamps, Base):
    """A body pooling services for its member communes (BEP, Idelux, ...)."""

    __tablename__ = "intercommunales"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    names: Mapped[dict[str, str]]
    contact_email: Mapped[str | None] = mapped_column(String(254))

    def name(self, language: str) -> str:
        return _pick(self.names, language, self.slug)


class Commune(Timestamps, Base):
    """A commune: the tenant. Its id is the ``tenant_id`` of every row it owns."""

    __tablename__ = "communes"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    nis_code: Mapped[str] = mapped_column(String(5), unique=True, comment="Statbel's 5-digit code")
    names: Mapped[dict[str, str]]
    languages: Mapped[list[str]] = mapped_column(comment="offered languages; the first is the default")
    status: Mapped[CommuneStatus] = mapped_column(
        Enum(
            CommuneStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="commune_status",
            values_callable=lambda members: [member.value for member in members],
        ),
        default=CommuneStatus.PROVISIONING,
    )
    status_notice: Mapped[dict[str, str]] = mapped_column(default=dict)
    """What a suspended site tells visitors, per language."""
    intercommunale_id: Mapped[UUID | None] = mapped_column(ForeignKey("intercommunales.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    """Bumped on every change a site visitor could see; caches compare it."""

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def name(self, language: str | None = None) -> str:
        return _pick(self.names, language or self.default_language, self.slug)


class Domain(Base):
    """A host name a commune's site answers on. Exactly one per commune is primary; the
    others (aliases) redirect to it."""

    __tablename__ = "domains"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    host: Mapped[str] = mapped_column(
        String(253), unique=True, comment="normalised: lower-case IDNA, no port"
    )
    commune_id: Mapped[UUID] = mapped_column(ForeignKey("communes.id", ondelete="CASCADE"), index=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "uq_domains_one_primary_per_commune",
            "commune_id",
            unique=True,
            sqlite_where=text("is_primary"),
            postgresql_where=text("is_primary"),
        ),
    )


class FontChoice(StrEnum):
    """Fonts a commune may choose: system stacks only, so pages load fast and nothing is
    fetched from a third party."""

    SYSTEM = "system"
    HUMANIST = "humanist"
    SERIF = "serif"
    ROUNDED = "rounded"


DEFAULT_PALETTE = {
    "primary_color": "#1f4e79",
    "primary_text_color": "#ffffff",
    "accent_color": "#0b5394",
    "background_color": "#ffffff",
    "text_color": "#1a1a1a",
}


HOME_SECTIONS = ("intro", "services", "widgets", "contact")
"""Sections a commune's home page can show, in their default order: its introduction text,
the services of its modules, the modules' widgets, and how to reach the town hall."""


class Branding(TenantOwned, Base):
    """How a commune's site looks: data only, never templates."""

    __tablename__ = "brandings"

    primary_color: Mapped[str] = mapped_column(String(7), default=DEFAULT_PALETTE["primary_color"])
    primary_text_color: Mapped[str] = mapped_column(String(7), default=DEFAULT_PALETTE["primary_text_color"])
    accent_color: Mapped[str] = mapped_column(String(7), default=DEFAULT_PALETTE["accent_color"])
    background_color: Mapped[str] = mapped_column(String(7), default=DEFAULT_PALETTE["background_color"])
    text_color: Mapped[str] = mapped_column(String(7), default=DEFAULT_PALETTE["text_color"])
    font: Mapped[FontChoice] = mapped_column(
        Enum(
            FontChoice,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="font_choice",
            values_callable=lambda members: [member.value for member in members],
        ),
        default=FontChoice.SYSTEM,
    )
    tagline: Mapped[dict[str, str]] = mapped_column(default=dict)
    intro: Mapped[dict[str, str]] = mapped_column(
        default=dict, server_default=text("'{}'"), comment="home-page introduction, per language"
    )
    home_sections: Mapped[list[str]] = mapped_column(
        default=lambda: list(HOME_SECTIONS),
        server_default=text("'" + json.dumps(list(HOME_SECTIONS)) + "'"),
        comment="what the home page shows, in order",
    )
    logo_name: Mapped[str | None] = mapped_column(String(120), comment="stored name in the commune's media")
    logo_media_type: Mapped[str | None] = mapped_column(String(32))
    logo_width: Mapped[int | None] = mapped_column(Integer)
    logo_height: Mapped[int | None] = mapped_column(Integer)
    logo_version: Mapped[str | None] = mapped_column(String(16), comment="changes with the logo's content")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def palette(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in DEFAULT_PALETTE}


class ModuleActivation(TenantOwned, Base):
    """Whether a module is switched on for a commune."""

    __tablename__ = "module_activations"

    module: Mapped[str] = mapped_column(String(63), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CommuneSettings(TenantOwned, Base):
    """A commune's own values for one settings namespace (``core`` or ``module:<name>``)."""

    __tablename__ = "commune_settings"

    namespace: Mapped[str] = mapped_column(String(80), primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IntercommunaleSettings(Base):
    """Defaults an intercommunale sets for its member communes; ``locked`` keys cannot be
    overridden by a commune."""

    __tablename__ = "intercommunale_settings"

    intercommunale_id: Mapped[UUID] = mapped_column(
        ForeignKey("intercommunales.id", ondelete="CASCADE"), primary_key=True
    )
    namespace: Mapped[str] = mapped_column(String(80), primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    locked: Mapped[list[str]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlatformSettings(Base):
    """The operator's deployment-wide values for one settings namespace."""

    __tablename__ = "platform_settings"

    namespace: Mapped[str] = mapped_column(String(80), primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _pick(names: dict[str, str], language: str, fallback: str) -> str:
    if language in names:
        return names[language]
    return next(iter(names.values()), fallback)
