"""branding: logo, home-page introduction and sections

Revision ID: 0005_branding
Revises: 0004_jobs
Created: 2026-11-22 09:00:00.000000
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

import perron.db.migration_ops  # noqa: F401  (op.enable_tenant_isolation)

revision: str = "0005_branding"
down_revision: str | Sequence[str] | None = "0004_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("brandings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "intro",
                advanced_alchemy.types.JsonB,
                server_default=sa.text("'{}'"),
                nullable=False,
                comment="home-page introduction, per language",
            )
        )
        batch_op.add_column(
            sa.Column(
                "home_sections",
                advanced_alchemy.types.JsonB,
                server_default=sa.text('\'["intro", "services", "widgets", "contact"]\''),
                nullable=False,
                comment="what the home page shows, in order",
            )
        )
        batch_op.add_column(
            sa.Column(
                "logo_name",
                sa.String(length=120),
                nullable=True,
                comment="stored name in the commune's media",
            )
        )
        batch_op.add_column(sa.Column("logo_media_type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("logo_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("logo_height", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "logo_version",
                sa.String(length=16),
                nullable=True,
                comment="changes with the logo's content",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("brandings", schema=None) as batch_op:
        batch_op.drop_column("logo_version")
        batch_op.drop_column("logo_height")
        batch_op.drop_column("logo_width")
        batch_op.drop_column("logo_media_type")
        batch_op.drop_column("logo_name")
        batch_op.drop_column("home_sections")
        batch_op.drop_column("intro")
