"""The territory as modules read it: "which neighbourhood or zone is this address or point in?"

Every function reads the commune in scope (or ``commune_id`` in the platform scope) and
costs one small query - the commune's territory version - when nothing changed: the
streets, neighbourhoods and zones are loaded once per commune and per version into an
in-process :class:`TerritoryIndex` with prepared shapely geometries, shared by every request
until the next change. The version row carries a stamp renewed at every change, so a
replica never serves an index another replica's change made stale, and a rolled-back change
never leaves one behind.

Placement rules:

* an address is matched to a street forgivingly (case, accents, hyphens, abbreviations,
  the commune's languages; see :mod:`perron.territory.matching`) within its postcode;
* a street belongs to the neighbourhood that lists it, otherwise to the neighbourhood whose
  outline contains the street's point (the smallest one when outlines overlap);
* zones contain points: an address is in the zones that contain its street's point;
* retired neighbourhoods (replaced by a split or a merge) and inactive ones place nothing.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from uuid import UUID

import shapely  # type: ignore[import-untyped]
from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.db.repository import ensure_tenant
from perron.db.scope import require_tenant_id
from perron.i18n import pick
from perron.territory.geojson import stored_shape
from perron.territory.matching import clean_postcode, loose_key, street_key, without_house_number
from perron.territory.models import Neighbourhood, NeighbourhoodStreet, Street, TerritoryState, Zone

__all__ = [
    "NeighbourhoodInfo",
    "Placement",
    "StreetInfo",
    "TerritoryIndex",
    "ZoneInfo",
    "find_street",
    "index",
    "locate_address",
    "locate_point",
    "neighbourhood",
    "neighbourhoods",
    "point_in_zone",
    "resident_account_ids",
    "streets",
    "successors",
    "version",
    "zone",
    "zones",
]

Names = Mapping[str, str]


def _names(values: Mapping[str, str] | None) -> Names:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True, slots=True)
class StreetInfo:
    id: UUID
    names: Names
    postcode: str
    lon: float | None
    lat: float | None

    def name(self, language: str | None = None, fallbacks: Sequence[str] = ()) -> str:
        return pick(self.names, language, fallbacks)

    @property
    def has_point(self) -> bool:
        return self.lon is not None and self.lat is not None


@dataclass(frozen=True, slots=True)
class NeighbourhoodInfo:
    id: UUID
    names: Names
    active: bool
    has_outline: bool
    street_ids: frozenset[UUID]
    """Streets listed in it (not those it holds through its outline)."""
    replaced_by: tuple[UUID, ...]

    def name(self, language: str | None = None, fallbacks: Sequence[str] = ()) -> str:
        return pick(self.names, language, fallbacks)


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    id: UUID
    key: str
    names: Names

    def name(self, language: str | None = None, fallbacks: Sequence[str] = ()) -> str:
        return pick(self.names, language, fallbacks)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an address or a point is. ``street`` is the street an address matched (None for
    a point, or an address that matched no street of the commune)."""

    neighbourhood: NeighbourhoodInfo | None
    zones: tuple[ZoneInfo, ...]
    street: StreetInfo | None
    version: int

    @property
    def zone_keys(self) -> frozenset[str]:
        return frozenset(zone.key for zone in self.zones)

    def in_zone(self, key: str) -> bool:
        return key in self.zone_keys


@dataclass(frozen=True, slots=True)
class _Outline:
    id: UUID
    shape: Any
    area: float


