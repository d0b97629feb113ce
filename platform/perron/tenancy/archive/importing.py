"""Restoring a commune from its archive, into a deployment that does not have it.

:func:`check_archive` reads the whole archive before anything is written: the format
version, the schema revisions (they must be this deployment's), every file's size and
SHA-256 against the manifest, every row (types, required values, owner), the commune's
identity (the rules :func:`perron.tenancy.actions.create_commune` applies), and that no
commune here already has its id, slug, NIS code or one of its domains. Any problem refuses
the archive with every reason found, and nothing is written.

:func:`import_commune` then writes everything in one transaction, in the commune's own
scope (so on PostgreSQL row-level security checks every row it inserts), tables in
foreign-key order, media files first (removed again if the transaction rolls back). The
files are read a second time and hashed again on the way: an archive replaced between the
check and the import is refused, not half-trusted.

The checksums detect damage and edits, not a forger who rewrites the manifest too: import
only archives made by a Perron deployment you trust.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.cache import invalidate
from perron.config import Settings
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import Invalid, PerronError
from perron.i18n import gettext
from perron.identity.jobs import commune_login_changed
from perron.logging import get_logger
from perron.media import MediaError, MediaStore, media_type_of
from perron.tenancy.archive.codec import ArchiveFormatError, iter_lines, read_table
from perron.tenancy.archive.export import FORMAT, FORMAT_VERSION, MANIFEST, schema_revisions
from perron.tenancy.archive.tables import BATCH, ArchivedTable, archived_tables
from perron.tenancy.models import Commune, Domain, Intercommunale
from perron.tenancy.validation import check_domain, check_languages, check_names, check_nis_code, check_slug

log = get_logger("perron.archive")

MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_ROW_BYTES = 64 * 1024 * 1024
SHA256 = r"^[0-9a-f]{64}$"


class ArchiveRefused(PerronError):
    """The archive cannot be imported; ``problems`` says every reason found. Nothing changed."""

    status_code = 422

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        intro = gettext("The archive cannot be imported; nothing was changed:")
        super().__init__(intro + "".join(f"\n  - {problem}" for problem in problems))


# The manifest ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TableEntry(_Strict):
    name: str
    file: str
    scope: Literal["platform", "tenant"]
    rows: int = Field(ge=0)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)


class MediaEntry(_Strict):
    name: str
    file: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)


class IntercommunaleReference(_Strict):
    slug: str
    names: dict[str, str]


class CommuneIdentity(_Strict):
    id: UUID
    slug: str
    nis_code: str
    names: dict[str, str]
    languages: list[str]
    status: str
    intercommunale: IntercommunaleReference | None


class Manifest(_Strict):
    format: str
    format_version: int
    perron_version: str
    schema_revisions: list[str]
    database: str
    export_id: UUID
    created_at: dt.datetime
    created_by: str
    commune: CommuneIdentity
    tables: list[TableEntry]
    media: list[MediaEntry]
    left_out: dict[str, str]


@dataclass(frozen=True)
class ArchiveCheck:
    """What an archive holds, once checked: show it before importing."""

    path: Path
    manifest: Manifest
    intercommunale_id: UUID | None
    """This deployment's intercommunale the commune will belong to (None: detached)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def commune_id(self) -> UUID:
        return self.manifest.commune.id

    @property
    def slug(self) -> str:
        return self.manifest.commune.slug

    @property
    def rows(self) -> dict[str, int]:
        return {entry.name: entry.rows for entry in self.manifest.tables}


@dataclass(frozen=True)
class ImportReport:
    commune_id: UUID
    slug: str
    rows: dict[str, int]
    media_files: int
    warnings: list[str]
    leftovers_removed: int = 0
    """Files found in the commune's media folder that the archive does not hold (left by an
    earlier deletion that could not finish); removed once the import is committed."""


# Reading the zip ------------------------------------------------------------------------


