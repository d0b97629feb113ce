"""Territory: placement by address and by point, staff edits (streets, neighbourhoods with
splits and merges, zones), versions and history, signals, and refusals of bad files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from perron import signals
from perron.audit import Actor, ActorKind, AuditEntry, acting_as
from perron.db.engine import Database
from perron.db.scope import tenant_scope
from perron.errors import Invalid
from perron.i18n import using_language
from perron.identity import actions as identity
from perron.tenancy.models import Commune
from perron.territory import actions, service
from perron.territory.actions import ImportRefused, NewNeighbourhood
from perron.territory.geojson import MAX_BYTES
from perron.territory.models import Neighbourhood, NeighbourhoodStreet, Street, TerritoryChange, Zone
from tests.conftest import MakeCommune

# Hannut, roughly: the town centre around the Grand-Place, Thisnes to the north-west,
# Crehen to the south-east (WGS84 longitude, latitude).
CENTRE = [[5.070, 50.665], [5.090, 50.665], [5.090, 50.678], [5.070, 50.678], [5.070, 50.665]]
NORTH = [[5.070, 50.678], [5.090, 50.678], [5.090, 50.690], [5.070, 50.690], [5.070, 50.678]]
SOUTH = [[5.070, 50.650], [5.090, 50.650], [5.090, 50.665], [5.070, 50.665], [5.070, 50.650]]
TOWN = [[5.072, 50.668], [5.086, 50.668], [5.086, 50.676], [5.072, 50.676], [5.072, 50.668]]
GRAND_PLACE = (5.0789, 50.6717)
THISNES = (5.0800, 50.6850)
CREHEN = (5.0800, 50.6550)


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are checked in English (their msgids)."""
    with using_language("en"):
        yield


@pytest.fixture
async def hannut(make_commune: MakeCommune) -> Commune:
    # English is offered too, so that the pages can be checked in their message ids.
    return await make_commune(
        "hannut", languages=["fr", "nl", "en"], names={"fr": "Hannut", "nl": "Hannuit", "en": "Hannut"}
    )


