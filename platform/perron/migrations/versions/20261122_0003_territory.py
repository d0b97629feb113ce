"""territory: streets, neighbourhoods, zones, versions and history

Revision ID: 0003_territory
Revises: 0002_identity
Created: 2026-11-22 05:11:48.372462
"""

from collections.abc import Sequence
from typing import Any

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

import perron.db.migration_ops  # noqa: F401  (op.enable_tenant_isolation)

revision: str = "0003_territory"
down_revision: str | Sequence[str] | None = "0002_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = advanced_alchemy.types.GUID(length=16)
WHEN = advanced_alchemy.types.DateTimeUTC(timezone=True)
TENANT_COMMENT = "the commune that owns this row"
GEOMETRY_COMMENT = "GeoJSON Polygon or MultiPolygon, WGS84 longitude/latitude"


def _tenant(table: str) -> list[Any]:
    return [
        sa.Column("tenant_id", TENANT, nullable=False, comment=TENANT_COMMENT),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["communes.id"], name=op.f(f"fk_{table}_tenant_id_communes"), ondelete="RESTRICT"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "territory_changes",
        *_tenant("territory_changes"),
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", WHEN, nullable=False),
        sa.Column("actor_label", sa.String(length=200), nullable=False),
        sa.Column("actor_person_id", advanced_alchemy.types.GUID(length=16), nullable=True),
        sa.Column(
            "action",
            sa.String(length=80),
            nullable=False,
            comment="such as neighbourhood.split or streets.import",
        ),
        sa.Column("kind", sa.String(length=20), nullable=False, comment="streets, neighbourhoods or zones"),
        sa.Column("object_ids", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column(
            "summary", advanced_alchemy.types.JsonB, nullable=False, comment="names and details, for people"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_territory_changes")),
    )
    with op.batch_alter_table("territory_changes", schema=None) as batch_op:
        batch_op.create_index("ix_territory_changes_version", ["tenant_id", "version"], unique=False)

    op.create_table(
        "territory_neighbourhoods",
        *_tenant("territory_neighbourhoods"),
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("names", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column("geometry", advanced_alchemy.types.JsonB, nullable=True, comment=GEOMETRY_COMMENT),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "replaced_by",
            advanced_alchemy.types.JsonB,
            nullable=False,
            comment="ids of the neighbourhoods that replaced this one (split or merge)",
        ),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_territory_neighbourhoods")),
    )
    op.create_table(
        "territory_streets",
        *_tenant("territory_streets"),
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column(
            "names", advanced_alchemy.types.JsonB, nullable=False, comment="official name per language"
        ),
        sa.Column("postcode", sa.String(length=4), nullable=False),
        sa.Column(
            "match_key",
            sa.String(length=250),
            nullable=False,
            comment="the name in the commune's first language, normalised for matching",
        ),
        sa.Column("lon", sa.Float(), nullable=True, comment="representative point, WGS84 longitude"),
        sa.Column("lat", sa.Float(), nullable=True, comment="representative point, WGS84 latitude"),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_territory_streets")),
    )
    with op.batch_alter_table("territory_streets", schema=None) as batch_op:
        batch_op.create_index("ix_territory_streets_key", ["tenant_id", "postcode", "match_key"], unique=True)

    op.create_table(
        "territory_versions",
        *_tenant("territory_versions"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "stamp",
            advanced_alchemy.types.GUID(length=16),
            nullable=False,
            comment="new at every change: a rolled-back change never reuses a cache",
        ),
        sa.Column("updated_at", WHEN, nullable=False, comment="when the territory last changed"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_territory_versions")),
    )
    op.create_table(
        "territory_zones",
        *_tenant("territory_zones"),
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("names", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column("geometry", advanced_alchemy.types.JsonB, nullable=False, comment=GEOMETRY_COMMENT),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_territory_zones")),
    )
    with op.batch_alter_table("territory_zones", schema=None) as batch_op:
        batch_op.create_index("ix_territory_zones_key", ["tenant_id", "key"], unique=True)

    op.create_table(
        "territory_neighbourhood_streets",
        *_tenant("territory_neighbourhood_streets"),
        sa.Column("neighbourhood_id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("street_id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "neighbourhood_id"],
            ["territory_neighbourhoods.tenant_id", "territory_neighbourhoods.id"],
            name="fk_territory_neighbourhood_streets_neighbourhood",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "street_id"],
            ["territory_streets.tenant_id", "territory_streets.id"],
            name="fk_territory_neighbourhood_streets_street",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "neighbourhood_id", "street_id", name=op.f("pk_territory_neighbourhood_streets")
        ),
    )
    with op.batch_alter_table("territory_neighbourhood_streets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_territory_neighbourhood_streets_street", ["tenant_id", "street_id"], unique=False
        )

    for table in (
        "territory_changes",
        "territory_neighbourhoods",
        "territory_streets",
        "territory_versions",
        "territory_zones",
        "territory_neighbourhood_streets",
    ):
        op.enable_tenant_isolation(table)


def downgrade() -> None:
    with op.batch_alter_table("territory_neighbourhood_streets", schema=None) as batch_op:
        batch_op.drop_index("ix_territory_neighbourhood_streets_street")
    op.drop_table("territory_neighbourhood_streets")
    with op.batch_alter_table("territory_zones", schema=None) as batch_op:
        batch_op.drop_index("ix_territory_zones_key")
    op.drop_table("territory_zones")
    op.drop_table("territory_versions")
    with op.batch_alter_table("territory_streets", schema=None) as batch_op:
        batch_op.drop_index("ix_territory_streets_key")
    op.drop_table("territory_streets")
    op.drop_table("territory_neighbourhoods")
    with op.batch_alter_table("territory_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_territory_changes_version")
    op.drop_table("territory_changes")