@contextmanager
def _open(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveRefused([gettext("There is no file %(path)s.") % {"path": path}]) from None
    except (zipfile.BadZipFile, IsADirectoryError, OSError):
        raise ArchiveRefused(
            [gettext("%(path)s is not a zip archive (or it is damaged).") % {"path": path}]
        ) from None
    try:
        yield archive
    finally:
        archive.close()


class _Counted:
    """A member's bytes, hashed and refused past the size the manifest gives."""

    def __init__(self, stream: IO[bytes], file: str, size: int) -> None:
        self.stream = stream
        self.file = file
        self.limit = size
        self.size = 0
        self.digest = hashlib.sha256()

    def _take(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.limit:
            raise ArchiveFormatError(
                gettext("%(file)s is larger than the manifest says.") % {"file": self.file}
            )
        self.digest.update(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._take(self.stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._take(self.stream.readline(size))


def _member_names(archive: zipfile.ZipFile) -> list[str]:
    names = [info.filename for info in archive.infolist()]
    problems = []
    for name in sorted(set(names)):
        if names.count(name) > 1:
            problems.append(gettext("%(file)s appears twice in the archive.") % {"file": name})
        if name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/") or "\0" in name:
            problems.append(gettext("%(file)s is not a name Perron writes.") % {"file": repr(name)})
    if problems:
        raise ArchiveRefused(problems)
    return names


def _read_manifest(archive: zipfile.ZipFile) -> Manifest:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveRefused(
            [gettext("The archive has no %(file)s: it is not a commune archive.") % {"file": MANIFEST}]
        ) from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveRefused([gettext("%(file)s is too large.") % {"file": MANIFEST}])
    try:
        raw = archive.read(MANIFEST)
        document = json.loads(raw)
    except (ValueError, zipfile.BadZipFile, OSError):
        raise ArchiveRefused([gettext("%(file)s is not readable JSON.") % {"file": MANIFEST}]) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArchiveRefused([gettext("%(file)s does not describe a commune archive.") % {"file": MANIFEST}])
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ArchiveRefused(
            [
                gettext(
                    "The archive's format version is %(version)s; this Perron reads version "
                    "%(expected)s only."
                )
                % {"version": json.dumps(version), "expected": FORMAT_VERSION}
            ]
        )
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as error:
        problems = [
            f"{MANIFEST}: {'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()[:20]
        ]
        raise ArchiveRefused(problems) from None


def _check_layout(archive: zipfile.ZipFile, manifest: Manifest, tables: list[ArchivedTable]) -> None:
    problems: list[str] = []
    expected = {table.name: table for table in tables}
    listed = [entry.name for entry in manifest.tables]
    for name in sorted(set(expected) - set(listed)):
        problems.append(
            gettext("The archive has no table %(table)s, which this deployment has.") % {"table": name}
        )
    for name in sorted(set(listed) - set(expected)):
        problems.append(
            gettext("The archive holds a table %(table)s, which this deployment does not archive.")
            % {"table": name}
        )
    for entry in manifest.tables:
        table = expected.get(entry.name)
        if table is not None and (entry.file != table.file or entry.scope != table.scope):
            problems.append(gettext("%(file)s is not where Perron writes that table.") % {"file": entry.file})
    for item in manifest.media:
        try:
            media_type_of(item.name)
            right = item.file == f"media/{item.name}" and item.name.split("/", 1)[1].startswith(item.sha256)
        except MediaError:
            right = False
        if not right:
            problems.append(gettext("%(file)s is not a media file Perron writes.") % {"file": item.file})
    files = [entry.file for entry in manifest.tables] + [entry.file for entry in manifest.media]
    for file in sorted({name for name in files if files.count(name) > 1}):
        problems.append(gettext("The manifest lists %(file)s twice.") % {"file": file})
    present = {info.filename: info for info in archive.infolist()}
    sizes = {entry.file: entry.size for entry in manifest.tables} | {
        entry.file: entry.size for entry in manifest.media
    }
    for file, size in sizes.items():
        info = present.get(file)
        if info is None:
            problems.append(gettext("%(file)s is listed in the manifest but missing.") % {"file": file})
        elif info.file_size != size:
            problems.append(
                gettext("%(file)s holds %(actual)s bytes; the manifest says %(expected)s.")
                % {"file": file, "actual": info.file_size, "expected": size}
            )
    for file in sorted(set(present) - set(sizes) - {MANIFEST}):
        if not file.endswith("/"):
            problems.append(gettext("%(file)s is in the archive but not in its manifest.") % {"file": file})
    if problems:
        raise ArchiveRefused(problems)


def _check_checksums(archive: zipfile.ZipFile, manifest: Manifest) -> None:
    problems: list[str] = []
    entries: list[TableEntry | MediaEntry] = [*manifest.tables, *manifest.media]
    for entry in entries:
        try:
            with archive.open(entry.file) as stream:
                counted = _Counted(stream, entry.file, entry.size)
                while counted.read(1 << 20):
                    pass
        except (ArchiveFormatError, zipfile.BadZipFile, OSError, EOFError) as error:
            problems.append(
                gettext("%(file)s cannot be read (%(reason)s).") % {"file": entry.file, "reason": error}
            )
            continue
        if counted.digest.hexdigest() != entry.sha256:
            problems.append(
                gettext("%(file)s does not match its checksum in the manifest: it was changed or damaged.")
                % {"file": entry.file}
            )
    if problems:
        raise ArchiveRefused(problems)


def _rows_of(
    archive: zipfile.ZipFile, entry: TableEntry, table: ArchivedTable
) -> tuple[_Counted, Iterator[list[Any]], IO[bytes]]:
    stream = archive.open(entry.file)
    try:
        counted = _Counted(stream, entry.file, entry.size)
        header, rows = read_table(iter_lines(counted, MAX_ROW_BYTES), entry.file, table.codecs)
        expected = [(codec.name, codec.kind) for codec in table.codecs]
        if header.table != table.name or header.columns != expected:
            raise ArchiveFormatError(
                gettext("%(file)s does not have the columns of table %(table)s in this deployment.")
                % {"file": entry.file, "table": table.name}
            )
    except BaseException:
        stream.close()
        raise
    return counted, rows, stream


def _check_rows(archive: zipfile.ZipFile, manifest: Manifest, tables: list[ArchivedTable]) -> None:
    commune_id = manifest.commune.id
    by_name = {table.name: table for table in tables}
    problems: list[str] = []
    for entry in manifest.tables:
        table = by_name[entry.name]
        count = 0
        primaries = 0
        try:
            _counted, rows, stream = _rows_of(archive, entry, table)
            with stream:
                for count, row in enumerate(rows, start=1):
                    owner = row[table.owner_index]
                    if owner != commune_id:
                        raise ArchiveFormatError(
                            gettext("%(file)s, row %(row)s, belongs to another commune (%(owner)s).")
                            % {"file": entry.file, "row": count, "owner": owner}
                        )
                    if table.name == "communes":
                        problems.extend(
                            _identity_problems(dict(zip(table.attribute_keys(), row, strict=True)), manifest)
                        )
                    if table.name == "domains":
                        values = dict(zip(table.attribute_keys(), row, strict=True))
                        primaries += bool(values["is_primary"])
                        problems.extend(_domain_problems(values["host"], entry.file, count))
        except ArchiveFormatError as error:
            problems.append(str(error))
            continue
        if count != entry.rows:
            problems.append(
                gettext("%(file)s holds %(actual)s rows; the manifest says %(expected)s.")
                % {"file": entry.file, "actual": count, "expected": entry.rows}
            )
        if table.name == "communes" and count != 1:
            problems.append(gettext("%(file)s must hold exactly the commune's row.") % {"file": entry.file})
        if table.name == "domains" and primaries != 1:
            problems.append(gettext("%(file)s must hold exactly one primary domain.") % {"file": entry.file})
    if problems:
        raise ArchiveRefused(problems)


def _identity_problems(values: dict[str, Any], manifest: Manifest) -> list[str]:
    identity = manifest.commune
    problems: list[str] = []
    for key in ("slug", "nis_code"):
        if values[key] != getattr(identity, key):
            problems.append(
                gettext("tables/communes.json and the manifest disagree on the commune's %(field)s.")
                % {"field": key}
            )
    try:
        check_slug(values["slug"])
        check_nis_code(values["nis_code"])
        languages = check_languages(values["languages"])
        check_names(values["names"], languages)
    except Invalid as error:
        problems.append(f"tables/communes.json: {error.message}")
    return problems


def _domain_problems(host: str, file: str, row: int) -> list[str]:
    try:
        if check_domain(host) != host:
            raise Invalid(
                "host", gettext("%(host)s is not written the way Perron stores domains.") % {"host": host}
            )
    except Invalid as error:
        return [f"{file}, row {row}: {error.reason}"]
    return []


async def _conflicts(
    session: AsyncSession, archive: zipfile.ZipFile, manifest: Manifest, console_host: str
) -> list[str]:
    identity = manifest.commune
    problems: list[str] = []
    same_id = await session.scalar(select(Commune.slug).where(Commune.id == identity.id))
    if same_id is not None:
        problems.append(
            gettext("This deployment already has the commune %(slug)s with the same id (%(id)s).")
            % {"slug": same_id, "id": identity.id}
        )
    if await session.scalar(select(Commune.id).where(Commune.slug == identity.slug)) is not None:
        problems.append(
            gettext("A commune of this deployment already has the slug %(slug)s.") % {"slug": identity.slug}
        )
    holder = await session.scalar(select(Commune.slug).where(Commune.nis_code == identity.nis_code))
    if holder is not None:
        problems.append(
            gettext("NIS code %(nis)s already belongs to the commune %(slug)s here.")
            % {"nis": identity.nis_code, "slug": holder}
        )
    for host in _hosts(archive, manifest):
        if host == console_host:
            problems.append(gettext("%(host)s is the console of this deployment.") % {"host": host})
            continue
        owner = await session.scalar(
            select(Commune.slug).join(Domain, Domain.commune_id == Commune.id).where(Domain.host == host)
        )
        if owner is not None:
            problems.append(
                gettext("The domain %(host)s already belongs to the commune %(slug)s here.")
                % {"host": host, "slug": owner}
            )
    return problems


def _hosts(archive: zipfile.ZipFile, manifest: Manifest) -> list[str]:
    table = next(table for table in archived_tables() if table.name == "domains")
    entry = next(entry for entry in manifest.tables if entry.name == "domains")
    _counted, rows, stream = _rows_of(archive, entry, table)
    host = table.attribute_keys().index("host")
    with stream:
        return [row[host] for row in rows]


async def _intercommunale(session: AsyncSession, manifest: Manifest) -> tuple[UUID | None, list[str]]:
    reference = manifest.commune.intercommunale
    if reference is None:
        return None, []
    found = await session.scalar(select(Intercommunale.id).where(Intercommunale.slug == reference.slug))
    if found is not None:
        return found, []
    return None, [
        gettext(
            "The intercommunale %(slug)s does not exist here: the commune is imported without one "
            "(its defaults and locked settings do not apply); attach it once the intercommunale exists."
        )
        % {"slug": reference.slug}
    ]


# The public steps ------------------------------------------------------------------------


async def check_archive(database: Database, settings: Settings, path: Path) -> ArchiveCheck:
    """Read and check the whole archive at ``path`` against this deployment, writing
    nothing. Returns what it holds; raises :class:`ArchiveRefused` with every reason."""
    path = Path(path)
    tables = archived_tables()
    with _open(path) as archive:
        _member_names(archive)
        manifest = _read_manifest(archive)
        with platform_scope("check a commune archive before importing it"):
            async with database.session() as session:
                here = await schema_revisions(session)
        if sorted(manifest.schema_revisions) != here:
            raise ArchiveRefused(
                [
                    gettext(
                        "The archive was made with the database schema at %(archive)s; this deployment "
                        "is at %(here)s. Import it into a deployment at the same revisions."
                    )
                    % {"archive": ", ".join(sorted(manifest.schema_revisions)), "here": ", ".join(here)}
                ]
            )
        _check_layout(archive, manifest, tables)
        _check_checksums(archive, manifest)
        _check_rows(archive, manifest, tables)
        with platform_scope("check a commune archive before importing it"):
            async with database.session() as session:
                conflicts = await _conflicts(session, archive, manifest, settings.console_host)
                intercommunale_id, warnings = await _intercommunale(session, manifest)
        if conflicts:
            raise ArchiveRefused(conflicts)
    return ArchiveCheck(path, manifest, intercommunale_id, warnings)


async def import_commune(
    database: Database, settings: Settings, path: Path, *, checked: ArchiveCheck | None = None
) -> ImportReport:
    """Restore the commune of the archive at ``path`` into this deployment, in one
    transaction: every row, its media files, then caches invalidated and its login clients
    queued for Keycloak. Audited in the platform log as the current actor. Raises
    :class:`ArchiveRefused` (nothing written) when the archive does not pass
    :func:`check_archive` (run again here unless ``checked`` is its result for ``path``).
    """
    path = Path(path)
    check = (
        checked
        if checked is not None and checked.path == path
        else await check_archive(database, settings, path)
    )
    manifest = check.manifest
    commune_id = manifest.commune.id
    media = MediaStore.for_settings(settings)
    tables = {table.name: table for table in archived_tables()}
    restored = {entry.name for entry in manifest.media}
    try:
        with _open(path) as archive, tenant_scope(commune_id):
            async with database.transaction() as session:
                conflicts = await _conflicts(session, archive, manifest, settings.console_host)
                if conflicts:
                    raise ArchiveRefused(conflicts)
                for item in manifest.media:
                    data = archive.read(item.file)
                    if hashlib.sha256(data).hexdigest() != item.sha256:
                        raise ArchiveRefused(
                            [gettext("%(file)s changed since it was checked.") % {"file": item.file}]
                        )
                    kind = item.name.split("/", 1)[0]
                    media.put_for(session, kind, data, media_type_of(item.name))
                leftovers = [name for name in media.every_name() if name not in restored]
                for name in leftovers:
                    media.delete_after_commit(session, name)
                for entry in manifest.tables:
                    await _insert_table(session, archive, entry, tables[entry.name], check)
                invalidate(session, commune_id, hosts=True)
                commune_login_changed(session, commune_id)
                audit.record_platform(
                    session,
                    action="commune.import",
                    object_type="commune",
                    object_id=manifest.commune.slug,
                    intercommunale_id=check.intercommunale_id,
                    changes={
                        "commune": [None, str(commune_id)],
                        "export": [None, str(manifest.export_id)],
                        "archive": [None, path.name],
                        "rows": [None, sum(check.rows.values())],
                        "media_files": [None, len(manifest.media)],
                        "warnings": [None, check.warnings],
                    },
                )
    except IntegrityError as error:
        raise ArchiveRefused(
            [
                gettext("The archive collides with data of this deployment (%(reason)s).")
                % {"reason": _first_line(error)}
            ]
        ) from None
    except ProgrammingError as error:
        if "row-level security" not in str(error.orig):
            raise
        log.warning("security.isolation_blocked", during="commune import", reason=_first_line(error))
        raise ArchiveRefused(
            [gettext("A row of the archive belongs to another commune (refused by row-level security).")]
        ) from None
    except ArchiveFormatError as error:
        raise ArchiveRefused([str(error)]) from None
    return ImportReport(
        commune_id, manifest.commune.slug, check.rows, len(manifest.media), check.warnings, len(leftovers)
    )


def _first_line(error: DBAPIError) -> str:
    text = str(error.orig if error.orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


async def _insert_table(
    session: AsyncSession,
    archive: zipfile.ZipFile,
    entry: TableEntry,
    table: ArchivedTable,
    check: ArchiveCheck,
) -> None:
    keys = table.attribute_keys()
    counted, rows, stream = _rows_of(archive, entry, table)
    with stream:
        batch: list[dict[str, Any]] = []
        for row in rows:
            values = dict(zip(keys, row, strict=True))
            if table.name == "communes":
                values["intercommunale_id"] = check.intercommunale_id
            batch.append(values)
            if len(batch) >= BATCH:
                await session.execute(insert(table.model), batch)
                batch = []
        if batch:
            await session.execute(insert(table.model), batch)
    if counted.digest.hexdigest() != entry.sha256:
        raise ArchiveRefused([gettext("%(file)s changed since it was checked.") % {"file": entry.file}])
