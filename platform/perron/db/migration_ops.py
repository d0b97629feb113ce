"""Alembic operations that put tables under row-level security (PostgreSQL only).

``op.enable_tenant_isolation("table")`` in a migration adds the isolation policy of
:mod:`perron.db.rls`; on SQLite it does nothing. Autogenerate writes it by itself after
every new tenant-owned table (see ``migrations/env.py``), so it cannot be forgotten, and
``tests/schema`` fails if a tenant table reaches PostgreSQL without it.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import MigrateOperation, Operations

from perron.db.rls import drop_policy_statements, policy_statements, write_only_policy_statements


@Operations.register_operation("enable_tenant_isolation")
class EnableTenantIsolationOp(MigrateOperation):
    def __init__(self, table: str, column: str = "tenant_id") -> None:
        self.table = table
        self.column = column

    @classmethod
    def enable_tenant_isolation(cls, operations: Operations, table: str, column: str = "tenant_id") -> Any:
        return operations.invoke(cls(table, column))

    def reverse(self) -> DisableTenantIsolationOp:
        return DisableTenantIsolationOp(self.table)


@Operations.register_operation("disable_tenant_isolation")
class DisableTenantIsolationOp(MigrateOperation):
    def __init__(self, table: str) -> None:
        self.table = table

    @classmethod
    def disable_tenant_isolation(cls, operations: Operations, table: str) -> Any:
        return operations.invoke(cls(table))

    def reverse(self) -> EnableTenantIsolationOp:
        return EnableTenantIsolationOp(self.table)


@Operations.register_operation("enable_write_only_isolation")
class EnableWriteOnlyIsolationOp(MigrateOperation):
    def __init__(self, table: str, column: str) -> None:
        self.table = table
        self.column = column

    @classmethod
    def enable_write_only_isolation(cls, operations: Operations, table: str, column: str) -> Any:
        return operations.invoke(cls(table, column))


def _run(operations: Operations, statements: list[str]) -> None:
    if operations.get_bind().dialect.name != "postgresql":
        return
    for statement in statements:
        operations.execute(statement)


@Operations.implementation_for(EnableTenantIsolationOp)
def _enable(operations: Operations, operation: EnableTenantIsolationOp) -> None:
    _run(operations, policy_statements(operation.table, operation.column))


@Operations.implementation_for(DisableTenantIsolationOp)
def _disable(operations: Operations, operation: DisableTenantIsolationOp) -> None:
    _run(operations, drop_policy_statements(operation.table))


@Operations.implementation_for(EnableWriteOnlyIsolationOp)
def _enable_write_only(operations: Operations, operation: EnableWriteOnlyIsolationOp) -> None:
    _run(operations, write_only_policy_statements(operation.table, operation.column))


@renderers.dispatch_for(EnableTenantIsolationOp)
def _render_enable(context: AutogenContext, operation: EnableTenantIsolationOp) -> str:
    return f"op.enable_tenant_isolation({operation.table!r})"


@renderers.dispatch_for(DisableTenantIsolationOp)
def _render_disable(context: AutogenContext, operation: DisableTenantIsolationOp) -> str:
    return f"op.disable_tenant_isolation({operation.table!r})"
