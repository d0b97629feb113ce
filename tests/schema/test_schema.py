"""The schema keeps communes apart by construction, and the migrations build exactly it."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
)

from perron.db import migrate
from perron.db.base import TENANT_TABLES
from perron.models import metadata
from tests.schema.lint import schema_problems


def test_every_tenant_table_follows_the_composite_key_rule() -> None:
    assert TENANT_TABLES  # the registry is filled as models are declared
    assert schema_problems(metadata, TENANT_TABLES) == []


def test_the_lint_catches_each_kind_of_mistake() -> None:
    bad = MetaData()
    Table("communes", bad, Column("id", Integer, primary_key=True))
    Table(
        "platform_things",
        bad,
        Column("id", Integer, primary_key=True),
        Column("tenant_id", Integer),
        Column("note_id", Integer, ForeignKey("notes.id")),
    )
    Table(
        "notes",
        bad,
        Column("id", Integer, primary_key=True),
        Column("tenant_id", Integer, nullable=True),
        Column("slug", String, unique=True),
        UniqueConstraint("slug", "tenant_id"),
    )
    Table(
        "replies",
        bad,
        Column("tenant_id", Integer, ForeignKey("communes.id"), primary_key=True),
        Column("id", Integer, primary_key=True),
        Column("note_id", Integer),
        Column("flag", Boolean),
        ForeignKeyConstraint(["note_id"], ["notes.id"]),
    )
    Table(
        "votes",
        bad,
        Column("tenant_id", Integer, primary_key=True),
        Column("id", Integer, primary_key=True),
        Column("reply_id", Integer),
        ForeignKeyConstraint(["tenant_id", "reply_id"], ["replies.id", "replies.tenant_id"]),
    )
    found = schema_problems(bad, {"notes", "replies", "votes"})
    expected = [
        "platform_things: has a tenant_id column but is not declared tenant-owned",
        "platform_things: platform table points into tenant-owned table notes",
        "notes: primary key ['id'] does not start with tenant_id",
        "notes: tenant_id may be NULL",
        "notes: unique constraint ['slug', 'tenant_id'] does not start with tenant_id",
        "notes: column slug is unique on its own",
        "replies: foreign key ['note_id'] -> notes does not start with tenant_id",
        "votes: foreign key ['tenant_id', 'reply_id'] -> replies['id', 'tenant_id'] does not match",
    ]
    for problem in expected:
        assert any(message.startswith(problem) for message in found), (problem, found)


def test_migrations_match_the_models(settings) -> None:
    """Autogenerate finds nothing to do after `upgrade` from an empty database."""
    engine = create_engine(migrate.sync_url(settings.database_owner))
    with engine.connect() as connection:
        assert migrate.drift(connection, metadata) == []
    engine.dispose()


def test_the_schema_is_at_every_head(settings) -> None:
    assert migrate.current_heads(settings) == migrate.script_heads(settings)
    assert not migrate.pending(settings)
    assert migrate.missing_heads(settings, set()) == migrate.script_heads(settings)


def test_upgrading_again_applies_nothing(settings) -> None:
    assert migrate.upgrade(settings) == []


@pytest.mark.postgres
def test_every_tenant_table_is_under_row_level_security(settings) -> None:
    from sqlalchemy import text

    engine = create_engine(migrate.sync_url(settings.database_owner))
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname) AS policies "
                "FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid "
                "WHERE c.relname = ANY(:tables) GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity"
            ),
            {"tables": sorted(TENANT_TABLES)},
        ).all()
    engine.dispose()
    assert {row.relname for row in rows} == TENANT_TABLES
    assert all(row.relrowsecurity and row.relforcerowsecurity and row.policies == 1 for row in rows), rows
