"""Settings that resolve platform -> intercommunale -> commune.

A namespace (``core``, or ``module:<name>`` for a module) has a typed schema: a pydantic
model whose field defaults are the platform's built-in values. Each layer may set some keys:

1. the schema's defaults;
2. the operator's platform values (``platform_settings``);
3. the commune's intercommunale's values (``intercommunale_settings``), some of them
   ``locked``;
4. the commune's own values (``commune_settings``), except for locked keys.

The merged values are validated by the schema, so a value that was valid when stored but is
no longer (a schema changed) falls back to the previous layer with a warning rather than
breaking the commune's site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.db.repository import ensure_tenant
from perron.errors import Invalid
from perron.logging import get_logger
from perron.sentinels import NOT_GIVEN, NotGiven
from perron.tenancy.models import Commune, CommuneSettings, IntercommunaleSettings, PlatformSettings

log = get_logger("perron.settings")

S = TypeVar("S", bound=BaseModel)


class CoreSettings(BaseModel):
    """What every commune's site shows about the commune itself."""

    model_config = ConfigDict(extra="forbid")

    contact_email: EmailStr | None = Field(default=None, description="Address citizens write to")
    contact_phone: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=300)
    website: str | None = Field(default=None, max_length=300, description="The commune's main web site")
    opening_hours: str | None = Field(default=None, max_length=500)
    dpo_email: EmailStr | None = Field(
        default=None, description="The data protection officer's address, shown in the privacy notice"
    )
    dpo_name: str | None = Field(
        default=None,
        max_length=200,
        description="Who the data protection officer is (a person or a body, such as the intercommunale)",
    )


NAMESPACES: dict[str, type[BaseModel]] = {"core": CoreSettings}
"""Known namespaces and their schemas; modules add theirs when they are loaded."""


@dataclass(frozen=True)
class Layers:
    platform: dict[str, Any]
    intercommunale: dict[str, Any]
    locked: frozenset[str]
    commune: dict[str, Any]


async def read_layers(
    session: AsyncSession,
    commune_id: UUID,
    namespace: str,
    *,
    intercommunale_id: UUID | NotGiven | None = NOT_GIVEN,
) -> Layers:
    """The stored values of every layer; pass the commune's intercommunale when known."""
    ensure_tenant(commune_id)
    platform = await session.scalar(
        select(PlatformSettings.values).where(PlatformSettings.namespace == namespace)
    )
    body_id = (
        await session.scalar(select(Commune.intercommunale_id).where(Commune.id == commune_id))
        if intercommunale_id is NOT_GIVEN
        else intercommunale_id
    )
    body_values: dict[str, Any] = {}
    locked: frozenset[str] = frozenset()
    if body_id is not None:
        row = await session.get(IntercommunaleSettings, (body_id, namespace))
        if row is not None:
            body_values, locked = dict(row.values), frozenset(row.locked)
    own = await session.scalar(
        select(CommuneSettings.values).where(
            CommuneSettings.tenant_id == commune_id, CommuneSettings.namespace == namespace
        )
    )
    return Layers(dict(platform or {}), body_values, locked, dict(own or {}))


def merge(schema: type[S], layers: Layers, *, namespace: str = "") -> S:
    merged: dict[str, Any] = {}
    commune_values = {key: value for key, value in layers.commune.items() if key not in layers.locked}
    for name, layer in (
        ("platform", layers.platform),
        ("intercommunale", layers.intercommunale),
        ("commune", commune_values),
    ):
        candidate = {**merged, **{key: value for key, value in layer.items() if key in schema.model_fields}}
        try:
            schema.model_validate(candidate)
        except ValidationError as error:
            log.warning("settings.layer_ignored", namespace=namespace, layer=name, errors=error.errors())
            continue
        merged = candidate
    return schema.model_validate(merged)


async def resolve(
    session: AsyncSession,
    commune_id: UUID,
    namespace: str,
    schema: type[S] | None = None,
    *,
    intercommunale_id: UUID | NotGiven | None = NOT_GIVEN,
) -> S:
    """The effective settings of a commune for a namespace."""
    resolved_schema = schema or NAMESPACES.get(namespace)
    if resolved_schema is None:
        raise Invalid("namespace", f"no settings are known under {namespace!r}")
    layers = await read_layers(session, commune_id, namespace, intercommunale_id=intercommunale_id)
    return merge(resolved_schema, layers, namespace=namespace)  # type: ignore[return-value]


def validate_values(
    schema: type[BaseModel], values: dict[str, Any], *, locked: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Check values a commune wants to store; errors name the field, as forms show them."""
    locked_keys = sorted(set(values) & locked)
    if locked_keys:
        raise Invalid(locked_keys[0], "your intercommunale sets this value for all its communes")
    unknown = sorted(set(values) - set(schema.model_fields))
    if unknown:
        raise Invalid(unknown[0], "there is no such setting")
    try:
        schema.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise Invalid(field, first["msg"]) from None
    return values
