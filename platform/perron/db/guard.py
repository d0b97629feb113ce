"""Lock 1 of 3: the ORM keeps every statement inside the scope's commune.

* SELECT, UPDATE and DELETE on tenant-owned entities get ``tenant_id = <scope>`` added to
  every occurrence of every tenant-owned entity (``with_loader_criteria``), relationship
  loads included.
* Core statements that name a tenant-owned *table* directly cannot be filtered that way;
  outside the platform scope they are refused rather than run unfiltered.
* New rows get ``tenant_id`` from the scope; a row carrying another commune's id (a forged
  ``tenant_id`` in a payload, say) is refused, as is changing ``tenant_id`` afterwards.
* Loading a tenant-owned row from another commune raises, whatever the query.
* A session whose transaction began in one scope refuses to run in another: PostgreSQL's
  row-level security setting (lock 2) is fixed per transaction, so they must agree.

With no scope at all, any of these raises :class:`~perron.db.scope.NoTenantScope`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, with_loader_criteria
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.sql import visitors

from perron.db.base import TENANT_TABLES, TenantOwned
from perron.db.scope import CrossTenantAccess, NoTenantScope, Scope, current_scope

SCOPE_KEY = "perron.scope"
LAST_SCOPE_KEY = "perron.last_scope"


@dataclass
class LockSwitches:
    """Each lock can be switched off alone, so tests prove the other locks hold on their own.

    Production never touches these; :func:`perron.web.health` reports them.
    """

    orm: bool = True
    rls: bool = True
    service: bool = True

    @property
    def all_on(self) -> bool:
        return self.orm and self.rls and self.service


LOCKS = LockSwitches()


def _scope_for_data(description: str) -> Scope:
    scope = current_scope()
    if scope is None:
        raise NoTenantScope(f"{description} touched with no commune in scope")
    return scope


def scope_key(scope: Scope | None) -> tuple[str, UUID | None] | None:
    return None if scope is None else (scope.kind.value, scope.tenant_id)


def _check_session_scope(session: Session, scope: Scope | None) -> None:
    key = scope_key(scope)
    began_in = session.info.get(SCOPE_KEY, key)
    if began_in != key:
        raise CrossTenantAccess(
            "this session's transaction began in another scope; commit or close it before switching commune"
        )


@event.listens_for(Session, "after_begin")
def _remember_transaction_scope(session: Session, transaction: object, connection: object) -> None:
    key = scope_key(current_scope())
    session.info[SCOPE_KEY] = key
    # Session.get() answers from the identity map without SQL, so a session reused in
    # another scope must first forget the rows it loaded in the previous one.
    if LOCKS.orm and session.info.get(LAST_SCOPE_KEY, key) != key:
        session.expunge_all()
    session.info[LAST_SCOPE_KEY] = key


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_scope(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(SCOPE_KEY, None)


def _tenant_tables(state: ORMExecuteState) -> tuple[set[str], set[str]]:
    """Tenant-owned tables a statement touches: (through ORM entities, as bare Core tables).

    Anything carrying an ORM entity annotation (the entity itself, its columns, a
    ``select_from``) is filtered by ``with_loader_criteria``; a tenant table reached only
    through plain Core constructs is not, so it is reported as bare.
    """
    tenant_mappers = [mapper for mapper in state.all_mappers if issubclass(mapper.class_, TenantOwned)]
    through_orm = {mapper.class_.__name__ for mapper in tenant_mappers}
    covered = {mapper.class_.__tablename__ for mapper in tenant_mappers}
    seen: set[str] = set()
    statement: Any = state.statement
    for element in visitors.iterate(statement):
        entity = getattr(element, "_annotations", {}).get("parententity")
        if entity is not None and issubclass(entity.mapper.class_, TenantOwned):
            through_orm.add(entity.mapper.class_.__name__)
            covered.add(entity.mapper.class_.__tablename__)
        elif isinstance(element, Table) and element.name in TENANT_TABLES:
            seen.add(element.name)
    return through_orm, seen - covered


@event.listens_for(Session, "do_orm_execute")
def _filter_statement(state: ORMExecuteState) -> None:
    if not LOCKS.orm:
        return
    scope = current_scope()
    _check_session_scope(state.session, scope)
    if state.is_column_load or state.is_relationship_load:
        return  # criteria of the parent query propagate to these loads
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    entities, bare_tables = _tenant_tables(state)
    if bare_tables and (scope is None or not scope.is_platform):
        error = NoTenantScope if scope is None else CrossTenantAccess
        raise error(
            f"a Core statement on tenant-owned table(s) {sorted(bare_tables)} cannot be filtered "
            "by commune; query the ORM entity instead"
        )
    if not entities:
        return
    scope = _scope_for_data(", ".join(sorted(entities)))
    if scope.is_platform:
        return
    tenant_id = scope.tenant_id
    if state.is_insert:
        _check_insert_parameters(state, tenant_id)
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )
    )


def _check_insert_parameters(state: ORMExecuteState, tenant_id: UUID | None) -> None:
    """ORM bulk INSERT: every row must belong to the scope's commune."""
    params = state.parameters
    rows: Iterable[Mapping[str, Any]]
    if params is None:
        rows = []
    elif isinstance(params, Mapping):
        rows = [params]
    else:
        rows = params
    rows = list(rows)
    provided = [row.get("tenant_id") for row in rows]
    # Values given inline with .values(...) live on the statement (SQLAlchemy exposes them
    # only privately); a form we cannot read is refused rather than trusted.
    statement = state.statement
    inline_rows: list[Mapping[Any, Any]] = [*getattr(statement, "_multi_values", ())]
    inline_rows = [row for group in inline_rows for row in (group if isinstance(group, list) else [group])]
    single: Mapping[Any, Any] | None = getattr(statement, "_values", None)
    if single:
        inline_rows.append(single)
    for row in inline_rows:
        value = next((v for k, v in row.items() if getattr(k, "key", k) == "tenant_id"), None)
        provided.append(getattr(value, "value", value))
    if not provided or any(value is None for value in provided):
        raise NoTenantScope("a bulk INSERT of tenant-owned rows must give tenant_id for every row")
    if any(value != tenant_id for value in provided):
        raise CrossTenantAccess("a bulk INSERT carries rows of another commune")


