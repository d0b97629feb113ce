"""What an intercommunale decides for all its member communes: which modules new members get,
and module settings every member inherits (and may override, unless the intercommunale locks
the value). Before a change of settings is saved, :func:`preview` says which communes it
affects and how.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.console.models import IntercommunaleModule
from perron.errors import Invalid
from perron.i18n import gettext
from perron.modules.registry import registry
from perron.tenancy import actions
from perron.tenancy.models import Commune, Intercommunale, IntercommunaleSettings
from perron.tenancy.settings import Layers, merge, read_layers, validate_values


async def module_defaults(session: AsyncSession, body: Intercommunale) -> dict[str, bool]:
    rows = await session.execute(
        select(IntercommunaleModule.module, IntercommunaleModule.default_on).where(
            IntercommunaleModule.intercommunale_id == body.id
        )
    )
    return dict(rows.tuples().all())


async def set_module_defaults(session: AsyncSession, body: Intercommunale, chosen: set[str]) -> list[str]:
    """Which installed modules new members get (``chosen``); returns what changed."""
    unknown = sorted(chosen - set(registry.modules))
    if unknown:
        raise Invalid("modules", gettext("There is no module %(module)s.") % {"module": unknown[0]})
    current = await module_defaults(session, body)
    changed = []
    for name in sorted(registry.modules):
        wanted = name in chosen
        if current.get(name, False) == wanted:
            continue
        row = await session.get(IntercommunaleModule, (body.id, name))
        if row is None:
            session.add(IntercommunaleModule(intercommunale_id=body.id, module=name, default_on=wanted))
        else:
            row.default_on = wanted
        changed.append(name)
    if changed:
        audit.record_platform(
            session,
            action="intercommunale.module_defaults",
            object_type="intercommunale",
            object_id=body.slug,
            intercommunale_id=body.id,
            changes={name: [name not in chosen, name in chosen] for name in changed},
        )
    return changed


@dataclass(frozen=True, slots=True)
class Effect:
    """What a change does to one member commune's effective value of one setting."""

    commune: Commune
    setting: str
    before: Any
    after: Any
    overridden: bool
    """The commune had set its own value, which the lock now replaces."""


@dataclass(frozen=True, slots=True)
class Preview:
    effects: list[Effect]
    keep_their_own: list[tuple[Commune, str]]
    """Communes whose own value of a changed setting stays (not locked)."""
    members: int

    @property
    def affected_communes(self) -> list[Commune]:
        seen: dict[Any, Commune] = {}
        for effect in self.effects:
            seen.setdefault(effect.commune.id, effect.commune)
        return list(seen.values())


def check_change(
    module: str, values: Mapping[str, Any], locked: list[str]
) -> tuple[type[BaseModel], dict[str, Any], list[str]]:
    if module not in registry.modules or registry.settings_schema(module) is None:
        raise Invalid("module", gettext("This module has no settings."))
    schema = registry.settings_schema(module)
    clean = validate_values(schema, dict(values))
    missing = sorted(set(locked) - set(clean))
    if missing:
        raise Invalid(missing[0], gettext("To stop communes changing a setting, give it a value first."))
    return schema, clean, sorted(set(locked))


async def preview(
    session: AsyncSession, body: Intercommunale, module: str, values: Mapping[str, Any], locked: list[str]
) -> Preview:
    """Which member communes the change affects, setting by setting (nothing is saved)."""
    schema, clean, lock = check_change(module, values, locked)
    namespace = f"module:{module}"
    members = list(
        await session.scalars(
            select(Commune).where(Commune.intercommunale_id == body.id).order_by(Commune.slug)
        )
    )
    effects: list[Effect] = []
    keep: list[tuple[Commune, str]] = []
    for commune in members:
        layers = await read_layers(session, commune.id, namespace, intercommunale_id=body.id)
        before = merge(schema, layers, namespace=namespace).model_dump(mode="json")
        proposed = Layers(layers.platform, dict(clean), frozenset(lock), layers.commune)
        after = merge(schema, proposed, namespace=namespace).model_dump(mode="json")
        for setting in schema.model_fields:
            if before[setting] != after[setting]:
                effects.append(
                    Effect(commune, setting, before[setting], after[setting], setting in layers.commune)
                )
            elif (
                setting in layers.commune
                and setting not in lock
                and (layers.intercommunale.get(setting) != clean.get(setting))
            ):
                keep.append((commune, setting))
    return Preview(effects, keep, len(members))


async def apply(
    session: AsyncSession, body: Intercommunale, module: str, values: Mapping[str, Any], locked: list[str]
) -> bool:
    """Save the intercommunale's settings of a module (audited; members' caches refreshed)."""
    _, clean, lock = check_change(module, values, locked)
    return await actions.update_intercommunale_settings(session, body, f"module:{module}", clean, lock)


async def current(
    session: AsyncSession, body: Intercommunale, module: str
) -> tuple[dict[str, Any], list[str]]:
    row = await session.get(IntercommunaleSettings, (body.id, f"module:{module}"))
    return (dict(row.values), list(row.locked)) if row else ({}, [])