@dataclass(eq=False)
class TerritoryIndex:
    """One commune's territory at one version, ready for placement questions. Shared by
    every request of the process: never changed after it is built."""

    commune_id: UUID
    version: int
    streets: Mapping[UUID, StreetInfo]
    neighbourhoods: Mapping[UUID, NeighbourhoodInfo]
    zones: Mapping[str, ZoneInfo]
    street_neighbourhood: Mapping[UUID, UUID]
    """Each street placed in an active neighbourhood (listed or inside its outline)."""
    _by_key: Mapping[tuple[str, str], tuple[UUID, ...]]
    _by_loose_key: Mapping[tuple[str, str], tuple[UUID, ...]]
    _outlines: tuple[_Outline, ...]
    """Active neighbourhoods with an outline, smallest first."""
    _zone_shapes: tuple[tuple[str, Any], ...]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find_street(self, street: str, postcode: str) -> StreetInfo | None:
        code = clean_postcode(postcode or "")
        if code is None or not street or not street.strip():
            return None
        for text in (street, without_house_number(street)):
            if not text:
                continue
            found = self._by_key.get((code, street_key(text)), ())
            if len(found) == 1:
                return self.streets[found[0]]
            loose = self._by_loose_key.get((code, loose_key(text)), ())
            if len(loose) == 1:
                return self.streets[loose[0]]
        return None

    def _outline_at(self, lon: float, lat: float) -> UUID | None:
        with self._lock:
            return _outline_containing(self._outlines, lon, lat)

    def _zones_at(self, lon: float, lat: float) -> tuple[ZoneInfo, ...]:
        with self._lock:
            keys = [key for key, shape in self._zone_shapes if shapely.intersects_xy(shape, lon, lat)]
        return tuple(self.zones[key] for key in keys)

    def place_point(self, lon: float, lat: float) -> Placement:
        found = self._outline_at(lon, lat)
        return Placement(
            self.neighbourhoods[found] if found else None, self._zones_at(lon, lat), None, self.version
        )

    def place_street(self, street: StreetInfo) -> Placement:
        placed = self.street_neighbourhood.get(street.id)
        zones: tuple[ZoneInfo, ...] = ()
        if street.lon is not None and street.lat is not None:
            zones = self._zones_at(street.lon, street.lat)
        return Placement(self.neighbourhoods[placed] if placed else None, zones, street, self.version)

    def in_zone(self, key: str, lon: float, lat: float) -> bool:
        with self._lock:
            for zone_key, shape in self._zone_shapes:
                if zone_key == key:
                    return bool(shapely.intersects_xy(shape, lon, lat))
        return False


def _outline_containing(outlines: Sequence[_Outline], lon: float, lat: float) -> UUID | None:
    for outline in outlines:
        if shapely.intersects_xy(outline.shape, lon, lat):
            return outline.id
    return None


_CACHE: LRUCache[tuple[UUID, int, UUID | None], TerritoryIndex] = LRUCache(maxsize=512)
_CACHE_LOCK = threading.Lock()


def _commune(commune_id: UUID | None) -> UUID:
    if commune_id is None:
        return require_tenant_id()
    return ensure_tenant(commune_id)


async def _state(session: AsyncSession, commune_id: UUID) -> tuple[int, UUID | None]:
    row = (
        await session.execute(
            select(TerritoryState.version, TerritoryState.stamp).where(TerritoryState.tenant_id == commune_id)
        )
    ).first()
    return (0, None) if row is None else (int(row[0]), row[1])


async def version(session: AsyncSession, *, commune_id: UUID | None = None) -> int:
    """The commune's territory version: 0 before any territory, then +1 at every change."""
    return (await _state(session, _commune(commune_id)))[0]


async def index(session: AsyncSession, *, commune_id: UUID | None = None) -> TerritoryIndex:
    """The commune's current :class:`TerritoryIndex` (built at most once per version)."""
    commune = _commune(commune_id)
    current, stamp = await _state(session, commune)
    key = (commune, current, stamp)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    built = await _build(session, commune, current)
    with _CACHE_LOCK:
        _CACHE[key] = built
    return built


def forget(commune_id: UUID | None = None) -> None:
    """Drop cached indexes (of one commune, or all): tests, and memory pressure."""
    with _CACHE_LOCK:
        for key in [key for key in _CACHE if commune_id is None or key[0] == commune_id]:
            _CACHE.pop(key, None)


async def _build(session: AsyncSession, commune: UUID, current: int) -> TerritoryIndex:
    if current == 0:
        return _assemble(commune, 0, [], [], [], [])
    street_rows = list(await session.scalars(select(Street).where(Street.tenant_id == commune)))
    neighbourhood_rows = list(
        await session.scalars(select(Neighbourhood).where(Neighbourhood.tenant_id == commune))
    )
    links = (
        await session.execute(
            select(NeighbourhoodStreet.neighbourhood_id, NeighbourhoodStreet.street_id).where(
                NeighbourhoodStreet.tenant_id == commune
            )
        )
    ).all()
    zone_rows = list(await session.scalars(select(Zone).where(Zone.tenant_id == commune)))
    return _assemble(
        commune, current, street_rows, neighbourhood_rows, [(row[0], row[1]) for row in links], zone_rows
    )


