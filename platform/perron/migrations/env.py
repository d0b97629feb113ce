"""Alembic environment: migrations run as the schema owner, in the platform scope."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import create_engine, text

import perron.db.migration_ops  # noqa: F401  (registers op.enable_tenant_isolation)
from perron.db.base import TENANT_TABLES
from perron.db.migrate import compare_type, include_object
from perron.db.migration_ops import EnableTenantIsolationOp
from perron.db.rls import SCOPE_SETTING
from perron.models import metadata

config = context.config


def add_tenant_isolation(_context: Any, _revision: Any, directives: list[Any]) -> None:
    """After every new tenant-owned table, autogenerate writes its row-level security."""
    script = directives[0]
    for upgrade_ops in script.upgrade_ops_list:
        additions = []
        for operation in upgrade_ops.ops:
            if isinstance(operation, ops.CreateTableOp) and operation.table_name in TENANT_TABLES:
                additions.append(EnableTenantIsolationOp(operation.table_name))
        upgrade_ops.ops.extend(additions)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write advanced-alchemy's portable types by name, not as their dialect variants."""
    if type_ != "type":
        return False
    if isinstance(obj, GUID):
        return "advanced_alchemy.types.GUID(length=16)"
    if isinstance(obj, DateTimeUTC):
        return "advanced_alchemy.types.DateTimeUTC(timezone=True)"
    if isinstance(obj, sa.JSON) and getattr(obj, "_variant_mapping", None):
        return "advanced_alchemy.types.JsonB"
    return False


def on_version_apply(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    on_step = config.attributes.get("on_step")
    if on_step:
        doc = getattr(step.up_revision, "doc", "") or ""
        on_step(f"{step.up_revision_id} {doc}".strip())


def run_migrations() -> None:
    url = config.attributes["perron_url"]
    engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Row-level security is forced even on the owner: migrations act for all communes.
            connection.execute(text("SELECT set_config(:name, 'platform', false)"), {"name": SCOPE_SETTING})
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=compare_type,
            include_object=include_object,
            render_item=render_item,
            process_revision_directives=add_tenant_isolation,
            on_version_apply=on_version_apply,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Perron runs migrations against a database; offline SQL generation is not supported.")
run_migrations()
