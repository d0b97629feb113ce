"""The composite-key rule, checked on table definitions.

In a tenant-owned table, ``tenant_id`` leads the primary key, every unique constraint and
unique index, and every foreign key; a foreign key to another tenant-owned table is
composite, ``(tenant_id, ...) -> (tenant_id, ...)``, so no row can point into another
commune. A column named ``tenant_id`` is reserved for tenant-owned tables, and a platform
table may not point into a tenant-owned one.
"""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, Index, MetaData, Table, UniqueConstraint


def _lead(columns: list[str]) -> bool:
    return bool(columns) and columns[0] == "tenant_id"


def schema_problems(
    metadata: MetaData, tenant_tables: set[str], communes_table: str = "communes"
) -> list[str]:
    problems: list[str] = []
    for table in metadata.sorted_tables:
        tenant = table.name in tenant_tables
        if "tenant_id" in table.c and not tenant:
            problems.append(
                f"{table.name}: has a tenant_id column but is not declared tenant-owned (TenantOwned)"
            )
        if not tenant:
            problems += _platform_table_problems(table, tenant_tables)
            continue
        pk = [column.name for column in table.primary_key.columns]
        if not _lead(pk):
            problems.append(f"{table.name}: primary key {pk} does not start with tenant_id")
        if table.c.get("tenant_id") is not None and table.c.tenant_id.nullable:
            problems.append(f"{table.name}: tenant_id may be NULL")
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                columns = [column.name for column in constraint.columns]
                if not _lead(columns):
                    problems.append(
                        f"{table.name}: unique constraint {columns} does not start with tenant_id"
                    )
        for index in table.indexes:
            if isinstance(index, Index) and index.unique:
                columns = [column.name for column in index.columns]
                if not _lead(columns):
                    problems.append(
                        f"{table.name}: unique index {index.name} {columns} does not start with tenant_id"
                    )
        for column in table.columns:
            if column.unique and column.name != "tenant_id":
                problems.append(f"{table.name}: column {column.name} is unique on its own, not per commune")
        for fk in table.foreign_key_constraints:
            problems += _tenant_fk_problems(table, fk, tenant_tables, communes_table)
    return problems


def _tenant_fk_problems(
    table: Table, fk: ForeignKeyConstraint, tenant_tables: set[str], communes_table: str
) -> list[str]:
    local = [column.name for column in fk.columns]
    target = fk.referred_table.name
    remote = [element.column.name for element in fk.elements]
    if target == communes_table and local == ["tenant_id"] and remote == ["id"]:
        return []
    if not _lead(local):
        return [f"{table.name}: foreign key {local} -> {target} does not start with tenant_id"]
    if target in tenant_tables and remote[:1] != ["tenant_id"]:
        return [f"{table.name}: foreign key {local} -> {target}{remote} does not match on tenant_id"]
    if target not in tenant_tables:
        return [
            f"{table.name}: foreign key {local} -> {target} points to a platform table other than communes"
        ]
    return []


def _platform_table_problems(table: Table, tenant_tables: set[str]) -> list[str]:
    return [
        f"{table.name}: platform table points into tenant-owned table {fk.referred_table.name}"
        for fk in table.foreign_key_constraints
        if fk.referred_table.name in tenant_tables
    ]
