"""Applying tenants/ is idempotent, and a rejected apply leaves the database unchanged."""

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from perron.audit import AuditEntry, PlatformAuditEntry
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.tenancy import actions
from perron.tenancy.definitions import DefinitionError, Outcome, apply_definitions, load_definitions
from perron.tenancy.models import Branding, Commune, CommuneStatus, Domain, Intercommunale
from perron.tenancy.settings import CoreSettings, resolve
from tests.conftest import CONSOLE_HOST, ROOT, MakeCommune


async def apply(database: Database, folder: Path, **options: bool) -> list:
    with platform_scope("test: apply definitions"):
        async with database.transaction() as session:
            return await apply_definitions(
                session, load_definitions(folder), console_host=CONSOLE_HOST, **options
            )


async def snapshot(database: Database) -> dict:
    with platform_scope("test: snapshot"):
        async with database.session() as session:
            return {
                model.__tablename__: sorted(
                    str(row) for row in (await session.execute(select(model.__table__))).all()
                )
                for model in (Commune, Domain, Branding, Intercommunale, AuditEntry, PlatformAuditEntry)
            }


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants"
    shutil.copytree(ROOT / "tenants", folder)
    return folder


async def test_apply_creates_then_changes_nothing(database: Database, demo: Path) -> None:
    first = await apply(database, demo)
    assert {report.outcome for report in first} == {Outcome.CREATED}
    assert len(first) == 6
    before = await snapshot(database)
    second = await apply(database, demo)
    assert {report.outcome for report in second} == {Outcome.UNCHANGED}
    assert await snapshot(database) == before

    with platform_scope("test"):
        async with database.session() as session:
            hannut = await actions.get_commune(session, "hannut")
    assert hannut.status is CommuneStatus.ACTIVE
    assert hannut.names == {"fr": "Hannut", "nl": "Hannuit"}
    with tenant_scope(hannut.id):
        async with database.session() as session:
            contact = await resolve(session, hannut.id, "core", CoreSettings)
    assert contact.postal_address == "Hôtel de ville, 4280 Hannut"


async def test_apply_reports_what_changed(database: Database, demo: Path) -> None:
    await apply(database, demo)
    path = demo / "hannut" / "tenant.toml"
    path.write_text(
        path.read_text()
        .replace('primary_color = "#0b5e3c"', 'primary_color = "#123456"')
        .replace('"www.hannut.localhost"]', '"www.hannut.localhost", "hannuit.localhost"]')
    )
    reports = {report.name: report for report in await apply(database, demo)}
    hannut = reports["commune hannut"]
    assert hannut.outcome is Outcome.UPDATED
    assert "branding" in hannut.changes
    assert "domain hannuit.localhost added" in hannut.changes
    assert reports["commune andenne"].outcome is Outcome.UNCHANGED


async def test_lifecycle_in_the_database_wins_and_is_reported(database: Database, demo: Path) -> None:
    await apply(database, demo)
    with platform_scope("test"):
        async with database.transaction() as session:
            commune = await actions.get_commune(session, "andenne")
            await actions.set_status(session, commune, CommuneStatus.SUSPENDED)
    reports = {report.name: report for report in await apply(database, demo)}
    andenne = reports["commune andenne"]
    assert andenne.outcome is Outcome.UNCHANGED
    assert any(
        "status is suspended in the database and active in the file" in remark for remark in andenne.remarks
    )


async def test_a_rejected_apply_changes_nothing(
    database: Database, demo: Path, make_commune: MakeCommune
) -> None:
    # A commune that is not in the files already holds a domain andenne's file asks for.
    await make_commune("ciney", domains=["andenne.localhost"], nis_code="91030")
    before = await snapshot(database)
    with pytest.raises(DefinitionError) as caught:
        await apply(database, demo)
    assert caught.value.problems == [
        f"{demo / 'andenne' / 'tenant.toml'}: andenne.localhost is already a domain of commune 'ciney'"
    ]
    assert await snapshot(database) == before


async def test_create_only_leaves_existing_communes_alone(database: Database, demo: Path) -> None:
    await apply(database, demo)
    with tenant_scope(await _commune_id(database, "hannut")):
        async with database.transaction() as session:
            await actions.update_branding(
                session, await _commune_id(database, "hannut"), palette={"primary_color": "#222222"}
            )
    reports = await apply(database, demo, create_only=True)
    assert {report.outcome for report in reports} == {Outcome.UNCHANGED}
    with platform_scope("test"):
        async with database.session() as session:
            branding = await session.scalar(
                select(Branding)
                .join(Commune, Commune.id == Branding.tenant_id)
                .where(Commune.slug == "hannut")
            )
    assert branding is not None and branding.primary_color == "#222222"


async def _commune_id(database: Database, slug: str):
    with platform_scope("test"):
        async with database.session() as session:
            return (await actions.get_commune(session, slug)).id
