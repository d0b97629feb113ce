"""Lock 2, PostgreSQL row-level security: raw SQL under the application's role."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from perron.db.base import TENANT_TABLES
from perron.db.engine import Database, IsolationNotEnforced
from perron.db.scope import platform_scope, tenant_scope
from tests.isolation.conftest import Seeded

pytestmark = pytest.mark.postgres
TABLES = sorted(TENANT_TABLES)


@pytest.mark.parametrize("table", TABLES)
async def test_raw_select_sees_only_the_own_commune(seeded: Seeded, database: Database, table: str) -> None:
    with tenant_scope(seeded.alpha):
        async with database.session() as session:
            owners = set((await session.execute(text(f"SELECT tenant_id FROM {table}"))).scalars())
            by_id = (
                await session.execute(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :b"), {"b": seeded.bravo}
                )
            ).scalar()
    assert owners == {seeded.alpha}
    assert by_id == 0


@pytest.mark.parametrize("table", TABLES)
async def test_raw_writes_cannot_reach_the_other_commune(
    seeded: Seeded, database: Database, table: str
) -> None:
    with tenant_scope(seeded.alpha):
        async with database.transaction() as session:
            if table != "audit_entries":  # append-only: the role may not update or delete it at all
                updated = await session.execute(
                    text(f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = :b"),
                    {"b": seeded.bravo},
                )
                deleted = await session.execute(
                    text(f"DELETE FROM {table} WHERE tenant_id = :b"), {"b": seeded.bravo}
                )
                assert (updated.rowcount, deleted.rowcount) == (0, 0)
    with platform_scope("test: count bravo's rows"):
        async with database.session() as session:
            remaining = (
                await session.execute(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :b"), {"b": seeded.bravo}
                )
            ).scalar()
    assert remaining >= 1


async def test_raw_insert_for_another_commune_violates_the_policy(seeded: Seeded, database: Database) -> None:
    with tenant_scope(seeded.alpha), pytest.raises(DBAPIError, match="row-level security"):
        async with database.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO module_activations (tenant_id, module, enabled, updated_at) "
                    "VALUES (:b, 'stolen', true, now())"
                ),
                {"b": seeded.bravo},
            )


async def test_moving_a_row_to_another_commune_violates_the_policy(
    seeded: Seeded, database: Database
) -> None:
    with tenant_scope(seeded.alpha), pytest.raises(DBAPIError, match="row-level security"):
        async with database.transaction() as session:
            await session.execute(text("UPDATE module_activations SET tenant_id = :b"), {"b": seeded.bravo})


async def test_without_scope_raw_sql_sees_nothing(seeded: Seeded, database: Database) -> None:
    async with database.session() as session:
        for table in TABLES:
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0


async def test_setting_another_commune_mid_transaction_is_refused(seeded: Seeded, database: Database) -> None:
    """The application role may change the setting, but lock 1 refuses a session whose
    scope no longer matches the one its transaction began with."""
    with tenant_scope(seeded.alpha):
        async with database.session() as session:
            await session.execute(text("SELECT 1"))
            with tenant_scope(seeded.bravo), pytest.raises(Exception, match="another scope"):
                await session.execute(text("SELECT tenant_id FROM brandings"))


async def test_the_outbox_takes_jobs_but_only_the_platform_reads_it(
    seeded: Seeded, database: Database
) -> None:
    insert = text(
        "INSERT INTO outbox_messages (id, commune_id, job, queue, arguments, created_at, relay_attempts) "
        "VALUES (:id, :commune, 'x', 'default', '{}', now(), 0)"
    )
    with tenant_scope(seeded.alpha):
        async with database.transaction() as session:
            await session.execute(insert, {"id": uuid.uuid4(), "commune": seeded.alpha})
            assert (await session.execute(text("SELECT count(*) FROM outbox_messages"))).scalar() == 0
    with tenant_scope(seeded.alpha), pytest.raises(DBAPIError, match="row-level security"):
        async with database.transaction() as session:
            await session.execute(insert, {"id": uuid.uuid4(), "commune": seeded.bravo})
    with platform_scope("test: relay view"):
        async with database.session() as session:
            assert (await session.execute(text("SELECT count(*) FROM outbox_messages"))).scalar() == 1


async def test_the_audit_log_is_append_only_for_the_application(seeded: Seeded, database: Database) -> None:
    with tenant_scope(seeded.alpha), pytest.raises(ProgrammingError, match="permission denied"):
        async with database.transaction() as session:
            await session.execute(text("DELETE FROM audit_entries"))


async def test_the_owner_role_is_refused_as_the_application_role(settings) -> None:
    owner = Database(settings.database_owner, pooled=False)
    try:
        with pytest.raises(IsolationNotEnforced, match="owns table"):
            await owner.verify_isolation()
    finally:
        await owner.dispose()
    app = Database(settings.database, pooled=False)
    try:
        await app.verify_isolation()
    finally:
        await app.dispose()
