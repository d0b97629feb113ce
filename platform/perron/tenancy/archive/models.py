"""The platform's record of the archives it made of its communes."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, new_id, utcnow


class CommuneExport(Base):
    """One archive of one commune: who made it, when, where the file is, what it holds.

    A platform table: operators and intercommunales list and download exports, and the
    record outlives the commune it describes (``commune_id`` is deliberately not a foreign
    key), so the archive a deletion relied on stays known. Communes cannot read it
    (row-level security: the platform scope only).
    """

    __tablename__ = "commune_exports"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    commune_id: Mapped[UUID] = mapped_column(
        index=True, comment="the exported commune; kept after it is deleted"
    )
    slug: Mapped[str] = mapped_column(String(63))
    nis_code: Mapped[str] = mapped_column(String(5))
    names: Mapped[dict[str, str]]
    file_name: Mapped[str] = mapped_column(String(255), comment="the archive, under <data_dir>/exports")
    size: Mapped[int] = mapped_column(BigInteger, comment="bytes")
    sha256: Mapped[str] = mapped_column(String(64), comment="of the whole archive file")
    format_version: Mapped[int] = mapped_column(Integer)
    tables: Mapped[dict[str, Any]] = mapped_column(comment="table: {rows, sha256} of its file in the archive")
    media_files: Mapped[int] = mapped_column(Integer)
    media_bytes: Mapped[int] = mapped_column(BigInteger)
    media_sha256: Mapped[str] = mapped_column(
        String(64), comment="of the sorted media names (content hashes)"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(200), comment="actor label")
    created_by_person_id: Mapped[UUID | None]
    job_id: Mapped[UUID | None] = mapped_column(comment="the export job, when it ran as one")

    @property
    def rows(self) -> int:
        """Rows in the archive, every table counted."""
        return sum(int(entry.get("rows", 0)) for entry in self.tables.values())
