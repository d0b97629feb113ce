"""Territory between two communes: alpha's staff, pages and read API never see, change or
place anything into bravo's streets, neighbourhoods and zones, even where both communes use
the same names, keys and versions. Admin pages answer 401 to visitors and 403 to citizens.

``TERRITORY_FACTORIES`` (below) make one row of each territory table for the generic attacks
of this folder (``tests/isolation/conftest.py`` ``FACTORIES``)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from perron.audit import SYSTEM, Actor, ActorKind, acting_as
from perron.db.engine import Database
from perron.db.scope import CrossTenantAccess, platform_scope, tenant_scope
from perron.errors import Invalid, NotFound
from perron.identity import actions as identity
from perron.identity.models import AccountKind, Assurance
from perron.identity.sessions import SESSION_COOKIE, open_session
from perron.tenancy.models import Commune
from perron.territory import actions, service
from perron.territory.models import (
    Neighbourhood,
)
from tests.conftest import ClientFactory
from tests.isolation.conftest import locks_available, only_lock
from tests.isolation.factories import ALPHA_CENTRE, TERRITORY_FACTORIES, polygon

# The same square of land for both communes' "centre" (their own polygons differ below).
BRAVO_CENTRE = [[4.176, 50.470], [4.200, 50.470], [4.200, 50.488], [4.176, 50.488], [4.176, 50.470]]
ALPHA_POINT = (5.0789, 50.6717)
BRAVO_POINT = (4.1864, 50.4793)


# --- Two communes with the same names ----------------------------------------------------


class Territory:
    """What one commune holds: ids by name."""

    def __init__(self, commune: Commune) -> None:
        self.commune = commune
        self.streets: dict[str, UUID] = {}
        self.neighbourhood: UUID
        self.zone: UUID
        self.resident: UUID


async def seed(
    database: Database, commune: Commune, ring: list[list[float]], point: tuple[float, float], postcode: str
) -> Territory:
    territory = Territory(commune)
    with tenant_scope(commune.id), acting_as(Actor(ActorKind.PERSON, f"staff of {commune.slug}")):
        async with database.transaction() as session:
            for name in ("Grand-Place", f"Rue de {commune.slug.title()}"):
                street = await actions.create_street(
                    session, commune.id, names={"fr": name}, postcode=postcode, lon=point[0], lat=point[1]
                )
                territory.streets[name] = street.id
            neighbourhood = await actions.create_neighbourhood(
                session,
                commune.id,
                names={"fr": "Centre"},
                geometry=polygon(ring),
                street_ids=[territory.streets["Grand-Place"]],
            )
            territory.neighbourhood = neighbourhood.id
            zone = await actions.create_zone(
                session, commune.id, key="centre", names={"fr": "Centre"}, geometry=polygon(ring)
            )
            territory.zone = zone.id
            account = await identity.create_account(
                session,
                commune.id,
                display_name=f"Resident of {commune.slug}",
                street="Grand-Place",
                house_number="1",
                postcode=postcode,
                resident=True,
            )
            territory.resident = account.id
    return territory


@pytest.fixture
async def both(two_communes: tuple[Commune, Commune], database: Database) -> tuple[Territory, Territory]:
    alpha, bravo = two_communes
    # The same postcode on purpose: only the commune keeps the streets apart.
    return (
        await seed(database, alpha, ALPHA_CENTRE, ALPHA_POINT, "4280"),
        await seed(database, bravo, BRAVO_CENTRE, BRAVO_POINT, "4280"),
    )


async def test_the_read_api_sees_only_the_own_commune(
    both: tuple[Territory, Territory], database: Database
) -> None:
    alpha, bravo = both
    # Both communes are at the same version, and bravo's placements are cached first: the
    # process-wide cache must still keep them apart.
    with tenant_scope(bravo.commune.id):
        async with database.session() as session:
            assert await service.version(session) == 4
            placed = await service.locate_address(session, street="Rue de Bravo", postcode="4280")
            assert placed.street is not None and placed.street.id == bravo.streets["Rue de Bravo"]
    with tenant_scope(alpha.commune.id):
        async with database.session() as session:
            assert await service.version(session) == 4
            placed = await service.locate_address(session, street="Grand-Place", postcode="4280")
            assert placed.street is not None and placed.street.id == alpha.streets["Grand-Place"]
            assert placed.neighbourhood is not None and placed.neighbourhood.id == alpha.neighbourhood
            assert [z.id for z in placed.zones] == [alpha.zone]
            assert (
                await service.locate_address(session, street="Rue de Bravo", postcode="4280")
            ).street is None
            assert (await service.locate_point(session, *BRAVO_POINT)).neighbourhood is None
            assert (await service.locate_point(session, *BRAVO_POINT)).zones == ()
            assert not await service.point_in_zone(session, "centre", *BRAVO_POINT)
            assert await service.point_in_zone(session, "centre", *ALPHA_POINT)
            assert [n.id for n in await service.neighbourhoods(session, include_inactive=True)] == [
                alpha.neighbourhood
            ]
            assert [z.id for z in await service.zones(session)] == [alpha.zone]
            assert await service.neighbourhood(session, bravo.neighbourhood) is None
            assert await service.successors(session, bravo.neighbourhood) == []
            assert {s.id for s in await service.streets(session)} == set(alpha.streets.values())
            assert await service.resident_account_ids(
                session, neighbourhoods=[alpha.neighbourhood, bravo.neighbourhood]
            ) == [alpha.resident]
            assert await service.resident_account_ids(session, streets=list(bravo.streets.values())) == []
            with pytest.raises(CrossTenantAccess):
                await service.locate_address(
                    session, street="Grand-Place", postcode="4280", commune_id=bravo.commune.id
                )


async def counts(database: Database, commune: Commune) -> dict[str, Any]:
    """Every territory row of a commune, as the operator sees them."""
    with platform_scope("test: look at one commune's territory"):
        async with database.session() as session:
            return {
                model.__tablename__: sorted(
                    str(row)
                    for row in (
                        await session.execute(
                            select(model.__table__).where(model.__table__.c.tenant_id == commune.id)
                        )
                    ).all()
                )
                for model in TERRITORY_FACTORIES
            }


ATTACKS = {
    "rename_street": lambda s, a, b: actions.update_street(
        s, a.commune.id, b.streets["Grand-Place"], names={"fr": "Volée"}
    ),
    "delete_street": lambda s, a, b: actions.delete_street(s, a.commune.id, b.streets["Grand-Place"]),
    "list_bravo_street": lambda s, a, b: actions.create_neighbourhood(
        s, a.commune.id, names={"fr": "Pris"}, street_ids=[b.streets["Grand-Place"]]
    ),
    "update_neighbourhood": lambda s, a, b: actions.update_neighbourhood(
        s, a.commune.id, b.neighbourhood, names={"fr": "Pris"}
    ),
    "delete_neighbourhood": lambda s, a, b: actions.delete_neighbourhood(s, a.commune.id, b.neighbourhood),
    "split": lambda s, a, b: actions.split_neighbourhood(
        s,
        a.commune.id,
        b.neighbourhood,
        [
            actions.NewNeighbourhood({"fr": "A"}, polygon(ALPHA_CENTRE)),
            actions.NewNeighbourhood({"fr": "B"}, polygon(BRAVO_CENTRE)),
        ],
    ),
    "merge": lambda s, a, b: actions.merge_neighbourhoods(
        s, a.commune.id, [a.neighbourhood, b.neighbourhood], names={"fr": "Tout"}
    ),
    "update_zone": lambda s, a, b: actions.update_zone(s, a.commune.id, b.zone, names={"fr": "Pris"}),
    "delete_zone": lambda s, a, b: actions.delete_zone(s, a.commune.id, b.zone),
    # Naming bravo as the commune from alpha's scope:
    "create_street_in_bravo": lambda s, a, b: actions.create_street(
        s, b.commune.id, names={"fr": "Intruse"}, postcode="4280"
    ),
    "import_into_bravo": lambda s, a, b: actions.import_streets(s, b.commune.id, "Rue Intruse;4280\n"),
    "zone_in_bravo": lambda s, a, b: actions.create_zone(
        s, b.commune.id, key="x", names={"fr": "X"}, geometry=polygon(BRAVO_CENTRE)
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_actions_cannot_reach_the_other_commune(
    both: tuple[Territory, Territory], database: Database, attack: str
) -> None:
    alpha, bravo = both
    before = await counts(database, bravo.commune)
    alpha_before = await counts(database, alpha.commune)
    with (
        tenant_scope(alpha.commune.id),
        acting_as(SYSTEM),
        pytest.raises((NotFound, CrossTenantAccess, Invalid)) as refused,
    ):
        async with database.transaction() as session:
            await ATTACKS[attack](session, alpha, bravo)
    if isinstance(refused.value, Invalid):  # a bravo street offered to an alpha neighbourhood
        assert refused.value.field == "streets" and "n'existent plus" in refused.value.reason  # in French
    assert await counts(database, bravo.commune) == before
    assert await counts(database, alpha.commune) == alpha_before


# --- The pages -----------------------------------------------------------------------------


async def login(
    runtime: Any, client_for: ClientFactory, commune: Commune, *, kind: AccountKind, roles: tuple[str, ...]
) -> Any:
    with tenant_scope(commune.id), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            account = await identity.create_account(
                session, commune.id, display_name=f"{kind.value} of {commune.slug}", kind=kind, roles=roles
            )
            token = await open_session(session, account, Assurance.SUBSTANTIAL)
    client = client_for(f"{commune.slug}.test")
    client.cookies.set(SESSION_COOKIE, token, domain=f"{commune.slug}.test")
    return client, token


PAGES = [
    "/admin/territory",
    "/admin/territory/streets",
    "/admin/territory/neighbourhoods",
    "/admin/territory/neighbourhoods/new",
    "/admin/territory/neighbourhoods/merge",
    "/admin/territory/zones",
    "/admin/territory/zones/new",
    "/admin/territory/history",
]


async def test_pages_need_a_staff_member_of_the_commune(
    runtime: Any, client_for: ClientFactory, both: tuple[Territory, Territory]
) -> None:
    alpha, _ = both
    citizen, _ = await login(runtime, client_for, alpha.commune, kind=AccountKind.CITIZEN, roles=())
    other_staff, _ = await login(
        runtime, client_for, alpha.commune, kind=AccountKind.STAFF, roles=("news.editor",)
    )
    editor, token = await login(
        runtime, client_for, alpha.commune, kind=AccountKind.STAFF, roles=("territory.editor",)
    )
    anonymous = client_for("alpha.test")
    detail = [
        f"/admin/territory/streets/{alpha.streets['Grand-Place']}",
        f"/admin/territory/neighbourhoods/{alpha.neighbourhood}",
        f"/admin/territory/neighbourhoods/{alpha.neighbourhood}/split",
        f"/admin/territory/neighbourhoods/{alpha.neighbourhood}/outline.geojson",
        f"/admin/territory/zones/{alpha.zone}",
    ]
    for path in PAGES + detail:
        assert (await anonymous.get(path)).status_code == 401, path
        assert (await citizen.get(path)).status_code == 403, path
        assert (await other_staff.get(path)).status_code == 403, path
        assert (await editor.get(path)).status_code == 200, path
    # Posting without being staff deletes nothing either.
    for client, status in ((anonymous, 401), (citizen, 403), (other_staff, 403)):
        await client.get("/_probe/form")  # any form page gives the CSRF cookie
        response = await client.post(
            f"/admin/territory/zones/{alpha.zone}/delete",
            data={"_csrf_token": client.cookies.get("perron_csrf")},
        )
        assert response.status_code == status
    assert (await editor.get(f"/admin/territory/zones/{alpha.zone}")).status_code == 200
    # alpha's session cookie means nothing at bravo's address.
    stranger = client_for("bravo.test")
    stranger.cookies.set(SESSION_COOKIE, token, domain="bravo.test")
    assert (await stranger.get("/admin/territory")).status_code == 401


async def test_alphas_staff_never_see_or_change_bravos_territory(
    runtime: Any, client_for: ClientFactory, both: tuple[Territory, Territory], database: Database
) -> None:
    alpha, bravo = both
    editor, _ = await login(runtime, client_for, alpha.commune, kind=AccountKind.STAFF, roles=("admin",))
    before = await counts(database, bravo.commune)

    listing = await editor.get("/admin/territory/streets")
    assert "Rue de Alpha" in listing.text and "Rue de Bravo" not in listing.text
    assert str(bravo.streets["Grand-Place"]) not in listing.text
    history = await editor.get("/admin/territory/history")
    assert "staff of alpha" in history.text and "staff of bravo" not in history.text
    located = await editor.get("/admin/territory", params={"street": "Rue de Bravo", "postcode": "4280"})
    result = located.text.split('role="status"', 1)[1]  # the answer, below the form that repeats the query
    assert located.status_code == 200 and "Rue de Bravo" not in result and "Centre" not in result

    for path in [
        f"/admin/territory/streets/{bravo.streets['Grand-Place']}",
        f"/admin/territory/neighbourhoods/{bravo.neighbourhood}",
        f"/admin/territory/neighbourhoods/{bravo.neighbourhood}/split",
        f"/admin/territory/neighbourhoods/{bravo.neighbourhood}/outline.geojson",
        f"/admin/territory/neighbourhoods/{bravo.neighbourhood}/delete",
        f"/admin/territory/zones/{bravo.zone}",
        f"/admin/territory/zones/{bravo.zone}/outline.geojson",
        f"/admin/territory/zones/{bravo.zone}/delete",
    ]:
        response = await editor.get(path)
        assert response.status_code == 404, path
        assert "Bravo" not in response.text

    await editor.get("/admin/territory/streets")
    csrf = editor.cookies.get("perron_csrf")
    posts: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
        (
            f"/admin/territory/streets/{bravo.streets['Grand-Place']}",
            {"names.fr": "Volée", "postcode": "4280"},
            None,
        ),
        (f"/admin/territory/streets/{bravo.streets['Grand-Place']}/delete", {}, None),
        (
            f"/admin/territory/neighbourhoods/{bravo.neighbourhood}",
            {"names.fr": "Pris", "active": "on"},
            None,
        ),
        (f"/admin/territory/neighbourhoods/{bravo.neighbourhood}/delete", {}, None),
        (
            f"/admin/territory/neighbourhoods/{bravo.neighbourhood}/split",
            {"part1.names.fr": "A", "part2.names.fr": "B"},
            {
                "part1.geometry": (
                    "a.geojson",
                    json.dumps(polygon(ALPHA_CENTRE)).encode(),
                    "application/geo+json",
                ),
                "part2.geometry": (
                    "b.geojson",
                    json.dumps(polygon(BRAVO_CENTRE)).encode(),
                    "application/geo+json",
                ),
            },
        ),
        (f"/admin/territory/zones/{bravo.zone}", {"names.fr": "Pris"}, None),
        (f"/admin/territory/zones/{bravo.zone}/delete", {}, None),
    ]
    for path, data, files in posts:
        response = await editor.post(path, data={**data, "_csrf_token": csrf}, files=files)
        assert response.status_code == 404, path
    # A bravo id slipped into alpha's own forms: refused in words, nothing changes anywhere.
    sneaked = await editor.post(
        "/admin/territory/neighbourhoods/new",
        data={
            "names.fr": "Pris",
            "active": "on",
            "streets": [str(bravo.streets["Grand-Place"])],
            "_csrf_token": csrf,
        },
        files={"geometry": ("", b"", "application/octet-stream")},
    )
    assert sneaked.status_code == 400
    merged = await editor.post(
        "/admin/territory/neighbourhoods/merge",
        data={
            "first": str(alpha.neighbourhood),
            "second": str(bravo.neighbourhood),
            "names.fr": "Tout",
            "_csrf_token": csrf,
        },
    )
    assert merged.status_code == 400
    assert await counts(database, bravo.commune) == before
    with tenant_scope(alpha.commune.id):
        async with database.session() as session:
            assert await session.scalar(select(func.count()).select_from(Neighbourhood)) == 1


@pytest.mark.parametrize("lock", locks_available())
async def test_each_lock_alone_keeps_bravos_territory_out_of_alphas_pages_and_placements(
    runtime: Any, client_for: ClientFactory, both: tuple[Territory, Territory], database: Database, lock: str
) -> None:
    alpha, bravo = both
    editor, _ = await login(runtime, client_for, alpha.commune, kind=AccountKind.STAFF, roles=("admin",))
    await editor.get("/admin/territory/streets")
    csrf = editor.cookies.get("perron_csrf")
    before = await counts(database, bravo.commune)
    service.forget()  # placements are built again under the one lock left
    with only_lock(lock):
        for path in (
            f"/admin/territory/streets/{bravo.streets['Grand-Place']}",
            f"/admin/territory/neighbourhoods/{bravo.neighbourhood}",
            f"/admin/territory/zones/{bravo.zone}/outline.geojson",
        ):
            assert (await editor.get(path)).status_code == 404, path
        renamed = await editor.post(
            f"/admin/territory/streets/{bravo.streets['Grand-Place']}",
            data={"names.fr": "Volée", "postcode": "4280", "_csrf_token": csrf},
        )
        assert renamed.status_code == 404
        listing = await editor.get("/admin/territory/streets")
        assert "Rue de Alpha" in listing.text and "Rue de Bravo" not in listing.text
        with tenant_scope(alpha.commune.id):
            async with database.session() as session:
                assert (
                    await service.locate_address(session, street="Rue de Bravo", postcode="4280")
                ).street is None
                assert not await service.point_in_zone(session, "centre", *BRAVO_POINT)
    assert await counts(database, bravo.commune) == before
