"""A module brings its own migration branch; `upgrade` applies every head."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from perron.db import migrate
from tests.conftest import base_settings

MODULE_REVISION = '''
"""Probe module: notes."""
import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types
import perron.db.migration_ops  # noqa: F401

revision = "probe_0001"
down_revision = None
branch_labels = ("probe",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "probe_notes",
        sa.Column(
            "tenant_id", advanced_alchemy.types.GUID(length=16), sa.ForeignKey("communes.id"), nullable=False
        ),
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    op.enable_tenant_isolation("probe_notes")


def downgrade() -> None:
    op.drop_table("probe_notes")
'''


def test_a_module_branch_is_applied_with_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "probe_versions"
    versions.mkdir()
    (versions / "probe_0001_notes.py").write_text(MODULE_REVISION)
    monkeypatch.setattr(migrate, "_extra_version_locations", [])
    migrate.add_version_location(versions)
    settings = base_settings(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'modules.sqlite3'}", database_owner_url=None
    )
    applied = migrate.upgrade(settings)
    steps = [step.split()[0] for step in applied]
    assert steps.index("0001") < steps.index("probe_0001")  # it depends on the platform's 0001
    platform_head = max(step for step in steps if step[0].isdigit())
    assert migrate.current_heads(settings) == {"probe_0001", platform_head}
    assert not migrate.pending(settings)
    engine = create_engine(migrate.sync_url(settings.database))
    assert "probe_notes" in inspect(engine).get_table_names()
    engine.dispose()
    assert migrate.upgrade(settings) == []
