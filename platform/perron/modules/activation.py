"""Switching a module on or off for a commune, and changing its settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import signals
from perron.errors import Invalid, NotFound
from perron.modules.manifest import HookContext, ModuleManifest
from perron.modules.registry import registry
from perron.tenancy import actions
from perron.tenancy.models import Commune, ModuleActivation
from perron.tenancy.settings import merge, read_layers, resolve


def installed(name: str) -> ModuleManifest:
    manifest = registry.get(name)
    if manifest is None:
        broken = registry.broken.get(name)
        if broken is not None:
            raise Invalid("module", f"module {name!r} is installed but refused: {broken.reason}")
        known = ", ".join(sorted(registry.modules)) or "none"
        raise NotFound(f"no module named {name!r} is installed (installed: {known})")
    return manifest


async def settings_of(session: AsyncSession, commune_id: UUID, name: str) -> Any:
    """A module's effective settings for a commune (platform -> intercommunale -> commune)."""
    installed(name)
    return await resolve(session, commune_id, f"module:{name}", registry.settings_schema(name))


async def _hook_context(session: AsyncSession, commune_id: UUID, name: str) -> HookContext:
    languages = await session.scalar(select(Commune.languages).where(Commune.id == commune_id))
    return HookContext(
        commune_id, session, tuple(languages or ("fr",)), await settings_of(session, commune_id, name)
    )


async def enabled_modules(session: AsyncSession, commune_id: UUID) -> set[str]:
    rows = await session.scalars(
        select(ModuleActivation.module).where(
            ModuleActivation.tenant_id == commune_id, ModuleActivation.enabled.is_(True)
        )
    )
    return set(rows)


async def enable(session: AsyncSession, commune_id: UUID, name: str) -> bool:
    """Switch a module on; its ``on_enable`` hook runs in the same transaction."""
    manifest = installed(name)
    if not await actions.set_module_enabled(session, commune_id, name, True):
        return False
    if manifest.on_enable is not None:
        await manifest.on_enable(await _hook_context(session, commune_id, name))
    signals.module_enabled.send(session, signals.ModuleToggled(name), tenant_id=commune_id)
    return True


async def disable(session: AsyncSession, commune_id: UUID, name: str) -> bool:
    """Switch a module off; its data is kept, its pages, widgets, receivers and jobs stop."""
    manifest = registry.get(name)
    if (
        manifest is not None
        and manifest.on_disable is not None
        and name in await enabled_modules(session, commune_id)
    ):
        await manifest.on_disable(await _hook_context(session, commune_id, name))
    if not await actions.set_module_enabled(session, commune_id, name, False):
        return False
    signals.module_disabled.send(session, signals.ModuleToggled(name), tenant_id=commune_id)
    return True


async def update_settings(
    session: AsyncSession, commune_id: UUID, name: str, values: Mapping[str, Any]
) -> bool:
    """Store a commune's own values for a module (validated; locked keys refused)."""
    installed(name)
    return await actions.update_commune_settings(session, commune_id, f"module:{name}", values)


async def seed(session: AsyncSession, commune_id: UUID, name: str) -> bool:
    """Add a module's demo content to a commune (the module decides what "already there" is)."""
    manifest = installed(name)
    if manifest.seed is None:
        return False
    await manifest.seed(await _hook_context(session, commune_id, name))
    return True


async def settings_layers(
    session: AsyncSession, commune_id: UUID, name: str
) -> tuple[type[BaseModel], Any, dict[str, Any], frozenset[str]]:
    """(schema, effective values, the commune's own values, keys locked by the intercommunale)."""
    installed(name)
    schema = registry.settings_schema(name)
    layers = await read_layers(session, commune_id, f"module:{name}")
    return schema, merge(schema, layers, namespace=f"module:{name}"), layers.commune, layers.locked
