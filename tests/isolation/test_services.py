"""Lock 3, the services: alpha's scope cannot act on bravo through any action or repository."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from advanced_alchemy.exceptions import NotFoundError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import AuditEntry
from perron.db.engine import Database
from perron.db.scope import CrossTenantAccess, platform_scope, tenant_scope
from perron.tenancy import actions, settings
from perron.tenancy.models import Commune, CommuneStatus
from tests.isolation.conftest import FACTORIES, Seeded, repository_for

Attack = Callable[[AsyncSession, Commune], Awaitable[Any]]

ACTIONS: dict[str, Attack] = {
    "get_commune": lambda s, bravo: actions.get_commune(s, "bravo"),
    "update_commune": lambda s, bravo: actions.update_commune(s, bravo, names={"fr": "Pris"}),
    "set_status": lambda s, bravo: actions.set_status(s, bravo, CommuneStatus.SUSPENDED),
    "add_domain": lambda s, bravo: actions.add_domain(s, bravo, "stolen.test"),
    "set_primary_domain": lambda s, bravo: actions.set_primary_domain(s, bravo, "bravo.test"),
    "remove_domain": lambda s, bravo: actions.remove_domain(s, bravo, "bravo.test"),
    "update_branding": lambda s, bravo: actions.update_branding(
        s, bravo.id, palette={"primary_color": "#000000"}
    ),
    "set_module_enabled": lambda s, bravo: actions.set_module_enabled(s, bravo.id, "news", False),
    "update_commune_settings": lambda s, bravo: actions.update_commune_settings(s, bravo.id, "core", {}),
    "resolve_settings": lambda s, bravo: settings.resolve(s, bravo.id, "core"),
    "read_layers": lambda s, bravo: settings.read_layers(s, bravo.id, "core"),
}


async def bravo_commune(database: Database) -> Commune:
    with platform_scope("test"):
        async with database.session() as session:
            commune = await session.scalar(select(Commune).where(Commune.slug == "bravo"))
    assert commune is not None
    return commune


async def audit_count(database: Database, tenant_id) -> int:
    with tenant_scope(tenant_id):
        async with database.session() as session:
            return len(list(await session.scalars(select(AuditEntry))))


@pytest.mark.parametrize("name", list(ACTIONS))
async def test_actions_refuse_another_commune(seeded: Seeded, database: Database, name: str) -> None:
    bravo = await bravo_commune(database)
    before = await audit_count(database, seeded.bravo)
    with tenant_scope(seeded.alpha), pytest.raises(CrossTenantAccess):
        async with database.transaction() as session:
            await ACTIONS[name](session, bravo)
    assert await audit_count(database, seeded.bravo) == before


@pytest.mark.parametrize("model", list(FACTORIES), ids=lambda m: m.__name__)
async def test_repositories_find_nothing_of_another_commune(
    seeded: Seeded, database: Database, model
) -> None:
    bravo_key = seeded.key(model, seeded.bravo)
    with tenant_scope(seeded.alpha):
        async with database.session() as session:
            repository = repository_for(model, session)
            assert await repository.get_one_or_none(**bravo_key) is None
            listed = await repository.get_many()
            assert {row.tenant_id for row in listed} == {seeded.alpha}
            assert await repository.count() == len(listed)
            if "id" in bravo_key:
                with pytest.raises(NotFoundError):
                    await repository.get(bravo_key["id"])
                with pytest.raises(NotFoundError):
                    await repository.delete(bravo_key["id"])


async def test_repository_update_of_a_forged_object_is_refused(seeded: Seeded, database: Database) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    forged = AuditEntry(
        id=bravo_id, tenant_id=seeded.bravo, action="forged", actor_kind="x", actor_label="x", object_type="x"
    )
    with tenant_scope(seeded.alpha), pytest.raises(CrossTenantAccess):
        async with database.transaction() as session:
            await repository_for(AuditEntry, session).update(forged)
    without_owner = AuditEntry(id=bravo_id, action="forged")
    with tenant_scope(seeded.alpha), pytest.raises(NotFoundError):
        async with database.transaction() as session:
            await repository_for(AuditEntry, session).update(without_owner)
    with platform_scope("test"):
        async with database.session() as session:
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.id == bravo_id))
    assert entry is not None and entry.action == "seed.row"


async def test_actions_work_for_the_own_commune_and_for_the_platform(
    seeded: Seeded, database: Database
) -> None:
    with tenant_scope(seeded.alpha):
        async with database.transaction() as session:
            assert await actions.update_branding(session, seeded.alpha, palette={"primary_color": "#003366"})
    bravo = await bravo_commune(database)
    with platform_scope("test: operator fixes bravo"):
        async with database.transaction() as session:
            assert await actions.add_domain(session, bravo, "www.bravo.test") is not None
