"""Commune archives: the record of exports, and erasing a deleted commune's audit log.

Revision ID: 0011_archive
Revises: 0010_commune_admin
Created: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

import perron.db.migration_ops  # noqa: F401  (op.enable_write_only_isolation)

revision: str = "0011_archive"
down_revision: str | Sequence[str] | None = "0010_commune_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The application's role may not delete audit entries (the log is append-only for it). A
# commune's deletion erases its log through this function, owned by the schema's owner,
# only in the platform scope and only when an export on record holds as many entries as
# the log has (entries can only be added, so the same count means the same entries).
ERASE_AUDIT = """
CREATE FUNCTION perron_erase_commune_audit(commune uuid) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    erased bigint;
BEGIN
    IF current_setting('perron.scope', true) IS DISTINCT FROM 'platform' THEN
        RAISE EXCEPTION 'erasing the audit log of a commune needs the platform scope';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM commune_exports AS e
        WHERE e.commune_id = commune
          AND (e.tables -> 'audit_entries' ->> 'rows')::bigint
              = (SELECT count(*) FROM audit_entries AS a WHERE a.tenant_id = commune)
    ) THEN
        RAISE EXCEPTION 'no export of commune % holds its whole audit log', commune;
    END IF;
    DELETE FROM audit_entries WHERE tenant_id = commune;
    GET DIAGNOSTICS erased = ROW_COUNT;
    RETURN erased;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "commune_exports",
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column(
            "commune_id",
            advanced_alchemy.types.GUID(length=16),
            nullable=False,
            comment="the exported commune; kept after it is deleted",
        ),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("nis_code", sa.String(length=5), nullable=False),
        sa.Column("names", advanced_alchemy.types.JsonB, nullable=False),
        sa.Column(
            "file_name",
            sa.String(length=255),
            nullable=False,
            comment="the archive, under <data_dir>/exports",
        ),
        sa.Column("size", sa.BigInteger(), nullable=False, comment="bytes"),
        sa.Column("sha256", sa.String(length=64), nullable=False, comment="of the whole archive file"),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.Column(
            "tables",
            advanced_alchemy.types.JsonB,
            nullable=False,
            comment="table: {rows, sha256} of its file in the archive",
        ),
        sa.Column("media_files", sa.Integer(), nullable=False),
        sa.Column("media_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "media_sha256",
            sa.String(length=64),
            nullable=False,
            comment="of the sorted media names (content hashes)",
        ),
        sa.Column("created_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False, comment="actor label"),
        sa.Column("created_by_person_id", advanced_alchemy.types.GUID(length=16), nullable=True),
        sa.Column(
            "job_id",
            advanced_alchemy.types.GUID(length=16),
            nullable=True,
            comment="the export job, when it ran as one",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commune_exports")),
    )
    with op.batch_alter_table("commune_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commune_exports_commune_id"), ["commune_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_commune_exports_created_at"), ["created_at"], unique=False)

    # Operators' records: written and read in the platform scope only.
    op.enable_write_only_isolation("commune_exports", "commune_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ERASE_AUDIT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS perron_erase_commune_audit(uuid)")
    with op.batch_alter_table("commune_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commune_exports_created_at"))
        batch_op.drop_index(batch_op.f("ix_commune_exports_commune_id"))

    op.drop_table("commune_exports")
