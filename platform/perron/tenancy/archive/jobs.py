"""Export, import and deletion as platform jobs the console queues and follows.

Each is a platform job (``per_tenant=False``): its status record (``platform_job_runs``,
read with :func:`perron.jobs.status`) outlives the commune it was about. The person who
queued the job is carried in its arguments and acts in it, so the export record and the
platform audit log name them, not the job runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import Actor, ActorKind, acting_as, current_actor
from perron.config import Settings
from perron.db.engine import Database
from perron.errors import Invalid
from perron.i18n import gettext
from perron.identity.jobs import current_settings
from perron.jobs import JobContext, QueuedJob, enqueue, job
from perron.tenancy.archive.deletion import delete_commune
from perron.tenancy.archive.export import export_commune
from perron.tenancy.archive.importing import import_commune

EXPORT_JOB = "perron.tenancy.export_commune"
IMPORT_JOB = "perron.tenancy.import_commune"
DELETE_JOB = "perron.tenancy.delete_commune"

_LONG = 6 * 3600 * 1000
"""A large commune takes a while; the jobs may run for hours."""


def imports_folder(settings: Settings) -> Path:
    """Where an archive waits to be imported by :data:`IMPORT_JOB`: ``<data_dir>/imports``
    (the console saves uploads there)."""
    return Path(settings.data_dir) / "imports"


def _actor_arguments() -> dict[str, Any]:
    actor = current_actor()
    return {
        "kind": actor.kind.value,
        "label": actor.label,
        "person_id": str(actor.person_id) if actor.person_id else None,
    }


def _actor(requested_by: dict[str, Any] | None, job_name: str) -> Actor:
    if not requested_by:
        return Actor(ActorKind.SYSTEM, f"job:{job_name}")
    person = requested_by.get("person_id")
    return Actor(
        ActorKind(requested_by["kind"]), str(requested_by["label"]), UUID(person) if person else None
    )


def _commune_id(value: str) -> UUID:
    try:
        return UUID(value)
    except (TypeError, ValueError):
        raise Invalid("commune_id", gettext("%(value)s is not a commune id.") % {"value": value}) from None


def _settings() -> Settings:
    settings = current_settings()
    if settings is None:
        raise RuntimeError("this process has no runtime settings: archive jobs run in a started runtime")
    return settings


def queue_export(session: AsyncSession, commune_id: UUID) -> QueuedJob:
    """Queue the export of a commune (platform scope); follow it with
    :func:`perron.jobs.status`. Its result: ``{"export_id", "file", "size", "sha256", "rows",
    "media_files"}``."""
    return enqueue(session, EXPORT_JOB, commune_id=str(commune_id), requested_by=_actor_arguments())


def queue_import(session: AsyncSession, archive: str) -> QueuedJob:
    """Queue the import of ``<data_dir>/imports/<archive>`` (a file name, no folders).
    Its result: ``{"commune_id", "slug", "rows", "media_files", "warnings"}``."""
    if not archive or Path(archive).name != archive or archive.startswith("."):
        raise Invalid("archive", gettext("Give the name of a file in the imports folder."))
    return enqueue(session, IMPORT_JOB, archive=archive, requested_by=_actor_arguments())


def queue_delete(session: AsyncSession, commune_id: UUID, confirmation: str) -> QueuedJob:
    """Queue the deletion of a commune; the job refuses it as :func:`delete_commune` does.
    Its result: ``{"slug", "export_id", "rows", "media_files"}``."""
    return enqueue(
        session,
        DELETE_JOB,
        commune_id=str(commune_id),
        confirmation=confirmation,
        requested_by=_actor_arguments(),
    )


@job(EXPORT_JOB, per_tenant=False, max_retries=3, time_limit_ms=_LONG)
async def export_commune_job(
    ctx: JobContext, commune_id: str, requested_by: dict[str, Any] | None = None
) -> dict[str, Any]:
    settings = _settings()
    database = Database(settings.database, pooled=False)
    try:
        with acting_as(_actor(requested_by, EXPORT_JOB)):
            export = await export_commune(
                database, settings, _commune_id(commune_id), progress=ctx.progress, job_id=ctx.job_id
            )
    finally:
        await database.dispose()
    return {
        "export_id": str(export.id),
        "file": export.file_name,
        "size": export.size,
        "sha256": export.sha256,
        "rows": export.rows,
        "media_files": export.media_files,
    }


@job(IMPORT_JOB, per_tenant=False, max_retries=3, time_limit_ms=_LONG)
async def import_commune_job(
    ctx: JobContext, archive: str, requested_by: dict[str, Any] | None = None
) -> dict[str, Any]:
    settings = _settings()
    path = imports_folder(settings) / Path(archive).name
    database = Database(settings.database, pooled=False)
    try:
        with acting_as(_actor(requested_by, IMPORT_JOB)):
            report = await import_commune(database, settings, path)
    finally:
        await database.dispose()
    return {
        "commune_id": str(report.commune_id),
        "slug": report.slug,
        "rows": sum(report.rows.values()),
        "media_files": report.media_files,
        "warnings": report.warnings,
    }


@job(DELETE_JOB, per_tenant=False, max_retries=3, time_limit_ms=_LONG)
async def delete_commune_job(
    ctx: JobContext, commune_id: str, confirmation: str, requested_by: dict[str, Any] | None = None
) -> dict[str, Any]:
    settings = _settings()
    database = Database(settings.database, pooled=False)
    try:
        with acting_as(_actor(requested_by, DELETE_JOB)):
            report = await delete_commune(
                database, settings, _commune_id(commune_id), confirmation=confirmation
            )
    finally:
        await database.dispose()
    return {
        "slug": report.slug,
        "export_id": str(report.export.id),
        "rows": sum(report.rows.values()),
        "media_files": report.media_files,
    }