@pytest.fixture
def write(database: Database, hannut: Commune) -> Any:
    """``async with write() as session``: a transaction in Hannut's scope, as a staff member."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        with tenant_scope(hannut.id), acting_as(Actor(ActorKind.PERSON, "Claire (staff)", UUID(int=7))):
            async with database.transaction() as session:
                yield session

    return transaction


@pytest.fixture
def read(database: Database, hannut: Commune) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def session() -> AsyncIterator[Any]:
        with tenant_scope(hannut.id):
            async with database.session() as session:
                yield session

    return session


async def add_streets(write: Any, hannut: Commune) -> dict[str, UUID]:
    rows = [
        ({"fr": "Grand-Place"}, "4280", GRAND_PLACE),
        ({"fr": "Rue de la Station", "nl": "Stationsstraat"}, "4280", (5.0760, 50.6700)),
        ({"fr": "Avenue Paul Brien"}, "4280", (5.0830, 50.6730)),
        ({"fr": "Rue Saint-Jean"}, "4280", (5.0810, 50.6690)),
        ({"fr": "Chaussée de Tirlemont"}, "4280", THISNES),
        ({"fr": "Rue de l'Église"}, "4280", CREHEN),
        ({"fr": "Rue Zénobe Gramme"}, "4280", None),
    ]
    ids = {}
    async with write() as session:
        for names, postcode, point in rows:
            lon, lat = point if point else (None, None)
            street = await actions.create_street(
                session, hannut.id, names=names, postcode=postcode, lon=lon, lat=lat
            )
            ids[names["fr"]] = street.id
    return ids


async def test_an_address_is_placed_whatever_its_spelling(write: Any, read: Any, hannut: Commune) -> None:
    streets = await add_streets(write, hannut)
    async with write() as session:
        centre = await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Centre", "nl": "Centrum"}, geometry=polygon(CENTRE)
        )
        listed = await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Cité Gramme"}, street_ids=[streets["Rue Zénobe Gramme"]]
        )
        await actions.create_zone(
            session, hannut.id, key="centre", names={"fr": "Centre-ville"}, geometry=polygon(TOWN)
        )

    async with read() as session:
        for spelling in [
            "Grand-Place",
            "grand place",
            "  GRAND   PLACE ",
            "Grand'Place",
            "Grand Place 12",
            "Grand-Place, 3 bte 2",
        ]:
            placed = await service.locate_address(session, street=spelling, postcode="4280")
            assert placed.street is not None and placed.street.id == streets["Grand-Place"], spelling
            assert placed.neighbourhood is not None and placed.neighbourhood.id == centre.id
            assert placed.neighbourhood.names == {"fr": "Centre", "nl": "Centrum"}
            assert placed.zone_keys == {"centre"}
        for spelling in [
            "rue de la station",
            "RUE DE LA STATION",
            "Stationsstraat",
            "stationsstr.",
            "r. de la gare",
        ]:
            placed = await service.locate_address(
                session, street=spelling, postcode=" 4280 ", house_number="5"
            )
            if spelling == "r. de la gare":
                assert placed.street is None
                continue
            assert placed.street is not None and placed.street.id == streets["Rue de la Station"], spelling
            assert placed.neighbourhood is not None and placed.neighbourhood.id == centre.id
        for spelling in ["Av. Paul Brien", "avenue paul-brien", "r. St Jean", "Rue St-Jean", "rue eglise"]:
            placed = await service.locate_address(session, street=spelling, postcode="4280")
            assert placed.street is not None, spelling
        # A listed street without a point: in its neighbourhood, in no zone.
        placed = await service.locate_address(session, street="rue zenobe gramme", postcode="4280")
        assert placed.neighbourhood is not None and placed.neighbourhood.id == listed.id
        assert placed.zones == ()
        # Outside the centre's outline: no neighbourhood, no zone.
        placed = await service.locate_address(session, street="Chaussée de Tirlemont", postcode="4280")
        assert placed.street is not None and placed.neighbourhood is None and placed.zones == ()
        # Another postcode, or a street the commune does not have: nothing, and no error.
        assert (await service.locate_address(session, street="Grand-Place", postcode="4300")).street is None
        assert (await service.locate_address(session, street="Rue Inconnue", postcode="4280")).street is None
        assert (await service.locate_address(session, street="Grand-Place", postcode="abcd")).street is None


async def test_a_point_is_placed_by_outline_and_zone(write: Any, read: Any, hannut: Commune) -> None:
    async with write() as session:
        centre = await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Centre"}, geometry=polygon(CENTRE)
        )
        north = await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Thisnes"}, geometry=polygon(NORTH)
        )
        await actions.create_zone(
            session, hannut.id, key="centre", names={"fr": "Centre-ville"}, geometry=polygon(TOWN)
        )
    async with read() as session:
        placed = await service.locate_point(session, *GRAND_PLACE)
        assert placed.neighbourhood is not None and placed.neighbourhood.id == centre.id
        assert placed.in_zone("centre")
        placed = await service.locate_point(session, *THISNES)
        assert placed.neighbourhood is not None and placed.neighbourhood.id == north.id
        assert not placed.in_zone("centre")
        assert (await service.locate_point(session, *CREHEN)).neighbourhood is None
        assert await service.point_in_zone(session, "centre", *GRAND_PLACE)
        assert not await service.point_in_zone(session, "centre", *THISNES)
        assert not await service.point_in_zone(session, "no-such-zone", *GRAND_PLACE)
        assert (await service.zone(session, "centre")) is not None
        assert [z.key for z in await service.zones(session)] == ["centre"]
        assert [n.name() for n in await service.neighbourhoods(session)] == ["Centre", "Thisnes"]


async def test_a_street_listed_in_a_neighbourhood_wins_over_outlines(
    write: Any, read: Any, hannut: Commune
) -> None:
    streets = await add_streets(write, hannut)
    async with write() as session:
        await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Centre"}, geometry=polygon(CENTRE)
        )
        station = await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Quartier de la gare"}, street_ids=[streets["Rue de la Station"]]
        )
        with pytest.raises(Invalid) as taken:
            await actions.create_neighbourhood(
                session, hannut.id, names={"fr": "Autre"}, street_ids=[streets["Rue de la Station"]]
            )
    assert taken.value.field == "streets"
    assert "Rue de la Station is already in the neighbourhood Quartier de la gare" in taken.value.reason
    async with read() as session:
        placed = await service.locate_address(session, street="Rue de la Station", postcode="4280")
    assert placed.neighbourhood is not None and placed.neighbourhood.id == station.id


async def test_split_and_merge_say_where_members_go(write: Any, read: Any, hannut: Commune) -> None:
    streets = await add_streets(write, hannut)
    big = [[5.070, 50.650], [5.090, 50.650], [5.090, 50.690], [5.070, 50.690], [5.070, 50.650]]
    async with write() as session:
        whole = await actions.create_neighbourhood(
            session,
            hannut.id,
            names={"fr": "Hannut"},
            geometry=polygon(big),
            street_ids=[streets["Rue Zénobe Gramme"], streets["Rue Saint-Jean"]],
        )
    async with write() as session:
        # Every listed street must go to a part, and parts may not overlap.
        with pytest.raises(Invalid) as forgotten:
            await actions.split_neighbourhood(
                session,
                hannut.id,
                whole.id,
                [
                    NewNeighbourhood({"fr": "Nord"}, polygon(NORTH), [streets["Rue Zénobe Gramme"]]),
                    NewNeighbourhood({"fr": "Sud"}, polygon(SOUTH), []),
                ],
            )
        assert "Rue Saint-Jean is in the neighbourhood but in none of the parts" in forgotten.value.reason
        overlapping = [[5.070, 50.660], [5.090, 50.660], [5.090, 50.690], [5.070, 50.690], [5.070, 50.660]]
        with pytest.raises(Invalid) as overlaps:
            await actions.split_neighbourhood(
                session,
                hannut.id,
                whole.id,
                [
                    NewNeighbourhood({"fr": "Sud"}, polygon(SOUTH), [streets["Rue Zénobe Gramme"]]),
                    NewNeighbourhood({"fr": "Nord"}, polygon(overlapping), [streets["Rue Saint-Jean"]]),
                ],
            )
        assert overlaps.value.field == "part2.geometry"
        assert "The outlines of parts 1 and 2 overlap near longitude" in overlaps.value.reason

        north_ring = [[5.070, 50.670], [5.090, 50.670], [5.090, 50.690], [5.070, 50.690], [5.070, 50.670]]
        south_ring = [[5.070, 50.650], [5.090, 50.650], [5.090, 50.670], [5.070, 50.670], [5.070, 50.650]]
        split = await actions.split_neighbourhood(
            session,
            hannut.id,
            whole.id,
            [
                NewNeighbourhood({"fr": "Nord"}, polygon(north_ring), [streets["Rue Zénobe Gramme"]]),
                NewNeighbourhood({"fr": "Sud"}, polygon(south_ring), [streets["Rue Saint-Jean"]]),
            ],
        )
    north, south = split.created
    assert split.mapping == {whole.id: (north.id, south.id)}
    async with read() as session:
        assert (await service.locate_point(session, *THISNES)).neighbourhood.id == north.id  # type: ignore[union-attr]
        assert (await service.locate_point(session, *CREHEN)).neighbourhood.id == south.id  # type: ignore[union-attr]
        gramme = await service.locate_address(session, street="Rue Zénobe Gramme", postcode="4280")
        assert gramme.neighbourhood is not None and gramme.neighbourhood.id == north.id
        old = await service.neighbourhood(session, whole.id)
        assert old is not None and not old.active and old.replaced_by == (north.id, south.id)
        assert [n.id for n in await service.successors(session, whole.id)] == [north.id, south.id]
        assert [n.name() for n in await service.neighbourhoods(session)] == ["Nord", "Sud"]

    async with write() as session:
        with pytest.raises(Invalid) as retired:
            await actions.merge_neighbourhoods(session, hannut.id, [whole.id, north.id], names={"fr": "Tout"})
        assert "only active neighbourhoods can be merged" in retired.value.reason
        merged = await actions.merge_neighbourhoods(
            session, hannut.id, [north.id, south.id], names={"fr": "Tout"}
        )
    (whole_again,) = merged.created
    assert merged.mapping == {north.id: (whole_again.id,), south.id: (whole_again.id,)}
    async with read() as session:
        assert (await service.locate_point(session, *THISNES)).neighbourhood.id == whole_again.id  # type: ignore[union-attr]
        assert (await service.locate_point(session, *CREHEN)).neighbourhood.id == whole_again.id  # type: ignore[union-attr]
        saint_jean = await service.locate_address(session, street="Rue Saint-Jean", postcode="4280")
        assert saint_jean.neighbourhood is not None and saint_jean.neighbourhood.id == whole_again.id
        # A module holding the first id follows it through the split and the merge.
        assert [n.id for n in await service.successors(session, whole.id)] == [whole_again.id]
        assert [n.name() for n in await service.neighbourhoods(session)] == ["Tout"]


async def test_every_change_bumps_the_version_and_is_in_the_history(
    write: Any, read: Any, database: Database, hannut: Commune
) -> None:
    async with read() as session:
        assert await service.version(session) == 0
    async with write() as session:
        street = await actions.create_street(session, hannut.id, names={"fr": "Rue Neuve"}, postcode="4280")
    async with write() as session:
        assert await actions.update_street(session, hannut.id, street.id, names={"fr": "Rue Nouvelle"})
        assert not await actions.update_street(session, hannut.id, street.id, names={"fr": "Rue Nouvelle"})
    async with write() as session:
        zone = await actions.create_zone(
            session, hannut.id, key="centre", names={"fr": "Centre"}, geometry=polygon(TOWN)
        )
    async with write() as session:
        await actions.delete_zone(session, hannut.id, zone.id)
    async with read() as session:
        assert await service.version(session) == 4
        history = list(await session.scalars(select(TerritoryChange).order_by(TerritoryChange.version)))
        audited = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("territory.%"))
        )
    assert [(c.version, c.action, c.kind) for c in history] == [
        (1, "street.create", "streets"),
        (2, "street.update", "streets"),
        (3, "zone.create", "zones"),
        (4, "zone.delete", "zones"),
    ]
    assert {c.actor_label for c in history} == {"Claire (staff)"}
    assert history[1].summary["names"] == {"fr": "Rue Nouvelle"}
    assert history[1].summary["before"] == {"fr": "Rue Neuve"}
    assert audited == 4
    # The placement cache follows the version: the renamed street is found under its new name.
    async with read() as session:
        assert (
            await service.locate_address(session, street="rue nouvelle", postcode="4280")
        ).street is not None
        assert (await service.locate_address(session, street="rue neuve", postcode="4280")).street is None


async def test_a_rolled_back_change_leaves_no_trace(write: Any, read: Any, hannut: Commune) -> None:
    async with read() as session:
        await service.index(session)  # version 0 cached
    with pytest.raises(RuntimeError):
        async with write() as session:
            await actions.create_street(session, hannut.id, names={"fr": "Rue Fantôme"}, postcode="4280")
            # read inside the failing transaction: builds an index for version 1
            assert (await service.locate_address(session, street="rue fantome", postcode="4280")).street
            raise RuntimeError("rolled back")
    async with write() as session:
        await actions.create_street(session, hannut.id, names={"fr": "Rue Réelle"}, postcode="4280")
    async with read() as session:
        assert await service.version(session) == 1
        assert (await service.locate_address(session, street="rue fantome", postcode="4280")).street is None
        assert (
            await service.locate_address(session, street="rue reelle", postcode="4280")
        ).street is not None
        assert await session.scalar(select(func.count()).select_from(TerritoryChange)) == 1


async def test_modules_are_told_after_commit(runtime: Any, write: Any, hannut: Commune) -> None:
    received: list[tuple[UUID, signals.TerritoryChanged]] = []

    async def receiver(context: signals.SignalContext, payload: signals.TerritoryChanged) -> None:
        received.append((context.tenant_id, payload))

    # The runtime binds the dispatcher when it starts; a command run in this process since then
    # may have unbound it (see test_the_territory_commands), so bind it to the runtime again.
    signals.dispatcher.bind(runtime.database)
    signals.territory_changed.connect(receiver, module=None)
    try:
        with pytest.raises(RuntimeError):
            async with write() as session:
                await actions.create_street(session, hannut.id, names={"fr": "Rue Annulée"}, postcode="4280")
                raise RuntimeError("rolled back: nothing is sent")
        async with write() as session:
            neighbourhood = await actions.create_neighbourhood(
                session, hannut.id, names={"fr": "Centre"}, geometry=polygon(CENTRE)
            )
        await signals.dispatcher.drain()
    finally:
        signals.territory_changed.receivers[:] = [
            c for c in signals.territory_changed.receivers if c.receiver is not receiver
        ]
    assert received == [(hannut.id, signals.TerritoryChanged("neighbourhoods", (neighbourhood.id,), 1))]


async def test_residents_of_a_neighbourhood_or_street(write: Any, read: Any, hannut: Commune) -> None:
    streets = await add_streets(write, hannut)
    async with write() as session:
        centre = await actions.create_neighbourhood(
            session, hannut.id, names={"fr": "Centre"}, geometry=polygon(CENTRE)
        )
        people = {}
        for name, street, postcode, resident in [
            ("Anne", "grand place", "4280", True),
            ("Bert", "Stationsstraat", "4280", True),
            ("Chloé", "Rue de la Station", "4280", False),
            ("Dirk", "Chaussée de Tirlemont", "4280", True),
            ("Émile", "Grand-Place", "4300", True),
        ]:
            account = await identity.create_account(
                session,
                hannut.id,
                display_name=name,
                street=street,
                house_number="1",
                postcode=postcode,
                resident=resident,
            )
            people[name] = account.id
    async with read() as session:
        assert await service.resident_account_ids(session, neighbourhoods=[centre.id]) == sorted(
            [people["Anne"], people["Bert"]]
        )
        assert await service.resident_account_ids(
            session, neighbourhoods=[centre.id], verified_only=False
        ) == sorted([people["Anne"], people["Bert"], people["Chloé"]])
        assert await service.resident_account_ids(session, streets=[streets["Chaussée de Tirlemont"]]) == [
            people["Dirk"]
        ]
        assert await service.resident_account_ids(session) == []


# --- Refusals: nothing is saved -------------------------------------------------------------


async def territory_rows(read: Any) -> dict[str, int]:
    async with read() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model))
            for model in (Street, Neighbourhood, NeighbourhoodStreet, Zone, TerritoryChange)
        }


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (b"{not json", "geometry", "not valid JSON (line 1, column 2)"),
        (b"", "geometry", "The file is empty."),
        (b"\xff\xfe\x00garbage", "geometry", "it is not UTF-8 text"),
        (json.dumps({"type": "Point", "coordinates": [5.07, 50.67]}).encode(), "geometry", "not a Point"),
        (
            json.dumps({"type": "LineString", "coordinates": [[5.07, 50.67], [5.08, 50.68]]}).encode(),
            "geometry",
            "must be a Polygon or a MultiPolygon",
        ),
        (
            json.dumps(
                polygon([[5.07, 50.67], [5.09, 50.69], [5.09, 50.67], [5.07, 50.69], [5.07, 50.67]])
            ).encode(),
            "geometry",
            "The outline crosses itself near longitude 5.08000, latitude 50.68000.",
        ),
        (
            json.dumps(polygon([[2.35, 48.85], [2.36, 48.85], [2.36, 48.86], [2.35, 48.85]])).encode(),
            "geometry",
            "The outline goes outside Belgium (at longitude 2.35000, latitude 48.85000)",
        ),
        (
            json.dumps(polygon([[50.67, 5.07], [50.68, 5.07], [50.68, 5.08], [50.67, 5.07]])).encode(),
            "geometry",
            "latitude, longitude order",
        ),
        (
            json.dumps(
                polygon([[215000, 150000], [216000, 150000], [216000, 151000], [215000, 150000]])
            ).encode(),
            "geometry",
            "look like metres",
        ),
        (
            json.dumps(polygon([[5.07, 50.67], [5.08, 50.67], [5.07, 50.67]])).encode(),
            "geometry",
            "A ring needs at least three distinct points",
        ),
        (
            json.dumps(
                {
                    "type": "Polygon",
                    "coordinates": [[["5.07", 50.67], [5.08, 50.67], [5.08, 50.68], [5.07, 50.67]]],
                }
            ).encode(),
            "geometry",
            "Each point must be a pair of numbers [longitude, latitude]",
        ),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31370"}},
                    "features": [{"type": "Feature", "properties": {}, "geometry": polygon(TOWN)}],
                }
            ).encode(),
            "geometry",
            "uses the coordinate system urn:ogc:def:crs:EPSG::31370",
        ),
        (json.dumps({"type": "FeatureCollection", "features": []}).encode(), "geometry", "holds no outline"),
    ],
    ids=[
        "not-json",
        "empty",
        "not-utf8",
        "point",
        "line",
        "self-intersecting",
        "outside-belgium",
        "lat-lon-swapped",
        "lambert-metres",
        "too-few-points",
        "text-coordinate",
        "other-crs",
        "empty-collection",
    ],
)
async def test_bad_geojson_is_refused_and_nothing_saved(
    write: Any, read: Any, hannut: Commune, content: bytes, field: str, message: str
) -> None:
    before = await territory_rows(read)
    with pytest.raises(Invalid) as refused:
        async with write() as session:
            await actions.create_zone(
                session, hannut.id, key="centre", names={"fr": "Centre"}, geometry=content
            )
    assert refused.value.field == field
    assert message in refused.value.reason
    with pytest.raises(Invalid):
        async with write() as session:
            await actions.create_neighbourhood(session, hannut.id, names={"fr": "Centre"}, geometry=content)
    assert await territory_rows(read) == before
    async with read() as session:
        assert await service.version(session) == 0


async def test_too_big_outlines_are_refused(write: Any, read: Any, hannut: Commune) -> None:
    huge = (
        b'{"type": "Polygon", "coordinates": [['
        + b"[5.07, 50.67], " * (MAX_BYTES // 14)
        + b"[5.07, 50.67]]]}"
    )
    with pytest.raises(Invalid) as too_large:
        async with write() as session:
            await actions.create_zone(session, hannut.id, key="centre", names={"fr": "Centre"}, geometry=huge)
    assert too_large.value.reason == "The file is too large (2.1 MB); the limit is 2 MB."

    # 60,000 points in a small circle: under 2 MB? no matter, the point limit speaks first.
    import math

    ring = [
        [5.08 + 0.01 * math.cos(2 * math.pi * i / 60000), 50.67 + 0.01 * math.sin(2 * math.pi * i / 60000)]
        for i in range(60000)
    ]
    ring.append(ring[0])
    with pytest.raises(Invalid) as too_many:
        async with write() as session:
            await actions.create_zone(
                session, hannut.id, key="centre", names={"fr": "Centre"}, geometry=polygon(ring)
            )
    assert "The outline has more than 50 000 points" in too_many.value.reason
    assert await territory_rows(read) == {
        "territory_streets": 0,
        "territory_neighbourhoods": 0,
        "territory_neighbourhood_streets": 0,
        "territory_zones": 0,
        "territory_changes": 0,
    }


async def test_a_feature_collection_of_polygons_is_one_outline(
    write: Any, read: Any, hannut: Commune
) -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "nord"}, "geometry": polygon(NORTH)},
            {"type": "Feature", "properties": {"name": "sud"}, "geometry": polygon(SOUTH)},
        ],
    }
    async with write() as session:
        zone = await actions.create_zone(
            session, hannut.id, key="ends", names={"fr": "Extrémités"}, geometry=json.dumps(collection)
        )
    assert zone.geometry["type"] == "MultiPolygon"
    async with read() as session:
        assert await service.point_in_zone(session, "ends", *THISNES)
        assert await service.point_in_zone(session, "ends", *CREHEN)
        assert not await service.point_in_zone(session, "ends", *GRAND_PLACE)


async def test_street_import_reports_every_bad_row_and_saves_nothing(
    write: Any, read: Any, hannut: Commune
) -> None:
    bad = (
        "Rue de la Station;4280\n"
        ";4280\n"
        "Rue du Moulin;42800\n"
        "Rue de la Station;4280\n"
        "Rue des Champs\n"
        "Place Henri Hallet;4280;50.67;5.07\n"
        "Rue Albert Ier;4280;5,0772;50,6712\n"
    )
    with pytest.raises(ImportRefused) as refused:
        async with write() as session:
            await actions.import_streets(session, hannut.id, bad.encode())
    assert [(p.line, p.message) for p in refused.value.problems] == [
        (2, "the street name is missing"),
        (3, "“42800” is not a Belgian postcode (four digits, such as 4280)"),
        (4, "the same street is already on line 1"),
        (5, "the postcode is missing"),
        (
            6,
            "The longitude and the latitude seem swapped: in Belgium the longitude is between 2.5 and 6.4 "
            "and the latitude between 49.5 and 51.5.",
        ),
    ]
    assert refused.value.field == "file"
    assert (await territory_rows(read))["territory_streets"] == 0

    good = (
        "fr;nl;postcode;lon;lat\n"
        "Rue de la Station;Stationsstraat;4280;5,0760;50,6700\n"
        "Rue du Moulin;;4280;;\n"
    )
    async with write() as session:
        report = await actions.import_streets(session, hannut.id, good.encode("cp1252", errors="strict"))
    assert [street.names for street in report.created] == [
        {"fr": "Rue de la Station", "nl": "Stationsstraat"},
        {"fr": "Rue du Moulin"},
    ]
    async with write() as session:
        again = await actions.import_streets(session, hannut.id, "Rue du moulin;4280\nRue Neuve;4280\n")
    assert again.already_present == [(1, "Rue du moulin")]
    assert [street.names["fr"] for street in again.created] == ["Rue Neuve"]
    async with read() as session:
        assert await service.version(session) == 2
        placed = await service.locate_address(session, street="stationsstraat", postcode="4280")
        assert placed.street is not None and placed.street.lon == pytest.approx(5.076)
    with pytest.raises(Invalid) as empty:
        async with write() as session:
            await actions.import_streets(session, hannut.id, b"\n\n")
    assert empty.value.reason == "The file is empty."
    with pytest.raises(Invalid) as header:
        async with write() as session:
            await actions.import_streets(session, hannut.id, "rue;postcode;colour\nRue X;4280;red\n")
    assert "unknown column “colour”" in header.value.reason


async def test_street_names_must_be_unique_per_postcode(write: Any, hannut: Commune) -> None:
    async with write() as session:
        await actions.create_street(session, hannut.id, names={"fr": "Grand-Place"}, postcode="4280")
        await actions.create_street(session, hannut.id, names={"fr": "Grand-Place"}, postcode="4287")
    with pytest.raises(Invalid) as twin:
        async with write() as session:
            await actions.create_street(session, hannut.id, names={"fr": "grand place"}, postcode="4280")
    assert twin.value.field == "names.fr"
    assert twin.value.reason == "The street Grand-Place (4280) already exists."
    with pytest.raises(Invalid) as missing:
        async with write() as session:
            await actions.create_street(session, hannut.id, names={"nl": "Grote Markt"}, postcode="4280")
    assert missing.value.field == "names.fr"
    assert missing.value.reason == "Give the name in Français."
    with pytest.raises(Invalid) as outside:
        async with write() as session:
            await actions.create_street(
                session, hannut.id, names={"fr": "Rue X"}, postcode="4280", lon=2.35, lat=48.85
            )
    assert outside.value.reason == "The point 2.35000, 48.85000 is outside Belgium."


# --- The demo communes ------------------------------------------------------------------


async def test_the_demo_communes_get_their_territory_once(database: Database, tmp_path: Any) -> None:
    import shutil

    from perron.db.scope import platform_scope
    from perron.tenancy.definitions import apply_definitions, load_definitions
    from tests.conftest import CONSOLE_HOST, ROOT

    folder = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants", folder)

    async def apply() -> dict[str, Any]:
        with platform_scope("test: apply the demo communes"):
            async with database.transaction() as session:
                reports = await apply_definitions(
                    session, load_definitions(folder), console_host=CONSOLE_HOST
                )
        return {report.name: report for report in reports}

    first = await apply()
    assert "territory: 25 street(s), 4 neighbourhood(s), 1 zone(s)" in first["commune hannut"].remarks
    with platform_scope("test"):
        async with database.session() as session:
            ids = dict((await session.execute(select(Commune.slug, Commune.id))).tuples().all())
    expectations = [
        ("hannut", "grand place", "4280", "Hannut-Centre", {"centre"}),
        ("hannut", "Rue de la Gohale", "4280", "Crehen", set()),  # listed in Crehen, inside the centre
        ("hannut", "rue mayeur j debras", "4280", "Grand-Hallet", set()),
        ("hannut", "Rue de Merdorp", "4280", None, set()),
        ("la-louviere", "place communale", "7100", "Centre", {"centre"}),
        ("la-louviere", "Rue de Bouvy", "7100", "Bouvy", set()),
        ("andenne", "Place des Tilleuls", "5300", "Andenne-Centre", {"centre"}),
        ("andenne", "rue de reppe", "5300", "Seilles", set()),
    ]
    for slug, street, postcode, neighbourhood, zone_keys in expectations:
        with tenant_scope(ids[slug]):
            async with database.session() as session:
                placed = await service.locate_address(session, street=street, postcode=postcode)
        assert placed.street is not None, (slug, street)
        assert (placed.neighbourhood.names["fr"] if placed.neighbourhood else None) == neighbourhood, street
        assert placed.zone_keys == zone_keys, street
    with tenant_scope(ids["hannut"]):
        async with database.session() as session:
            version = await service.version(session)
            assert len(await service.neighbourhoods(session)) == 4

    again = await apply()
    assert not any("territory" in remark for report in again.values() for remark in report.remarks)
    with tenant_scope(ids["hannut"]):
        async with database.session() as session:
            assert await service.version(session) == version


# --- The staff pages --------------------------------------------------------------------


async def staff_client(
    runtime: Any, client_for: Any, commune: Commune, roles: tuple[str, ...] = ("territory.editor",)
) -> Any:
    from perron.audit import SYSTEM
    from perron.identity.models import AccountKind, Assurance
    from perron.identity.sessions import SESSION_COOKIE, open_session

    with tenant_scope(commune.id), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            account = await identity.create_account(
                session, commune.id, display_name="Claire Agent", kind=AccountKind.STAFF, roles=roles
            )
            token = await open_session(session, account, Assurance.SUBSTANTIAL)
    client = client_for(f"{commune.slug}.test")
    client.cookies.set(SESSION_COOKIE, token, domain=f"{commune.slug}.test")
    return client


async def send(
    client: Any, page: str, action: str, data: dict[str, Any], files: dict[str, Any] | None = None
) -> Any:
    """Open the form's page (for the CSRF cookie), then post it as a browser would."""
    opened = await client.get(page, params={"lang": "en"})
    assert opened.status_code == 200, opened.text
    return await client.post(
        action, data={**data, "_csrf_token": client.cookies.get("perron_csrf")}, files=files
    )


