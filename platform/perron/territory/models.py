"""A commune's geography: streets, neighbourhoods, named zones, and the history of changes.

Everything here is owned by one commune. Placement questions ("which neighbourhood is this
address in?") are answered by :mod:`perron.territory.service` from an in-process index built
per commune and per territory version; staff change the territory through
:mod:`perron.territory.actions`, and every change bumps the commune's :class:`TerritoryState`
and writes one :class:`TerritoryChange`.

Geometries are stored as GeoJSON (WGS84 longitude/latitude) in a JSON column: the platform
runs on SQLite and PostgreSQL alike, and the geometry work (containment) happens in the
process with shapely, on a few dozen polygons per commune.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Float, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantModel, TenantOwned, Timestamps, new_id, utcnow


class Street(TenantModel, Timestamps, Base):
    """A street of the commune, in one postcode area."""

    __tablename__ = "territory_streets"
    __table_args__ = (Index("ix_territory_streets_key", "tenant_id", "postcode", "match_key", unique=True),)

    names: Mapped[dict[str, str]] = mapped_column(comment="official name per language")
    postcode: Mapped[str] = mapped_column(String(4))
    match_key: Mapped[str] = mapped_column(
        String(250), comment="the name in the commune's first language, normalised for matching"
    )
    lon: Mapped[float | None] = mapped_column(Float, comment="representative point, WGS84 longitude")
    lat: Mapped[float | None] = mapped_column(Float, comment="representative point, WGS84 latitude")


class Neighbourhood(TenantModel, Timestamps, Base):
    """A neighbourhood: an outline, a list of streets, or both.

    A split or a merge retires the neighbourhoods it replaces (``active`` false,
    ``replaced_by`` naming their successors) rather than deleting them, so modules holding
    an old id can still find where its members went.
    """

    __tablename__ = "territory_neighbourhoods"

    names: Mapped[dict[str, str]]
    geometry: Mapped[dict[str, Any] | None] = mapped_column(
        comment="GeoJSON Polygon or MultiPolygon, WGS84 longitude/latitude"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    replaced_by: Mapped[list[str]] = mapped_column(
        default=list, comment="ids of the neighbourhoods that replaced this one (split or merge)"
    )


class NeighbourhoodStreet(TenantOwned, Base):
    """A street listed in a neighbourhood."""

    __tablename__ = "territory_neighbourhood_streets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "neighbourhood_id"],
            ["territory_neighbourhoods.tenant_id", "territory_neighbourhoods.id"],
            ondelete="CASCADE",
            name="fk_territory_neighbourhood_streets_neighbourhood",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "street_id"],
            ["territory_streets.tenant_id", "territory_streets.id"],
            ondelete="CASCADE",
            name="fk_territory_neighbourhood_streets_street",
        ),
        Index("ix_territory_neighbourhood_streets_street", "tenant_id", "street_id"),
    )

    neighbourhood_id: Mapped[UUID] = mapped_column(primary_key=True)
    street_id: Mapped[UUID] = mapped_column(primary_key=True)


class Zone(TenantModel, Timestamps, Base):
    """A named area modules ask about by key, such as ``centre`` (the town centre)."""

    __tablename__ = "territory_zones"
    __table_args__ = (Index("ix_territory_zones_key", "tenant_id", "key", unique=True),)

    key: Mapped[str] = mapped_column(String(63))
    names: Mapped[dict[str, str]]
    geometry: Mapped[dict[str, Any]] = mapped_column(
        comment="GeoJSON Polygon or MultiPolygon, WGS84 longitude/latitude"
    )


class TerritoryState(TenantOwned, Base):
    """The commune's territory version: bumped by every change, compared by caches."""

    __tablename__ = "territory_versions"

    version: Mapped[int] = mapped_column(Integer, default=0)
    stamp: Mapped[UUID] = mapped_column(
        default=new_id, comment="new at every change: a rolled-back change never reuses a cache"
    )
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, comment="when the territory last changed")


class TerritoryChange(TenantModel, Base):
    """One change to the territory: who, what, when, and the version it produced."""

    __tablename__ = "territory_changes"
    __table_args__ = (Index("ix_territory_changes_version", "tenant_id", "version"),)

    version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_person_id: Mapped[UUID | None]
    action: Mapped[str] = mapped_column(String(80), comment="such as neighbourhood.split or streets.import")
    kind: Mapped[str] = mapped_column(String(20), comment="streets, neighbourhoods or zones")
    object_ids: Mapped[list[str]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="names and details, for people")