@event.listens_for(Session, "before_flush")
def _check_flush(session: Session, flush_context: UOWTransaction, instances: object) -> None:
    if not LOCKS.orm:
        return
    new = [obj for obj in session.new if isinstance(obj, TenantOwned)]
    changed = [obj for obj in (*session.dirty, *session.deleted) if isinstance(obj, TenantOwned)]
    if not new and not changed:
        return
    scope = current_scope()
    _check_session_scope(session, scope)
    names = sorted({type(obj).__name__ for obj in (*new, *changed)})
    scope = _scope_for_data(", ".join(names))
    for obj in new:
        owner: UUID | None = obj.tenant_id
        if owner is None:
            if scope.is_platform:
                raise NoTenantScope(
                    f"a new {type(obj).__name__} needs an explicit tenant_id in the platform scope"
                )
            obj.tenant_id = scope.tenant_id
        elif not scope.is_platform and owner != scope.tenant_id:
            raise CrossTenantAccess(f"a new {type(obj).__name__} names another commune as its owner")
    for obj in changed:
        state: InstanceState[Any] = inspect(obj, raiseerr=True)
        history = state.attrs["tenant_id"].history
        if history.has_changes() and history.deleted and history.deleted[0] is not None:
            raise CrossTenantAccess(f"the commune owning a {type(obj).__name__} cannot change")
        if not scope.is_platform and obj.tenant_id != scope.tenant_id:
            raise CrossTenantAccess(f"a {type(obj).__name__} of another commune cannot be changed here")


@event.listens_for(TenantOwned, "load", propagate=True)
def _check_loaded(target: TenantOwned, context: object = None) -> None:
    if not LOCKS.orm:
        return
    scope = current_scope()
    if scope is None:
        raise NoTenantScope(f"{type(target).__name__} loaded with no commune in scope")
    if not scope.is_platform and target.tenant_id != scope.tenant_id:
        raise CrossTenantAccess(f"a {type(target).__name__} of another commune was loaded")


class GuardedSession(Session):
    """Session whose ``get`` also checks rows served from the identity map, which SQLAlchemy
    returns without running (or filtering) any SQL."""

    def get(self, entity: Any, ident: Any, **options: Any) -> Any:
        found = super().get(entity, ident, **options)
        if isinstance(found, TenantOwned):
            _check_loaded(found)
        return found

    def get_one(self, entity: Any, ident: Any, **options: Any) -> Any:
        found = super().get_one(entity, ident, **options)
        if isinstance(found, TenantOwned):
            _check_loaded(found)
        return found