def geojson_file(ring: list[list[float]]) -> tuple[str, bytes, str]:
    return ("outline.geojson", json.dumps(polygon(ring)).encode(), "application/geo+json")


async def test_staff_edit_streets_from_the_pages(
    runtime: Any, client_for: Any, hannut: Commune, read: Any
) -> None:
    staff = await staff_client(runtime, client_for, hannut)
    overview = await staff.get("/admin/territory", params={"lang": "en"})
    assert overview.status_code == 200
    assert "Which neighbourhood is this address in?" in overview.text

    refused = await send(
        staff,
        "/admin/territory/streets",
        "/admin/territory/streets",
        {"names.fr": "Rue de la Station", "names.nl": "", "postcode": "42", "lon": "", "lat": ""},
    )
    assert refused.status_code == 400
    assert 'class="error-summary"' in refused.text and 'href="#field-postcode"' in refused.text
    assert 'id="error-postcode"' in refused.text and 'aria-describedby="error-postcode"' in refused.text
    assert "is not a Belgian postcode" in refused.text
    assert 'value="Rue de la Station"' in refused.text  # what was typed comes back
    assert (await territory_rows(read))["territory_streets"] == 0

    added = await send(
        staff,
        "/admin/territory/streets",
        "/admin/territory/streets",
        {
            "names.fr": "Rue de la Station",
            "names.nl": "Stationsstraat",
            "postcode": "4280",
            "lon": "5,0760",
            "lat": "50.67",
        },
    )
    assert added.status_code == 303 and added.headers["location"].startswith("/admin/territory/streets?done=")
    listing = await staff.get(added.headers["location"])  # the language choice is remembered
    assert "The street is added." in listing.text and "Rue de la Station" in listing.text

    bad_file = "Rue Neuve;4280\nRue du Moulin;99999\n;4280\n"
    imported = await send(
        staff,
        "/admin/territory/streets",
        "/admin/territory/streets/import",
        {},
        files={"file": ("streets.csv", bad_file.encode(), "text/csv")},
    )
    assert imported.status_code == 400
    assert 'id="import-problems"' in imported.text
    assert "<td>2</td><td>“99999” is not a Belgian postcode (four digits, such as 4280)</td>" in imported.text
    assert "<td>3</td><td>the street name is missing</td>" in imported.text
    assert (await territory_rows(read))["territory_streets"] == 1

    imported = await send(
        staff,
        "/admin/territory/streets",
        "/admin/territory/streets/import",
        {},
        files={"file": ("streets.csv", b"Rue Neuve;4280\nrue de la station;4280\n", "text/csv")},
    )
    assert imported.status_code == 303 and "count=1" in imported.headers["location"]
    assert "present=1" in imported.headers["location"]

    async with read() as session:
        street = await service.find_street(session, street="rue neuve", postcode="4280")
        assert street is not None
    renamed = await send(
        staff,
        f"/admin/territory/streets/{street.id}",
        f"/admin/territory/streets/{street.id}",
        {"names.fr": "Rue Nouvelle", "postcode": "4280", "lon": "", "lat": ""},
    )
    assert renamed.status_code == 303
    deleted = await send(
        staff, f"/admin/territory/streets/{street.id}", f"/admin/territory/streets/{street.id}/delete", {}
    )
    assert deleted.status_code == 303
    history = await staff.get("/admin/territory/history", params={"lang": "en"})
    assert history.status_code == 200
    for text in (
        "Street added",
        "Streets imported",
        "Street changed",
        "Rue Neuve, now Rue Nouvelle",
        "Street deleted",
    ):
        assert text in history.text, text
    assert history.text.count("<td>Claire Agent</td>") == 4
    async with read() as session:
        actors = set(
            await session.scalars(select(AuditEntry.actor_label).where(AuditEntry.action.like("territory.%")))
        )
    assert actors == {"Claire Agent"}


