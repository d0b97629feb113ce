"""Changes to communes: validated first, audited, and nothing half-written when refused."""

import pytest
from sqlalchemy import func, select

from perron.audit import AuditEntry, acting_as, command_line_actor
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.i18n import using_language
from perron.tenancy import actions
from perron.tenancy.models import Branding, Commune, CommuneStatus, Domain
from tests.conftest import CONSOLE_HOST, MakeCommune


async def count(database: Database, model: type) -> int:
    with platform_scope("test: count rows"):
        async with database.session() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_creating_a_commune_creates_domains_branding_and_an_audit_entry(database: Database) -> None:
    with acting_as(command_line_actor()), platform_scope("test"):
        async with database.transaction() as session:
            commune = await actions.create_commune(
                session,
                slug="hannut",
                nis_code="64034",
                names={"fr": "Hannut", "nl": "Hannuit"},
                languages=["fr", "nl"],
                domains=["Hannut.test.", "www.hannut.test"],
                console_host=CONSOLE_HOST,
            )
    with tenant_scope(commune.id):
        async with database.session() as session:
            domains = await actions.commune_domains(session, commune.id)
            entries = list(await session.scalars(select(AuditEntry)))
            branding = await session.scalar(select(Branding))
    assert [(d.host, d.is_primary) for d in domains] == [("hannut.test", True), ("www.hannut.test", False)]
    assert branding is not None
    assert [entry.action for entry in entries] == ["commune.create"]
    assert entries[0].actor_label.startswith("cli:")
    assert entries[0].platform_scope is True
    assert commune.status is CommuneStatus.PROVISIONING


@pytest.mark.parametrize(
    ("overrides", "error", "says"),
    [
        ({"slug": "alpha"}, Conflict, "slug 'alpha'"),
        ({"nis_code": "11111"}, Conflict, "NIS code 11111 already belongs to commune 'alpha'"),
        ({"domains": ["alpha.test"]}, Conflict, "alpha.test is already a domain of commune 'alpha'"),
        ({"domains": ["ALPHA.test:80"]}, Invalid, r"domains\[0\]: .* without http:// or a port"),
        ({"domains": [CONSOLE_HOST]}, Conflict, "console"),
        ({"domains": ["x.test", "X.test."]}, Invalid, "listed twice"),
        ({"nis_code": "1234"}, Invalid, "five digits"),
        ({"languages": ["fr", "nl"]}, Invalid, "missing for nl"),
        ({"intercommunale": "nope"}, NotFound, "intercommunale"),
        ({"domains": []}, Invalid, "at least one domain"),
    ],
)
async def test_refused_creations_write_nothing(
    database: Database, make_commune: MakeCommune, overrides: dict, error: type, says: str
) -> None:
    await make_commune("alpha", nis_code="11111")
    before = (
        await count(database, Commune),
        await count(database, Domain),
        await count(database, AuditEntry),
    )
    values = {
        "slug": "bravo",
        "nis_code": "22222",
        "names": {"fr": "Bravo"},
        "languages": ["fr"],
        "domains": ["bravo.test"],
    } | overrides
    with using_language("en"), platform_scope("test"), pytest.raises(error, match=says):
        async with database.transaction() as session:
            await actions.create_commune(session, console_host=CONSOLE_HOST, **values)
    after = (await count(database, Commune), await count(database, Domain), await count(database, AuditEntry))
    assert after == before


async def test_lifecycle_moves_and_refusals(database: Database, make_commune: MakeCommune) -> None:
    await make_commune("alpha")
    with platform_scope("test"):
        async with database.transaction() as session:
            commune = await actions.get_commune(session, "alpha")
            assert await actions.set_status(
                session, commune, CommuneStatus.SUSPENDED, notice={"fr": "Maintenance jusqu'à lundi"}
            )
            assert commune.status_notice == {"fr": "Maintenance jusqu'à lundi"}
            assert not await actions.set_status(session, commune, CommuneStatus.SUSPENDED)
            assert await actions.set_status(session, commune, CommuneStatus.ACTIVE)
            assert commune.status_notice == {}
            await actions.set_status(session, commune, CommuneStatus.ARCHIVED)
        async with database.transaction() as session:
            commune = await actions.get_commune(session, "alpha")
            with pytest.raises(Conflict, match="archived is final"):
                await actions.set_status(session, commune, CommuneStatus.ACTIVE)
    with tenant_scope(commune.id):
        async with database.session() as session:
            actions_logged = list(
                await session.scalars(select(AuditEntry.action).order_by(AuditEntry.occurred_at))
            )
    assert actions_logged[-3:] == ["commune.suspend", "commune.activate", "commune.archive"]


async def test_domains_add_primary_and_remove(database: Database, make_commune: MakeCommune) -> None:
    await make_commune("alpha")
    with platform_scope("test"):
        async with database.transaction() as session:
            commune = await actions.get_commune(session, "alpha")
            alias = await actions.add_domain(session, commune, "www.alpha.test")
            assert alias is not None and not alias.is_primary
            assert await actions.add_domain(session, commune, "WWW.alpha.test.") is None
            assert await actions.set_primary_domain(session, commune, "www.alpha.test")
            with pytest.raises(Conflict, match="primary domain"):
                await actions.remove_domain(session, commune, "www.alpha.test")
            await actions.remove_domain(session, commune, "alpha.test")
            with pytest.raises(NotFound):
                await actions.remove_domain(session, commune, "gone.test")
            hosts = [(d.host, d.is_primary) for d in await actions.commune_domains(session, commune.id)]
    assert hosts == [("www.alpha.test", True)]


async def test_branding_refuses_unreadable_palettes(database: Database, make_commune: MakeCommune) -> None:
    commune = await make_commune("alpha")
    with tenant_scope(commune.id):
        async with database.transaction() as session:
            with pytest.raises(Invalid, match="primary_text_color #ffffff on primary_color #ffff00"):
                await actions.update_branding(session, commune.id, palette={"primary_color": "#ffff00"})
            with pytest.raises(Invalid, match="font"):
                await actions.update_branding(session, commune.id, font="comic-sans")
            assert await actions.update_branding(session, commune.id, palette={"primary_color": "#003366"})
            assert not await actions.update_branding(
                session, commune.id, palette={"primary_color": "#003366"}
            )
        async with database.session() as session:
            branding = await session.scalar(select(Branding))
            entries = list(
                await session.scalars(select(AuditEntry).where(AuditEntry.action == "branding.update"))
            )
    assert branding is not None and branding.primary_color == "#003366"
    assert entries[0].changes == {"primary_color": ["#1f4e79", "#003366"]}
