"""A commune's first territory from files: ``tenants/<slug>/territory/``.

* ``streets.csv`` - as :func:`perron.territory.actions.import_streets` reads it;
* ``neighbourhoods.geojson`` - a FeatureCollection, one feature per neighbourhood, with
  ``properties.names`` (per language) and optionally ``properties.streets`` (street names
  listed in it, matched like addresses); the geometry may be null for a neighbourhood made
  of streets only;
* ``zones.geojson`` - a FeatureCollection with ``properties.key`` and ``properties.names``.

Loading only ever creates: a commune whose territory was already edited (version above 0)
is left alone, so applying the demo communes again changes nothing and staff edits are never
overwritten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.errors import Invalid
from perron.i18n import using_language
from perron.tenancy.models import Commune
from perron.territory import actions, service
from perron.territory.geojson import parse_area, read_json
from perron.territory.matching import street_key

FOLDER = "territory"


FILES = ("streets.csv", "neighbourhoods.geojson", "zones.geojson")


def _read(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES if (folder / name).is_file()}


def _features(content: bytes, path: Path) -> list[Mapping[str, Any]]:
    data = read_json(content, str(path))
    features = data.get("features") if isinstance(data, Mapping) else None
    if (
        not isinstance(data, Mapping)
        or data.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        raise Invalid(str(path), "expected a GeoJSON FeatureCollection")
    for index, feature in enumerate(features, start=1):
        if not isinstance(feature, Mapping) or not isinstance(feature.get("properties"), Mapping):
            raise Invalid(f"{path}: feature {index}", "a Feature with properties is expected")
    return features


def _names(properties: Mapping[str, Any], where: str, languages: list[str]) -> dict[str, str]:
    names = properties.get("names")
    if isinstance(names, Mapping):
        return {str(key): str(value) for key, value in names.items()}
    name = properties.get("name")
    if isinstance(name, str):
        return {languages[0]: name}
    raise Invalid(where, 'give properties.names, such as {"fr": "Centre"}')


async def load_folder(session: AsyncSession, commune_id: UUID, folder: Path) -> list[str]:
    """Load ``folder`` into a commune that has no territory yet; returns what was done."""
    if await service.version(session, commune_id=commune_id) > 0:
        return []
    files = await asyncio.to_thread(_read, folder)
    if not files:
        return []
    commune = await session.get(Commune, commune_id)
    assert commune is not None
    languages = list(commune.languages)
    counts = {"streets": 0, "neighbourhoods": 0, "zones": 0}
    streets_file = folder / "streets.csv"
    if "streets.csv" in files:
        try:
            report = await actions.import_streets(session, commune_id, files["streets.csv"])
        except Invalid as error:
            raise Invalid(str(streets_file), error.reason) from None
        counts["streets"] = len(report.created)
    street_ids: dict[str, list[UUID]] = {}
    for street in await service.streets(session, commune_id=commune_id):
        for name in street.names.values():
            street_ids.setdefault(street_key(name), []).append(street.id)

    neighbourhoods_file = folder / "neighbourhoods.geojson"
    if "neighbourhoods.geojson" in files:
        features = _features(files["neighbourhoods.geojson"], neighbourhoods_file)
        for index, feature in enumerate(features, start=1):
            where = f"{neighbourhoods_file}: feature {index}"
            properties = feature["properties"]
            listed: list[UUID] = []
            for name in properties.get("streets") or ():
                found = street_ids.get(street_key(str(name)), [])
                if len(found) != 1:
                    raise Invalid(where, f"the street {name!r} is not in streets.csv (or is there twice)")
                listed += found
            try:
                geometry = feature.get("geometry")
                await actions.create_neighbourhood(
                    session,
                    commune_id,
                    names=_names(properties, where, languages),
                    geometry=parse_area(geometry, "geometry") if geometry is not None else None,
                    street_ids=listed,
                )
            except Invalid as error:
                raise Invalid(where, error.message) from None
        counts["neighbourhoods"] = len(features)

    zones_file = folder / "zones.geojson"
    if "zones.geojson" in files:
        features = _features(files["zones.geojson"], zones_file)
        for index, feature in enumerate(features, start=1):
            where = f"{zones_file}: feature {index}"
            properties = feature["properties"]
            try:
                await actions.create_zone(
                    session,
                    commune_id,
                    key=str(properties.get("key", "")),
                    names=_names(properties, where, languages),
                    geometry=feature.get("geometry") or {},
                )
            except Invalid as error:
                raise Invalid(where, error.message) from None
        counts["zones"] = len(features)
    return [
        f"territory: {counts['streets']} street(s), {counts['neighbourhoods']} neighbourhood(s), "
        f"{counts['zones']} zone(s)"
    ]


async def load_territory(session: AsyncSession, slug: str, tenant_folder: Path) -> list[str]:
    """Tenants as code: load ``<tenant_folder>/territory`` into the commune ``slug`` if it has
    no territory yet (called by :func:`perron.tenancy.definitions.apply_definitions`)."""
    folder = tenant_folder / FOLDER
    commune_id = await session.scalar(select(Commune.id).where(Commune.slug == slug))
    if commune_id is None:
        return []
    with using_language("en"):  # read by operators, like the rest of the apply report
        return await load_folder(session, commune_id, folder)