async def test_staff_draw_split_and_merge_neighbourhoods(
    runtime: Any, client_for: Any, hannut: Commune, write: Any, read: Any
) -> None:
    streets = await add_streets(write, hannut)
    staff = await staff_client(runtime, client_for, hannut)
    form = await staff.get("/admin/territory/neighbourhoods/new", params={"lang": "en"})
    assert form.status_code == 200
    assert "<legend>R</legend>" in form.text  # streets grouped by first letter
    assert f'value="{streets["Rue Zénobe Gramme"]}"' in form.text

    crossing = [[5.07, 50.67], [5.09, 50.69], [5.09, 50.67], [5.07, 50.69], [5.07, 50.67]]
    refused = await send(
        staff,
        "/admin/territory/neighbourhoods/new",
        "/admin/territory/neighbourhoods/new",
        {"names.fr": "Hannut", "active": "on", "streets": [str(streets["Rue Zénobe Gramme"])]},
        files={"geometry": geojson_file(crossing)},
    )
    assert refused.status_code == 400
    assert "The outline crosses itself near longitude 5.08000, latitude 50.68000." in refused.text
    assert 'href="#field-geometry"' in refused.text
    assert "choose it again" in refused.text
    assert f'value="{streets["Rue Zénobe Gramme"]}" checked' in refused.text  # the ticks are kept
    assert (await territory_rows(read))["territory_neighbourhoods"] == 0

    big = [[5.070, 50.650], [5.090, 50.650], [5.090, 50.690], [5.070, 50.690], [5.070, 50.650]]
    created = await send(
        staff,
        "/admin/territory/neighbourhoods/new",
        "/admin/territory/neighbourhoods/new",
        {
            "names.fr": "Hannut",
            "names.nl": "Hannuit",
            "active": "on",
            "streets": [str(streets["Rue Zénobe Gramme"]), str(streets["Rue Saint-Jean"])],
        },
        files={"geometry": geojson_file(big)},
    )
    assert created.status_code == 303, created.text
    async with read() as session:
        (whole,) = await service.neighbourhoods(session)
    outline = await staff.get(f"/admin/territory/neighbourhoods/{whole.id}/outline.geojson")
    assert outline.status_code == 200 and outline.json()["geometry"]["type"] == "Polygon"
    assert outline.headers["content-disposition"] == 'inline; filename="hannut-hannut.geojson"'

    north = [[5.070, 50.670], [5.090, 50.670], [5.090, 50.690], [5.070, 50.690], [5.070, 50.670]]
    south = [[5.070, 50.650], [5.090, 50.650], [5.090, 50.670], [5.070, 50.670], [5.070, 50.650]]
    split_page = f"/admin/territory/neighbourhoods/{whole.id}/split"
    forgotten = await send(
        staff,
        split_page,
        split_page,
        {
            "part1.names.fr": "Nord",
            "part2.names.fr": "Sud",
            "part1.streets": [str(streets["Rue Zénobe Gramme"])],
        },
        files={"part1.geometry": geojson_file(north), "part2.geometry": geojson_file(south)},
    )
    assert forgotten.status_code == 400
    assert "Rue Saint-Jean is in the neighbourhood but in none of the parts" in forgotten.text
    split = await send(
        staff,
        split_page,
        split_page,
        {
            "part1.names.fr": "Nord",
            "part2.names.fr": "Sud",
            "part1.streets": [str(streets["Rue Zénobe Gramme"])],
            "part2.streets": [str(streets["Rue Saint-Jean"])],
        },
        files={"part1.geometry": geojson_file(north), "part2.geometry": geojson_file(south)},
    )
    assert split.status_code == 303, split.text
    listing = await staff.get("/admin/territory/neighbourhoods", params={"lang": "en"})
    assert "Former neighbourhoods" in listing.text and "Nord, Sud" in listing.text
    retired = await staff.get(f"/admin/territory/neighbourhoods/{whole.id}")
    assert retired.status_code == 200 and "it is kept for the record" in retired.text
    assert 'enctype="multipart/form-data"' not in retired.text  # no form to change it
    assert (await staff.get(split_page)).status_code == 404  # nor to split it again
    async with read() as session:
        assert [n.name() for n in await service.successors(session, whole.id)] == ["Nord", "Sud"]
        parts = {n.name(): n.id for n in await service.neighbourhoods(session)}

    same = await send(
        staff,
        "/admin/territory/neighbourhoods/merge",
        "/admin/territory/neighbourhoods/merge",
        {"first": str(parts["Nord"]), "second": str(parts["Nord"]), "names.fr": "Tout"},
    )
    assert same.status_code == 400 and "Choose at least two different neighbourhoods" in same.text
    merged = await send(
        staff,
        "/admin/territory/neighbourhoods/merge",
        "/admin/territory/neighbourhoods/merge",
        {"first": str(parts["Nord"]), "second": str(parts["Sud"]), "names.fr": "Tout"},
    )
    assert merged.status_code == 303
    async with read() as session:
        assert [n.name() for n in await service.successors(session, whole.id)] == ["Tout"]
        placed = await service.locate_point(session, *THISNES)
        assert placed.neighbourhood is not None and placed.neighbourhood.name() == "Tout"


