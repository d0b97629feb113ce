"""Commune archives: export everything of one commune, delete it, import it back.

An archive is a zip file:

* ``manifest.json``: format and version, Perron's version, the database's schema
  revisions (Alembic heads, every module branch included), the commune's identity (id,
  slug, NIS code, names, languages, status, its intercommunale by slug), when and by whom
  it was made, and per file its size, row count and SHA-256; the tables left out and why;
* ``tables/<table>.json``: every column of every row of the commune, one row per line,
  typed so that values come back exactly (:mod:`.codec`);
* ``media/<kind>/<sha256>.<ext>``: the commune's files (its logo...).

What the console calls (all in the platform scope, as the person acting):

* :func:`export_commune` / :func:`queue_export` (job :data:`EXPORT_JOB`), then
  :func:`list_exports`, :func:`get_export` and :func:`export_path` to offer the download;
* :func:`delete_commune` / :func:`queue_delete` (job :data:`DELETE_JOB`);
* :func:`check_archive` (preview, writes nothing) and :func:`import_commune` /
  :func:`queue_import` (job :data:`IMPORT_JOB`, for a file in :func:`imports_folder`).
"""

from perron.tenancy.archive.codec import ArchiveFormatError, UnarchivableColumn
from perron.tenancy.archive.deletion import DeletionReport, check_confirmation, delete_commune
from perron.tenancy.archive.export import (
    FORMAT,
    FORMAT_VERSION,
    export_commune,
    export_path,
    exports_folder,
    get_export,
    list_exports,
)
from perron.tenancy.archive.importing import (
    ArchiveCheck,
    ArchiveRefused,
    ImportReport,
    Manifest,
    check_archive,
    import_commune,
)
from perron.tenancy.archive.jobs import (
    DELETE_JOB,
    EXPORT_JOB,
    IMPORT_JOB,
    imports_folder,
    queue_delete,
    queue_export,
    queue_import,
)
from perron.tenancy.archive.models import CommuneExport
from perron.tenancy.archive.tables import TRANSIENT, archived_tables, left_out_tables

__all__ = [
    "DELETE_JOB",
    "EXPORT_JOB",
    "FORMAT",
    "FORMAT_VERSION",
    "IMPORT_JOB",
    "TRANSIENT",
    "ArchiveCheck",
    "ArchiveFormatError",
    "ArchiveRefused",
    "CommuneExport",
    "DeletionReport",
    "ImportReport",
    "Manifest",
    "UnarchivableColumn",
    "archived_tables",
    "check_archive",
    "check_confirmation",
    "delete_commune",
    "export_commune",
    "export_path",
    "exports_folder",
    "get_export",
    "import_commune",
    "imports_folder",
    "left_out_tables",
    "list_exports",
    "queue_delete",
    "queue_export",
    "queue_import",
]
