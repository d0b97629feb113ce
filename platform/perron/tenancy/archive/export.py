"""Writing a commune's archive: a zip with its manifest, a JSON file per table and its media.

The commune's rows are read in its own scope (the ORM filter and, on PostgreSQL, row-level
security keep every other commune out), in one read transaction so the archive is one
consistent moment of the commune, batch by batch. The zip is written to a temporary file
next to its final place and renamed once complete: a reader never sees half an archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from perron import __version__, audit
from perron.config import Settings
from perron.db.base import new_id, utcnow
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import NotFound, PerronError
from perron.i18n import gettext
from perron.media import MediaStore
from perron.tenancy.archive.codec import TableWriter
from perron.tenancy.archive.models import CommuneExport
from perron.tenancy.archive.tables import (
    ArchivedTable,
    TableDigest,
    archived_tables,
    left_out_tables,
    media_digest,
    stream_rows,
)
from perron.tenancy.models import Commune, Intercommunale

FORMAT = "perron-commune-archive"
FORMAT_VERSION = 1
"""The archive layout this code writes and reads; bumped whenever the layout changes."""

MANIFEST = "manifest.json"

Progress = Callable[[int, int | None, str], Awaitable[None]]
"""``progress(done, total, message)``, as :meth:`perron.jobs.JobContext.progress`."""


class ExportInterrupted(PerronError):
    """The commune changed under the export in a way it cannot follow; try again."""

    temporary = True


def exports_folder(settings: Settings) -> Path:
    """Where the deployment keeps the archives it makes: ``<data_dir>/exports``."""
    return Path(settings.data_dir) / "exports"


def export_path(settings: Settings, export: CommuneExport) -> Path:
    """The file of an export (to download it); :class:`NotFound` when it is gone."""
    folder = exports_folder(settings).resolve()
    path = (folder / export.file_name).resolve()
    if path.parent != folder or not path.is_file():
        raise NotFound(
            gettext("The archive file %(file)s is no longer in %(folder)s.")
            % {"file": export.file_name, "folder": folder}
        )
    return path


async def schema_revisions(session: AsyncSession) -> list[str]:
    """The database's Alembic revisions: the platform's head and every module branch's."""
    rows = await session.execute(text("SELECT version_num FROM alembic_version"))
    return sorted(str(row[0]) for row in rows)