async def test_staff_manage_zones(runtime: Any, client_for: Any, hannut: Commune, read: Any) -> None:
    staff = await staff_client(runtime, client_for, hannut, roles=("admin",))
    missing_file = await send(
        staff,
        "/admin/territory/zones/new",
        "/admin/territory/zones/new",
        {"key": "centre", "names.fr": "Centre"},
    )
    assert missing_file.status_code == 400 and "Choose the GeoJSON file" in missing_file.text
    bad_key = await send(
        staff,
        "/admin/territory/zones/new",
        "/admin/territory/zones/new",
        {"key": "Centre Ville", "names.fr": "Centre"},
        files={"geometry": geojson_file(TOWN)},
    )
    assert bad_key.status_code == 400 and 'id="error-key"' in bad_key.text
    not_json = await send(
        staff,
        "/admin/territory/zones/new",
        "/admin/territory/zones/new",
        {"key": "centre", "names.fr": "Centre"},
        files={"geometry": ("centre.geojson", b"<kml>", "application/geo+json")},
    )
    assert not_json.status_code == 400 and "it is not valid JSON (line 1, column 1)" in not_json.text
    created = await send(
        staff,
        "/admin/territory/zones/new",
        "/admin/territory/zones/new",
        {"key": "centre", "names.fr": "Centre-ville", "names.nl": "Stadscentrum"},
        files={"geometry": geojson_file(TOWN)},
    )
    assert created.status_code == 303
    async with read() as session:
        assert await service.point_in_zone(session, "centre", *GRAND_PLACE)
        zone = await service.zone(session, "centre")
    assert zone is not None
    renamed = await send(
        staff,
        f"/admin/territory/zones/{zone.id}",
        f"/admin/territory/zones/{zone.id}",
        {"names.fr": "Cœur de ville"},
    )
    assert renamed.status_code == 303
    listing = await staff.get("/admin/territory/zones", params={"lang": "en"})
    assert "Cœur de ville" in listing.text and "<code>centre</code>" in listing.text
    deleted = await send(
        staff, f"/admin/territory/zones/{zone.id}/delete", f"/admin/territory/zones/{zone.id}/delete", {}
    )
    assert deleted.status_code == 303
    async with read() as session:
        assert not await service.point_in_zone(session, "centre", *GRAND_PLACE)