def _assemble(
    commune: UUID,
    current: int,
    street_rows: Sequence[Street],
    neighbourhood_rows: Sequence[Neighbourhood],
    links: Sequence[tuple[UUID, UUID]],
    zone_rows: Sequence[Zone],
) -> TerritoryIndex:
    streets = {
        row.id: StreetInfo(row.id, _names(row.names), row.postcode, row.lon, row.lat) for row in street_rows
    }
    by_key: dict[tuple[str, str], list[UUID]] = defaultdict(list)
    by_loose: dict[tuple[str, str], list[UUID]] = defaultdict(list)
    for street in streets.values():
        for key in {street_key(name) for name in street.names.values()}:
            by_key[(street.postcode, key)].append(street.id)
        for key in {loose_key(name) for name in street.names.values()}:
            by_loose[(street.postcode, key)].append(street.id)

    listed: dict[UUID, set[UUID]] = defaultdict(set)
    for neighbourhood_id, street_id in links:
        listed[neighbourhood_id].add(street_id)
    neighbourhoods = {
        row.id: NeighbourhoodInfo(
            row.id,
            _names(row.names),
            row.active,
            row.geometry is not None,
            frozenset(listed.get(row.id, ())),
            tuple(UUID(value) for value in row.replaced_by or ()),
        )
        for row in neighbourhood_rows
    }
    outlines: list[_Outline] = []
    for row in neighbourhood_rows:
        if row.active and row.geometry is not None:
            shape = stored_shape(row.geometry)
            shapely.prepare(shape)
            outlines.append(_Outline(row.id, shape, float(shape.area)))
    outlines.sort(key=lambda outline: (outline.area, str(outline.id)))

    placed: dict[UUID, UUID] = {}
    for neighbourhood in sorted(neighbourhoods.values(), key=lambda n: str(n.id)):
        if neighbourhood.active:
            for street_id in neighbourhood.street_ids:
                placed.setdefault(street_id, neighbourhood.id)
    for street in streets.values():
        if street.id not in placed and street.lon is not None and street.lat is not None:
            inside = _outline_containing(outlines, street.lon, street.lat)
            if inside is not None:
                placed[street.id] = inside
    zone_shapes: list[tuple[str, Any]] = []
    zones: dict[str, ZoneInfo] = {}
    for zone_row in sorted(zone_rows, key=lambda row: row.key):
        zones[zone_row.key] = ZoneInfo(zone_row.id, zone_row.key, _names(zone_row.names))
        shape = stored_shape(zone_row.geometry)
        shapely.prepare(shape)
        zone_shapes.append((zone_row.key, shape))

    return TerritoryIndex(
        commune_id=commune,
        version=current,
        streets=MappingProxyType(streets),
        neighbourhoods=MappingProxyType(neighbourhoods),
        zones=MappingProxyType(zones),
        street_neighbourhood=MappingProxyType(placed),
        _by_key=MappingProxyType({key: tuple(ids) for key, ids in by_key.items()}),
        _by_loose_key=MappingProxyType({key: tuple(ids) for key, ids in by_loose.items()}),
        _outlines=tuple(outlines),
        _zone_shapes=tuple(zone_shapes),
    )


# --- The read API ------------------------------------------------------------------------


async def locate_address(
    session: AsyncSession,
    *,
    street: str,
    postcode: str,
    house_number: str | None = None,
    commune_id: UUID | None = None,
) -> Placement:
    """The neighbourhood and zones of an address of the commune.

    ``house_number`` is accepted so callers pass the whole address; placement is by street
    (a street belongs to one neighbourhood). An address that matches no street of the
    commune gives an empty placement (``street`` None), never an error.
    """
    built = await index(session, commune_id=commune_id)
    found = built.find_street(street, postcode)
    if found is None:
        return Placement(None, (), None, built.version)
    return built.place_street(found)


async def locate_point(
    session: AsyncSession, lon: float, lat: float, *, commune_id: UUID | None = None
) -> Placement:
    """The neighbourhood (by outline) and zones containing a WGS84 point."""
    built = await index(session, commune_id=commune_id)
    return built.place_point(float(lon), float(lat))


