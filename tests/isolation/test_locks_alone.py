"""Each lock, with the two others switched off, still stops the attack on its own.

And with all three off the same attacks succeed: proof that these tests can fail.
"""

from __future__ import annotations

import pytest
from advanced_alchemy.exceptions import NotFoundError, RepositoryError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from perron.audit import AuditEntry
from perron.db.engine import Database
from perron.db.scope import IsolationError, platform_scope, tenant_scope
from perron.tenancy import actions
from perron.tenancy.models import Branding
from tests.isolation.conftest import FACTORIES, Seeded, locks_available, only_lock, repository_for

BLOCKED = (IsolationError, NotFoundError, RepositoryError, DBAPIError)


@pytest.mark.parametrize("lock", locks_available())
@pytest.mark.parametrize("model", list(FACTORIES), ids=lambda m: m.__name__)
async def test_reading_by_key_is_stopped_by_each_lock_alone(
    seeded: Seeded, database: Database, lock: str, model
) -> None:
    bravo_key = seeded.key(model, seeded.bravo)
    with only_lock(lock), tenant_scope(seeded.alpha):
        async with database.session() as session:
            try:
                found = await repository_for(model, session).get_one_or_none(**bravo_key)
            except IsolationError:
                found = None
    assert found is None


@pytest.mark.parametrize("lock", locks_available())
async def test_listing_is_stopped_by_each_lock_alone(seeded: Seeded, database: Database, lock: str) -> None:
    with only_lock(lock), tenant_scope(seeded.alpha):
        async with database.session() as session:
            try:
                owners = {row.tenant_id for row in await repository_for(AuditEntry, session).get_many()}
            except IsolationError:
                owners = set()
    assert seeded.bravo not in owners


@pytest.mark.parametrize("lock", locks_available())
async def test_changing_another_commune_is_stopped_by_each_lock_alone(
    seeded: Seeded, database: Database, lock: str
) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    with only_lock(lock), tenant_scope(seeded.alpha):
        with pytest.raises(BLOCKED):
            async with database.transaction() as session:
                entry = await repository_for(AuditEntry, session).get(bravo_id)
                entry.action = "stolen"
        with pytest.raises(BLOCKED):
            async with database.transaction() as session:
                await actions.update_branding(session, seeded.bravo, palette={"primary_color": "#000000"})
    with platform_scope("test: inspect bravo"):
        async with database.session() as session:
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.id == bravo_id))
            branding = await session.scalar(select(Branding).where(Branding.tenant_id == seeded.bravo))
    assert entry is not None and entry.action == "seed.row"
    assert branding is not None and branding.primary_color != "#000000"


async def test_with_every_lock_off_the_same_attacks_succeed(seeded: Seeded, database: Database) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    with only_lock(None), tenant_scope(seeded.alpha):
        async with database.session() as session:
            stolen = await repository_for(AuditEntry, session).get(bravo_id)
    assert stolen.tenant_id == seeded.bravo
