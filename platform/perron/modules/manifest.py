"""What a module declares about itself: :class:`ModuleManifest`.

A module's package exposes one manifest through the entry-point group ``perron.modules``::

    [project.entry-points."perron.modules"]
    news = "perron_news:manifest"

Everything a module adds to the platform is named here; the platform wires it, per
commune, only where the module is switched on.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from perron.identity.models import Assurance

if TYPE_CHECKING:
    from perron.signals import Signal, SignalContext

NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
RESERVED_NAMES = frozenset(
    {
        "admin",
        "static",
        "media",
        "login",
        "logout",
        "inbox",
        "account",
        "icons",
        "api",
        "core",
        "perron",
        "adoption",
    }
)


@dataclass(frozen=True)
class Action:
    """Something a person does in a module, and what it takes to be allowed."""

    name: str
    assurance: Assurance = Assurance.NONE
    """Level of assurance of the login the action needs (``NONE``: anyone, even logged out)."""
    residency: bool = False
    """Whether only verified residents of the commune may do it."""
    role: str | None = None
    """A staff role (``news.editor``) instead of a citizen's login; ``admin`` holds every role."""
    description: str = ""


@dataclass(frozen=True)
class NavEntry:
    """A link in the commune site's main navigation (or the admin's)."""

    title: str
    """English message id, translated with the module's catalog."""
    path: str = ""
    """Relative to the module's mount point (``""`` is the module's first page)."""


@dataclass(frozen=True)
class WidgetContext:
    tenant_id: UUID
    session: AsyncSession
    language: str
    settings: Any
    """The module's resolved settings for the commune."""


@dataclass(frozen=True)
class Widget:
    """A box on the commune's home page."""

    name: str
    template: str
    """Rendered with what ``load`` returns; an empty dict hides the widget."""
    load: Callable[[WidgetContext], Awaitable[dict[str, Any]]]
    title: str = ""


@dataclass(frozen=True)
class Receiver:
    signal: Signal[Any]
    handler: Callable[[SignalContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class HookContext:
    """What enable/disable hooks and demo seeding get."""

    tenant_id: UUID
    session: AsyncSession
    """The transaction of the change: what a hook writes commits with it."""
    languages: tuple[str, ...]
    settings: Any


@dataclass(frozen=True)
class ModuleManifest:
    name: str
    """Identifier: lower case, digits and ``_``; also the URL prefix (``/news``)."""
    version: str
    platform: str
    """Compatible Perron versions as a PEP 440 specifier, such as ``">=0.1,<0.2"``."""
    titles: Mapping[str, str]
    """Title per language (at least French)."""
    descriptions: Mapping[str, str] = field(default_factory=dict)
    settings: type[BaseModel] | None = None
    """Typed settings: field defaults are the module's defaults; validated on write and read."""
    actions: Sequence[Action] = ()
    routes: Sequence[Any] = ()
    """Citizen routes (Litestar handlers or controllers), mounted at ``/<name>``."""
    admin_routes: Sequence[Any] = ()
    """Staff routes, mounted at ``/admin/<name>``, for staff only."""
    nav: Sequence[NavEntry] = ()
    admin_nav: Sequence[NavEntry] = ()
    templates: Path | None = None
    """Folder holding ``<name>/...`` templates."""
    static: Path | None = None
    """Folder served at ``/static/modules/<name>/``."""
    locale: Path | None = None
    """Catalogs: ``<locale>/<lang>/LC_MESSAGES/<package>.po``."""
    locale_domain: str | None = None
    migrations: Path | None = None
    """The module's own Alembic branch (its first revision has ``branch_labels=(<name>,)``)."""
    jobs: Sequence[Callable[..., Any]] = ()
    """Functions declared with :func:`perron.jobs.job`."""
    receivers: Sequence[Receiver] = ()
    widgets: Sequence[Widget] = ()
    seed: Callable[[HookContext], Awaitable[None]] | None = None
    """Demo content for a new commune (``perron tenants seed`` and the demo communes)."""
    on_enable: Callable[[HookContext], Awaitable[None]] | None = None
    on_disable: Callable[[HookContext], Awaitable[None]] | None = None
    personal_data: Callable[[HookContext, UUID], Awaitable[Mapping[str, Any]]] | None = None
    """What the module holds about one person (their account id), as JSON values, for the
    person's data download; the same data ``account_deleted`` receivers erase."""

    def title(self, language: str) -> str:
        return (
            self.titles.get(language) or self.titles.get("fr") or next(iter(self.titles.values()), self.name)
        )

    def description(self, language: str) -> str:
        return self.descriptions.get(language) or self.descriptions.get("fr") or ""

    def action(self, name: str) -> Action:
        for action in self.actions:
            if action.name == name:
                return action
        raise LookupError(f"module {self.name!r} declares no action {name!r}")

    @property
    def namespace(self) -> str:
        """Where the module's settings live."""
        return f"module:{self.name}"

    @property
    def path(self) -> str:
        return f"/{self.name}"