async def find_street(
    session: AsyncSession, *, street: str, postcode: str, commune_id: UUID | None = None
) -> StreetInfo | None:
    """The commune's street an address names (forgiving matching), or None."""
    return (await index(session, commune_id=commune_id)).find_street(street, postcode)


async def streets(session: AsyncSession, *, commune_id: UUID | None = None) -> list[StreetInfo]:
    """Every street of the commune, by name then postcode (for address forms)."""
    built = await index(session, commune_id=commune_id)
    return sorted(built.streets.values(), key=lambda s: (street_key(s.name()), s.postcode))


async def neighbourhoods(
    session: AsyncSession, *, include_inactive: bool = False, commune_id: UUID | None = None
) -> list[NeighbourhoodInfo]:
    """The commune's neighbourhoods (active ones unless asked), by name."""
    built = await index(session, commune_id=commune_id)
    found = [n for n in built.neighbourhoods.values() if include_inactive or n.active]
    return sorted(found, key=lambda n: street_key(n.name()))


async def neighbourhood(
    session: AsyncSession, neighbourhood_id: UUID, *, commune_id: UUID | None = None
) -> NeighbourhoodInfo | None:
    return (await index(session, commune_id=commune_id)).neighbourhoods.get(neighbourhood_id)


async def successors(
    session: AsyncSession, neighbourhood_id: UUID, *, commune_id: UUID | None = None
) -> list[NeighbourhoodInfo]:
    """Where a neighbourhood's members belong now: itself while active; after splits and
    merges, the active neighbourhoods that replaced it (followed through every step)."""
    built = await index(session, commune_id=commune_id)
    found: list[NeighbourhoodInfo] = []
    seen: set[UUID] = set()
    pending = [neighbourhood_id]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        info = built.neighbourhoods.get(current)
        if info is None:
            continue
        if info.active:
            found.append(info)
        else:
            pending.extend(info.replaced_by)
    return found


async def zones(session: AsyncSession, *, commune_id: UUID | None = None) -> list[ZoneInfo]:
    """The commune's zones, by key."""
    return list((await index(session, commune_id=commune_id)).zones.values())


async def zone(session: AsyncSession, key: str, *, commune_id: UUID | None = None) -> ZoneInfo | None:
    return (await index(session, commune_id=commune_id)).zones.get(key)


async def point_in_zone(
    session: AsyncSession, key: str, lon: float, lat: float, *, commune_id: UUID | None = None
) -> bool:
    """Whether a WGS84 point lies in the zone ``key`` (False when the commune has no such zone)."""
    return (await index(session, commune_id=commune_id)).in_zone(key, float(lon), float(lat))


async def resident_account_ids(
    session: AsyncSession,
    *,
    neighbourhoods: Iterable[UUID] = (),
    streets: Iterable[UUID] = (),
    verified_only: bool = True,
    commune_id: UUID | None = None,
) -> list[UUID]:
    """Accounts whose address lies in the given neighbourhoods or streets (verified
    residents only, unless ``verified_only`` is false). Disabled accounts are left out.
    Ids the commune does not have are ignored."""
    from perron.identity.models import Account

    commune = _commune(commune_id)
    built = await index(session, commune_id=commune)
    wanted_neighbourhoods = set(neighbourhoods)
    targets = {street_id for street_id in streets if street_id in built.streets}
    targets |= {
        street_id
        for street_id, placed in built.street_neighbourhood.items()
        if placed in wanted_neighbourhoods
    }
    if not targets:
        return []
    postcodes = sorted({built.streets[street_id].postcode for street_id in targets})
    query = select(Account.id, Account.street, Account.postcode).where(
        Account.tenant_id == commune,
        Account.postcode.in_(postcodes),
        Account.street.is_not(None),
        Account.disabled.is_(False),
    )
    if verified_only:
        query = query.where(Account.residency_verified_at.is_not(None))
    matched: dict[tuple[str, str], UUID | None] = {}
    found: list[UUID] = []
    for account_id, street_text, postcode in (await session.execute(query)).tuples():
        address = (postcode or "", street_text or "")
        if address not in matched:
            street = built.find_street(address[1], address[0])
            matched[address] = street.id if street else None
        if matched[address] in targets:
            found.append(account_id)
    return sorted(found)
