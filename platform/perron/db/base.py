"""Declarative base and the mixins that make a table platform-owned or tenant-owned.

Two kinds of tables exist:

* platform tables (intercommunales, communes, domains, ...) describe the deployment;
* tenant-owned tables hold a commune's data. They inherit :class:`TenantOwned`, which puts
  ``tenant_id`` first in the table and first in the primary key. Unique constraints and
  foreign keys must also lead with ``tenant_id`` (a composite foreign key cannot point into
  another commune); ``tests/schema`` checks every table for it, and
  :mod:`perron.db.guard` filters every ORM query on it.

A column named ``tenant_id`` is reserved for tenant-owned tables; a platform table that
refers to a commune calls its column ``commune_id``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from uuid_utils.compat import uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> UUID:
    """Time-ordered UUIDs (v7) keep recent rows together in indexes."""
    return uuid7()


class Base(DeclarativeBase):
    """Base of every Perron model, the platform's and every module's."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        UUID: GUID,
        dt.datetime: DateTimeUTC(timezone=True),
        dict[str, Any]: JsonB,
        list[str]: JsonB,
        dict[str, str]: JsonB,
    }


TENANT_TABLES: set[str] = set()
"""Names of every tenant-owned table, filled in as models are declared."""


class TenantOwned:
    """Mixin of every table that holds one commune's data.

    ``tenant_id`` is the first column and the first part of the primary key. Inserting
    without it fills it from the scope; inserting, reading or changing a row of another
    commune raises (:mod:`perron.db.guard`).
    """

    __tenant_owned__: ClassVar[bool] = True

    @declared_attr
    @classmethod
    def tenant_id(cls) -> Mapped[UUID]:
        return mapped_column(
            GUID,
            ForeignKey("communes.id", ondelete="RESTRICT"),
            primary_key=True,
            sort_order=-1000,
            comment="the commune that owns this row",
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__tablename__")
        if isinstance(table, str):
            TENANT_TABLES.add(table)


class TenantModel(TenantOwned):
    """Tenant-owned row with its own id: primary key ``(tenant_id, id)``."""

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-900)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=3000)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=3001)


def is_tenant_owned(entity: object) -> bool:
    return isinstance(entity, type) and issubclass(entity, TenantOwned)