# --- The command line ---------------------------------------------------------------------


def test_the_territory_commands(settings: Any, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from perron.cli import main
    from tests.conftest import settings_env

    env = settings_env(settings)
    # A command binds the process-wide signal dispatcher to its own runtime and unbinds it when
    # it ends; in this process the test application's runtime needs it back afterwards.
    bound = (signals.dispatcher.database, signals.dispatcher.loop)

    def run(*args: str) -> Any:
        try:
            return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        finally:
            signals.dispatcher.database, signals.dispatcher.loop = bound

    created = run(
        "tenants",
        "create",
        "hannut",
        "--nis",
        "64034",
        "--name",
        "fr=Hannut",
        "--language",
        "fr",
        "--domain",
        "hannut.test",
        "--active",
    )
    assert created.exit_code == 0, created.output
    bad = tmp_path / "bad.csv"
    bad.write_text("Grand-Place;4280\nRue du Moulin;42\n", encoding="utf-8")
    refused = run("territory", "import-streets", "hannut", str(bad))
    assert refused.exit_code == 1
    assert f"{bad}:2: “42” is not a Belgian postcode (four digits, such as 4280)" in refused.output
    assert "1 row(s) refused; nothing was imported." in refused.output

    good = tmp_path / "streets.csv"
    good.write_text(
        "fr;postcode;lon;lat\nGrand-Place;4280;5.0789;50.6717\nRue de Landen;4280;;\n", encoding="utf-8"
    )
    imported = run("territory", "import-streets", "hannut", str(good))
    assert imported.exit_code == 0, imported.output
    assert "Imported 2 street(s) into hannut (territory version 1)." in imported.output
    again = run("territory", "import-streets", "hannut", str(good))
    assert "Nothing new: every street of the file is already in hannut." in again.output

    crossing = tmp_path / "crossing.geojson"
    crossing.write_text(
        json.dumps(polygon([[5.07, 50.67], [5.09, 50.69], [5.09, 50.67], [5.07, 50.69], [5.07, 50.67]]))
    )
    broken = run("territory", "import-geojson", "hannut", "--neighbourhood", "Centre", str(crossing))
    assert broken.exit_code == 1
    assert "The outline crosses itself near longitude 5.08000, latitude 50.68000." in broken.output

    centre = tmp_path / "centre.geojson"
    centre.write_text(json.dumps(polygon(CENTRE)))
    assert (
        "Created the neighbourhood Centre of hannut."
        in run("territory", "import-geojson", "hannut", "--neighbourhood", "Centre", str(centre)).output
    )
    bigger = tmp_path / "bigger.geojson"
    bigger.write_text(
        json.dumps(polygon([[5.06, 50.66], [5.10, 50.66], [5.10, 50.69], [5.06, 50.69], [5.06, 50.66]]))
    )
    assert (
        "Updated the outline of the neighbourhood Centre of hannut."
        in run("territory", "import-geojson", "hannut", "--neighbourhood", "centre", str(bigger)).output
    )
    town = tmp_path / "town.geojson"
    town.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": polygon(TOWN)}],
            }
        )
    )
    assert (
        "Created the zone centre of hannut."
        in run(
            "territory",
            "import-geojson",
            "hannut",
            "--zone",
            "centre",
            "--name",
            "fr=Centre-ville",
            str(town),
        ).output
    )
    neither = run("territory", "import-geojson", "hannut", str(town))
    assert neither.exit_code == 2 and "give either --neighbourhood NAME or --zone KEY" in neither.output
    unknown = run("territory", "show", "nowhere")
    assert unknown.exit_code == 1 and "no commune has the slug 'nowhere'" in unknown.output

    shown = json.loads(run("territory", "show", "hannut", "--json").output)
    assert shown["version"] == 4 and shown["streets"] == 2 and shown["streets_without_point"] == 1
    assert [(n["names"], n["outline"], n["streets"]) for n in shown["neighbourhoods"]] == [
        ({"fr": "Centre"}, True, 1)
    ]
    assert shown["zones"] == [{"key": "centre", "names": {"fr": "Centre-ville"}}]
    assert [h["action"] for h in shown["history"]] == [
        "zone.create",
        "neighbourhood.update",
        "neighbourhood.create",
        "streets.import",
    ]
    assert all(h["who"].startswith("cli:") for h in shown["history"])
    text = run("territory", "show", "hannut").output
    assert "Hannut (hannut): territory version 4, 2 street(s) (1 without a point)" in text


