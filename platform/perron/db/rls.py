"""Lock 2 of 3: PostgreSQL row-level security on every tenant-owned table.

Each transaction starts by writing its scope into two settings local to the transaction:
``perron.tenant_id`` and ``perron.scope``. Every tenant-owned table carries one policy that
lets a row through only when its ``tenant_id`` equals the first, or when the second says
``platform``. The application connects as a role that does not own the tables and cannot
bypass RLS, so the policy applies to every statement it runs, raw SQL included; with no
scope set, it sees and writes nothing.

What this lock protects against: a query that forgot its commune (raw SQL, a Core
statement, a bug in lock 1). It does not protect against someone able to run arbitrary SQL
as the application role, who could also set the variables; that is what keeping the
database private and SQL parameterised is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session

from perron.db.guard import LOCKS
from perron.db.scope import current_scope

POLICY_NAME = "perron_tenant_isolation"
TENANT_SETTING = "perron.tenant_id"
SCOPE_SETTING = "perron.scope"

_MATCH = (
    f"(current_setting('{SCOPE_SETTING}', true) = 'platform' "
    f"OR {{column}} = nullif(current_setting('{TENANT_SETTING}', true), '')::uuid)"
)


@event.listens_for(Session, "after_begin")
def _set_transaction_scope(session: Session, transaction: object, connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    scope = current_scope()
    if not LOCKS.rls:
        kind, tenant = "platform", ""
    elif scope is None:
        kind, tenant = "", ""
    else:
        kind, tenant = scope.kind.value, str(scope.tenant_id or "")
    connection.execute(
        text("SELECT set_config(:scope_setting, :kind, true), set_config(:tenant_setting, :tenant, true)"),
        {"scope_setting": SCOPE_SETTING, "kind": kind, "tenant_setting": TENANT_SETTING, "tenant": tenant},
    )


def policy_statements(table: str, column: str = "tenant_id") -> list[str]:
    """DDL that puts a table under the tenant isolation policy (used in migrations)."""
    match = _MATCH.format(column=column)
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'CREATE POLICY {POLICY_NAME} ON "{table}" USING {match} WITH CHECK {match}',
    ]


def drop_policy_statements(table: str) -> list[str]:
    return [
        f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"',
        f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY',
    ]


def write_only_policy_statements(table: str, column: str) -> list[str]:
    """A table any scope may insert into for its own commune, but only the platform reads
    (the outbox: a commune's request enqueues work it must not see for other communes).

    Inserts into it must not use RETURNING, which PostgreSQL checks against the read policy.
    """
    match = _MATCH.format(column=column)
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'CREATE POLICY {POLICY_NAME}_insert ON "{table}" FOR INSERT WITH CHECK {match}',
        f'CREATE POLICY {POLICY_NAME}_platform ON "{table}" FOR ALL '
        f"USING (current_setting('{SCOPE_SETTING}', true) = 'platform')",
    ]


@dataclass(frozen=True)
class RoleProblem:
    message: str


def check_application_role(connection: Connection, tenant_tables: Sequence[str]) -> list[RoleProblem]:
    """Why the connected role would let lock 2 fail open; empty when it is safe."""
    problems: list[RoleProblem] = []
    role = connection.execute(
        text("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).one()
    if role.rolsuper:
        problems.append(
            RoleProblem(f"role {role.rolname!r} is a superuser: row-level security never applies")
        )
    if role.rolbypassrls:
        problems.append(RoleProblem(f"role {role.rolname!r} has BYPASSRLS"))
    rows = connection.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "pg_get_userbyid(c.relowner) AS owner, "
            "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables)"
        ),
        {"tables": list(tenant_tables)},
    ).all()
    seen = {row.relname for row in rows}
    for missing in sorted(set(tenant_tables) - seen):
        problems.append(RoleProblem(f"table {missing!r} does not exist: run `perron db upgrade`"))
    for row in rows:
        if row.owner == role.rolname:
            problems.append(
                RoleProblem(
                    f"role {role.rolname!r} owns table {row.relname!r}; connect as a role that does not"
                )
            )
        if not (row.relrowsecurity and row.relforcerowsecurity and row.has_policy):
            problems.append(RoleProblem(f"table {row.relname!r} is not under row-level security"))
    return problems