async def read_snapshot(session: AsyncSession, dialect: str) -> None:
    """Make the session's transaction one consistent view of the database (PostgreSQL
    defaults to a new view per statement; SQLite's read transaction already is one)."""
    if dialect == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Member:
    """Bytes written to one zip member, counted and hashed on the way."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.digest.update(data)
        self.size += len(data)


async def _write_table(
    session: AsyncSession, archive: zipfile.ZipFile, table: ArchivedTable, commune_id: UUID
) -> dict[str, Any]:
    info = zipfile.ZipInfo(table.file, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as stream:
        member = _Member(stream)
        writer = TableWriter(table.name, table.codecs, member.write)
        async for rows in stream_rows(session, table, commune_id):
            for row in rows:
                writer.write(row)
        writer.close()
    return {
        "name": table.name,
        "file": table.file,
        "scope": table.scope,
        "rows": writer.rows,
        "size": member.size,
        "sha256": member.digest.hexdigest(),
    }


def _write_media(archive: zipfile.ZipFile, media: MediaStore, name: str) -> dict[str, Any]:
    file = f"media/{name}"
    info = zipfile.ZipInfo(file, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED  # images are compressed already
    with media.open(name) as source, archive.open(info, "w", force_zip64=True) as stream:
        member = _Member(stream)
        for block in iter(lambda: source.read(1 << 20), b""):
            member.write(block)
    return {"name": name, "file": file, "size": member.size, "sha256": member.digest.hexdigest()}


@dataclass
class _Contents:
    identity: dict[str, Any]
    intercommunale_id: UUID | None
    revisions: list[str]
    tables: list[dict[str, Any]]
    media: list[dict[str, Any]]


async def _find_commune(database: Database, commune: UUID | str) -> UUID:
    with platform_scope("export a commune: find it"):
        async with database.session() as session:
            column = Commune.id if isinstance(commune, UUID) else Commune.slug
            commune_id = await session.scalar(select(Commune.id).where(column == commune))
    if commune_id is None:
        raise NotFound(gettext("No commune is %(commune)s.") % {"commune": commune})
    return commune_id


async def _write_contents(
    database: Database,
    media: MediaStore,
    archive: zipfile.ZipFile,
    commune_id: UUID,
    progress: Progress | None,
) -> _Contents:
    """Every table and media file of the commune into ``archive``, from one snapshot."""
    tables = archived_tables()
    total = len(tables) + 1
    async with database.session() as session:
        with tenant_scope(commune_id):
            await read_snapshot(session, database.dialect)
            row = await session.get(Commune, commune_id)
            if row is None:
                raise NotFound(gettext("No commune is %(commune)s.") % {"commune": commune_id})
            body = await session.get(Intercommunale, row.intercommunale_id) if row.intercommunale_id else None
            contents = _Contents(
                identity={
                    "id": str(row.id),
                    "slug": row.slug,
                    "nis_code": row.nis_code,
                    "names": dict(row.names),
                    "languages": list(row.languages),
                    "status": row.status.value,
                    "intercommunale": {"slug": body.slug, "names": dict(body.names)} if body else None,
                },
                intercommunale_id=row.intercommunale_id,
                revisions=await schema_revisions(session),
                tables=[],
                media=[],
            )
            # Listed at the moment of the snapshot: a logo replaced meanwhile keeps its old
            # file until the change commits, so what the rows name is still on disk.
            media_names = media.every_name()
        for index, table in enumerate(tables):
            with tenant_scope(commune_id):
                entry = await _write_table(session, archive, table, commune_id)
            contents.tables.append(entry)
            if progress is not None:  # outside the commune's scope: the caller's own work
                await progress(index + 1, total, f"{table.name}: {entry['rows']}")
    with tenant_scope(commune_id):
        for name in media_names:
            try:
                contents.media.append(_write_media(archive, media, name))
            except FileNotFoundError:
                raise ExportInterrupted(
                    gettext("A file of the commune was replaced during the export; export it again.")
                ) from None
    return contents


def _put_in_place(temporary: Path, final: Path) -> tuple[int, str]:
    """Make the finished archive durable under its final name; returns its size and SHA-256."""
    with temporary.open("rb") as file:
        os.fsync(file.fileno())
    os.replace(temporary, final)
    return final.stat().st_size, sha256_of(final)


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def export_commune(
    database: Database,
    settings: Settings,
    commune: UUID | str,
    *,
    progress: Progress | None = None,
    job_id: UUID | None = None,
) -> CommuneExport:
    """Write the archive of one commune (by id or slug) under :func:`exports_folder`,
    record it (:class:`CommuneExport`) and audit it in the platform log; returns the record.

    ``progress`` is told after each table and at the end (the export job passes
    ``ctx.progress``). Raises :class:`NotFound` for an unknown commune, and
    :class:`ExportInterrupted` (temporary: try again) when a file vanished meanwhile.
    Acts as :func:`perron.audit.current_actor`.
    """
    media = MediaStore.for_settings(settings)
    commune_id = await _find_commune(database, commune)
    folder = exports_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    export_id, created_at, actor = new_id(), utcnow(), audit.current_actor()
    handle, temporary_name = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".zip.partial")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as file, zipfile.ZipFile(file, "w", allowZip64=True) as archive:
            contents = await _write_contents(database, media, archive, commune_id, progress)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "perron_version": __version__,
                "schema_revisions": contents.revisions,
                "database": database.dialect,
                "export_id": str(export_id),
                "created_at": created_at.isoformat(),
                "created_by": actor.label,
                "commune": contents.identity,
                "tables": contents.tables,
                "media": contents.media,
                "left_out": left_out_tables(),
            }
            info = zipfile.ZipInfo(MANIFEST, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        slug = contents.identity["slug"]
        file_name = f"{slug}-{created_at:%Y%m%dT%H%M%SZ}-{export_id.hex[-8:]}.zip"
        size, sha256 = await asyncio.to_thread(_put_in_place, temporary, folder / file_name)
    except BaseException:
        _discard(temporary)
        raise
    record = CommuneExport(
        id=export_id,
        commune_id=commune_id,
        slug=slug,
        nis_code=contents.identity["nis_code"],
        names=contents.identity["names"],
        file_name=file_name,
        size=size,
        sha256=sha256,
        format_version=FORMAT_VERSION,
        tables={
            entry["name"]: TableDigest(entry["rows"], entry["sha256"]).as_json() for entry in contents.tables
        },
        media_files=len(contents.media),
        media_bytes=sum(entry["size"] for entry in contents.media),
        media_sha256=media_digest([entry["name"] for entry in contents.media]),
        created_at=created_at,
        created_by=actor.label,
        created_by_person_id=actor.person_id,
        job_id=job_id,
    )
    try:
        await _record(database, record, contents.intercommunale_id)
    except BaseException:
        _discard(folder / file_name)
        raise
    if progress is not None:
        await progress(len(contents.tables) + 1, len(contents.tables) + 1, file_name)
    return record


async def _record(database: Database, record: CommuneExport, intercommunale_id: UUID | None) -> None:
    with platform_scope(f"record the export of commune {record.slug}"):
        async with database.transaction() as session:
            session.add(record)
            audit.record_platform(
                session,
                action="commune.export",
                object_type="commune",
                object_id=record.slug,
                intercommunale_id=intercommunale_id,
                changes={
                    "export": [None, str(record.id)],
                    "file": [None, record.file_name],
                    "sha256": [None, record.sha256],
                    "rows": [None, record.rows],
                    "media_files": [None, record.media_files],
                },
            )


async def list_exports(
    session: AsyncSession, *, commune_id: UUID | None = None, limit: int = 100
) -> list[CommuneExport]:
    """Exports, newest first (of one commune, or all); read in the platform scope."""
    query = select(CommuneExport).order_by(CommuneExport.created_at.desc(), CommuneExport.id.desc())
    if commune_id is not None:
        query = query.where(CommuneExport.commune_id == commune_id)
    return list(await session.scalars(query.limit(limit)))


async def get_export(session: AsyncSession, export_id: UUID) -> CommuneExport:
    export = await session.get(CommuneExport, export_id)
    if export is None:
        raise NotFound(gettext("No export has the id %(id)s.") % {"id": export_id})
    return export