async def test_a_broken_territory_file_stops_the_apply_and_changes_nothing(
    database: Database, tmp_path: Any
) -> None:
    import shutil

    from perron.db.scope import platform_scope
    from perron.tenancy.definitions import DefinitionError, apply_definitions, load_definitions
    from tests.conftest import CONSOLE_HOST, ROOT

    folder = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants", folder)
    zones = folder / "hannut" / "territory" / "zones.geojson"
    crossing = [[5.07, 50.67], [5.09, 50.69], [5.09, 50.67], [5.07, 50.69], [5.07, 50.67]]
    zones.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"key": "centre", "names": {"fr": "Centre"}},
                        "geometry": polygon(crossing),
                    }
                ],
            }
        )
    )
    with pytest.raises(DefinitionError) as refused, platform_scope("test: apply"):
        async with database.transaction() as session:
            await apply_definitions(session, load_definitions(folder), console_host=CONSOLE_HOST)
    (problem,) = refused.value.problems
    assert f"{zones}: feature 1: geometry: The outline crosses itself near longitude 5.08000" in problem
    with platform_scope("test"):
        async with database.session() as session:
            assert await session.scalar(select(func.count()).select_from(Commune)) == 0
            assert await session.scalar(select(func.count()).select_from(Street)) == 0
