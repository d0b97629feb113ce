"""Preparing and emptying a test database (SQLite or PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from perron.config import Settings
from perron.db import migrate
from perron.models import metadata
from perron.modules.registry import registry


def reset_schema(settings: Settings) -> None:
    """Start from an empty schema and apply every migration (platform and modules)."""
    registry.load_installed()
    if settings.database.get_backend_name() == "postgresql":
        engine = create_engine(migrate.sync_url(settings.database_owner))
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
            connection.execute(text("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        engine.dispose()
    migrate.upgrade(settings)


def wipe(settings: Settings) -> None:
    """Empty every table, as the schema owner, so nothing of one test reaches the next."""
    engine = create_engine(migrate.sync_url(settings.database_owner))
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    with engine.begin() as connection:
        if settings.database.get_backend_name() == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - names from the models
    engine.dispose()
