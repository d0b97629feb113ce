"""Lock 1, the ORM: every statement of alpha's scope stays inside alpha."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import ProgrammingError

from perron.audit import AuditEntry
from perron.db.base import TENANT_TABLES
from perron.db.engine import Database
from perron.db.scope import CrossTenantAccess, NoTenantScope, platform_scope, tenant_scope
from perron.tenancy.models import Branding
from tests.conftest import POSTGRES
from tests.isolation.conftest import FACTORIES, Seeded, primary_key

MODELS = list(FACTORIES)


def test_every_tenant_table_is_attacked() -> None:
    assert {model.__tablename__ for model in FACTORIES} == TENANT_TABLES


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
async def test_reading_sees_only_the_own_commune(seeded: Seeded, database: Database, model) -> None:
    with tenant_scope(seeded.alpha):
        async with database.session() as session:
            rows = list(await session.scalars(select(model)))
            counted = await session.scalar(select(func.count()).select_from(model))
            by_key = await session.scalar(select(model).filter_by(**seeded.key(model, seeded.bravo)))
            by_get = await session.get(model, tuple(seeded.key(model, seeded.bravo).values()))
    assert rows and {row.tenant_id for row in rows} == {seeded.alpha}
    assert counted == len(rows)
    assert by_key is None
    assert by_get is None


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
async def test_bulk_update_and_delete_miss_the_other_commune(
    seeded: Seeded, database: Database, model
) -> None:
    bravo_key = seeded.key(model, seeded.bravo)
    # Set a column to its own value: a statement that would touch bravo's row if it ran.
    first_column = next(
        (column for column in model.__table__.columns if not column.primary_key),
        list(model.__table__.columns)[-1],
    )
    if model is AuditEntry and POSTGRES:
        # The audit log is append-only for the application's role: PostgreSQL refuses first.
        with tenant_scope(seeded.alpha), pytest.raises(ProgrammingError, match="permission denied"):
            async with database.transaction() as session:
                await session.execute(delete(model).filter_by(**bravo_key))
    else:
        with tenant_scope(seeded.alpha):
            async with database.transaction() as session:
                changed = await session.execute(
                    update(model).filter_by(**bravo_key).values({first_column.key: first_column})
                )
                removed = await session.execute(delete(model).filter_by(**bravo_key))
        assert changed.rowcount == 0
        assert removed.rowcount == 0
    with platform_scope("test: check bravo's row"):
        async with database.session() as session:
            assert await session.scalar(select(model).filter_by(**bravo_key)) is not None


async def test_a_forged_tenant_id_cannot_be_written(seeded: Seeded, database: Database) -> None:
    with tenant_scope(seeded.alpha), pytest.raises(CrossTenantAccess):
        async with database.transaction() as session:
            session.add(
                AuditEntry(
                    tenant_id=seeded.bravo, actor_kind="x", actor_label="x", action="x", object_type="x"
                )
            )
    row = {"id": uuid.uuid4(), "actor_kind": "x", "actor_label": "x", "action": "x", "object_type": "x"}
    for statement, parameters in (
        (insert(AuditEntry), [row | {"tenant_id": seeded.bravo}]),
        (insert(AuditEntry).values(row | {"tenant_id": seeded.bravo}), None),
        (
            insert(AuditEntry).values([row | {"tenant_id": seeded.alpha}, row | {"tenant_id": seeded.bravo}]),
            None,
        ),
    ):
        with tenant_scope(seeded.alpha), pytest.raises(CrossTenantAccess):
            async with database.transaction() as session:
                await session.execute(statement, parameters)


async def test_the_owner_cannot_be_changed(seeded: Seeded, database: Database) -> None:
    with tenant_scope(seeded.alpha), pytest.raises(CrossTenantAccess, match="cannot change"):
        async with database.transaction() as session:
            entry = await session.scalar(select(AuditEntry).limit(1))
            entry.tenant_id = seeded.bravo


async def test_new_rows_take_the_commune_in_scope(seeded: Seeded, database: Database) -> None:
    with tenant_scope(seeded.alpha):
        async with database.transaction() as session:
            entry = AuditEntry(actor_kind="x", actor_label="x", action="made.here", object_type="x")
            session.add(entry)
    assert entry.tenant_id == seeded.alpha


async def test_no_scope_touches_nothing(seeded: Seeded, database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(NoTenantScope):
            await session.execute(select(Branding))
        with pytest.raises(NoTenantScope):
            await session.execute(delete(AuditEntry))
    with pytest.raises(NoTenantScope):
        async with database.transaction() as session:
            session.add(AuditEntry(actor_kind="x", actor_label="x", action="x", object_type="x"))


async def test_core_statements_on_tenant_tables_are_refused(seeded: Seeded, database: Database) -> None:
    with tenant_scope(seeded.alpha):
        async with database.session() as session:
            with pytest.raises(CrossTenantAccess, match="Core statement"):
                await session.execute(select(AuditEntry.__table__))
            with pytest.raises(CrossTenantAccess, match="Core statement"):
                await session.execute(AuditEntry.__table__.delete())
            with pytest.raises(CrossTenantAccess, match="Core statement"):
                await session.execute(select(AuditEntry.__table__.c.action))
            with pytest.raises(CrossTenantAccess, match="Core statement"):
                await session.execute(
                    select(Branding).join(
                        AuditEntry.__table__, AuditEntry.__table__.c.tenant_id == Branding.tenant_id
                    )
                )
            # Columns of the ORM entity, and counts over it, are filtered rather than refused.
            actions = list(await session.scalars(select(AuditEntry.action)))
            assert actions


async def test_a_session_cannot_switch_commune_inside_a_transaction(
    seeded: Seeded, database: Database
) -> None:
    async with database.session() as session:
        with tenant_scope(seeded.alpha):
            await session.execute(select(Branding))
        with tenant_scope(seeded.bravo), pytest.raises(CrossTenantAccess, match="began in another scope"):
            await session.execute(select(Branding))


async def test_rows_remembered_from_another_scope_are_not_served(seeded: Seeded, database: Database) -> None:
    bravo_key = tuple(seeded.key(Branding, seeded.bravo).values())
    async with database.session() as session:
        with platform_scope("test: load everything"):
            everything = list(await session.scalars(select(Branding)))
            await session.commit()
        assert len(everything) == 2
        with tenant_scope(seeded.alpha):
            with pytest.raises(CrossTenantAccess):
                await session.get(Branding, bravo_key)  # identity map hit, no SQL
            rows = list(await session.scalars(select(Branding)))
    assert [primary_key(row) for row in rows] == [seeded.key(Branding, seeded.alpha)]


async def test_platform_scope_sees_every_commune(seeded: Seeded, database: Database) -> None:
    with platform_scope("test: operator view"):
        async with database.session() as session:
            owners = set(await session.scalars(select(Branding.tenant_id)))
    assert owners == {seeded.alpha, seeded.bravo}
