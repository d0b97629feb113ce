"""Which tables a commune archive holds, and reading one commune's rows out of them.

The tables are discovered from the SQLAlchemy metadata, not listed: every tenant-owned
table (the platform's and every installed module's) is archived unless it says it is
transient, so a module's new table travels with its commune without any change here. The
commune's platform rows travel too: its row in ``communes`` and its ``domains``.

Transient tables are left out, each with the reason (the manifest repeats them): they hold
the running state of this deployment, not the commune's data. A module marks one of its
own tables transient with ``__table_args__ = {"info": {TRANSIENT: "<why>"}}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapper

from perron.db.base import TENANT_TABLES, Base
from perron.db.scope import CrossTenantAccess
from perron.tenancy.archive.codec import ColumnCodec, TableWriter, codecs_for

TRANSIENT = "perron.archive.transient"
"""``Table.info`` key marking a table as left out of commune archives; its value says why."""

BATCH = 500
"""Rows read (and inserted) per round trip: a large commune never sits in memory whole."""

PLATFORM_ROWS = ("communes", "domains")
"""Platform tables holding rows of the commune itself, in the order they are restored."""

LEFT_OUT: dict[str, str] = {
    "web_sessions": "login sessions: their cookies are worthless elsewhere; people log in again",
    "login_attempts": "logins in progress, valid for 15 minutes",
    "job_runs": "the status of this deployment's background jobs (pruned after 30 days)",
    "outbox_messages": "jobs waiting for this deployment's broker",
    "dead_letters": "failed jobs, for this deployment's operators to handle",
    "cache_invalidations": "notices to this deployment's processes, kept for ten minutes",
    "commune_exports": "this deployment's record of the archives it made (kept after a deletion)",
    "billing_customers": "the deployment's Stripe customer (its accounts); a paying commune is never deleted",
    "onboardings": "the intercommunale's record of how it brought the commune on board (its console's)",
}
"""The platform's tables about a commune that an archive leaves out, and why."""


@dataclass(frozen=True)
class ArchivedTable:
    """One table of the archive and how to read a commune's rows from it."""

    name: str
    model: type[Base]
    scope: Literal["platform", "tenant"]
    codecs: list[ColumnCodec] = field(repr=False)
    attributes: list[InstrumentedAttribute[Any]] = field(repr=False)
    """The ORM attribute of each column, in the table's column order."""
    owner: InstrumentedAttribute[Any] = field(repr=False)
    """The column naming the commune: ``id`` of communes, ``commune_id``, or ``tenant_id``."""
    key: list[InstrumentedAttribute[Any]] = field(repr=False)

    @property
    def file(self) -> str:
        return f"tables/{self.name}.json"

    @property
    def owner_index(self) -> int:
        return next(index for index, attribute in enumerate(self.attributes) if attribute is self.owner)

    def attribute_keys(self) -> list[str]:
        return [attribute.key for attribute in self.attributes]


def _mappers() -> dict[str, Mapper[Any]]:
    return {
        mapper.local_table.name: mapper
        for mapper in Base.registry.mappers
        if isinstance(mapper.local_table, Table)
    }


def _table(table: Table, mapper: Mapper[Any], scope: Literal["platform", "tenant"]) -> ArchivedTable:
    model = mapper.class_
    attributes = [getattr(model, mapper.get_property_by_column(column).key) for column in table.columns]
    by_column = dict(zip(table.columns.keys(), attributes, strict=True))
    owner_column = {"communes": "id", "domains": "commune_id"}.get(table.name, "tenant_id")
    return ArchivedTable(
        name=table.name,
        model=model,
        scope=scope,
        codecs=codecs_for(table),
        attributes=attributes,
        owner=by_column[owner_column],
        key=[by_column[column.name] for column in table.primary_key.columns],
    )


def transient_reason(table: Table) -> str | None:
    """Why a table is left out of archives, or None when it is archived."""
    reason = table.info.get(TRANSIENT) or LEFT_OUT.get(table.name)
    return str(reason) if reason else None


def archived_tables() -> list[ArchivedTable]:
    """The tables of an archive in the order they are restored (referenced tables first):
    the commune's platform rows, then every tenant-owned table that is not transient."""
    mappers = _mappers()
    sorted_tables = Base.metadata.sorted_tables
    by_name = {table.name: table for table in sorted_tables}
    tables = [_table(by_name[name], mappers[name], "platform") for name in PLATFORM_ROWS]
    for table in sorted_tables:
        if table.name in TENANT_TABLES and transient_reason(table) is None:
            mapper = mappers.get(table.name)
            if mapper is None:
                raise TypeError(f"tenant-owned table {table.name} has no mapped class")
            tables.append(_table(table, mapper, "tenant"))
    return tables


def left_out_tables() -> dict[str, str]:
    """Every table about a commune that archives leave out, with the reason."""
    left_out: dict[str, str] = {}
    for table in Base.metadata.sorted_tables:
        reason = transient_reason(table)
        refers = table.name in TENANT_TABLES or "commune_id" in table.columns
        if reason and refers:
            left_out[table.name] = reason
    return dict(sorted(left_out.items()))


def tenant_models_for_deletion() -> list[type[Base]]:
    """Every tenant-owned model, archived or transient, rows that point elsewhere first."""
    mappers = _mappers()
    return [
        mappers[table.name].class_
        for table in reversed(Base.metadata.sorted_tables)
        if table.name in TENANT_TABLES
    ]


async def stream_rows(
    session: AsyncSession, table: ArchivedTable, commune_id: UUID
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The commune's rows of one table, in batches, ordered by primary key.

    The query names the commune itself (besides the ORM filter and row-level security of
    the scope it runs in), and every row is checked to be the commune's before it goes on.
    """
    statement = (
        select(*table.attributes)
        .where(table.owner == commune_id)
        .order_by(*table.key)
        .execution_options(yield_per=BATCH)
    )
    owner = table.owner_index
    result = await session.stream(statement)
    async for partition in result.partitions(BATCH):
        for row in partition:
            if row[owner] != commune_id:
                raise CrossTenantAccess(f"a row of {table.name} of another commune reached an archive")
        yield partition


@dataclass(frozen=True)
class TableDigest:
    rows: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "sha256": self.sha256}


async def table_digest(session: AsyncSession, table: ArchivedTable, commune_id: UUID) -> TableDigest:
    """What the table's file would hold for the commune now: its row count and SHA-256."""
    digest = hashlib.sha256()
    writer = TableWriter(table.name, table.codecs, digest.update)
    async for rows in stream_rows(session, table, commune_id):
        for row in rows:
            writer.write(row)
    writer.close()
    return TableDigest(writer.rows, digest.hexdigest())


def media_digest(names: Sequence[str]) -> str:
    """One SHA-256 for a commune's media files. Their names are the SHA-256 of their
    content (:mod:`perron.media`), so the sorted names stand for the content."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


@dataclass(frozen=True)
class CommuneState:
    """A fingerprint of everything of a commune an archive holds."""

    tables: dict[str, TableDigest]
    media_files: int
    media_sha256: str


async def current_state(session: AsyncSession, commune_id: UUID, media_names: Sequence[str]) -> CommuneState:
    digests = {table.name: await table_digest(session, table, commune_id) for table in archived_tables()}
    return CommuneState(digests, len(media_names), media_digest(media_names))
