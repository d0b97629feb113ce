"""A commune's data from the console: exports (prepared by a job, then downloaded), deletion
after an export (typed confirmation), and import of an archive into this deployment
(operators)."""

from __future__ import annotations

import secrets
from uuid import UUID

from litestar import Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect

from perron import audit
from perron.console import access
from perron.console.web.common import (
    ConsoleRequest,
    console_page,
    errors_of,
    form_of,
    logged_in_guard,
    require_console_user,
    runtime_of,
)
from perron.console.web.pages import commune_page
from perron.errors import NotFound, PerronError
from perron.i18n import gettext
from perron.tenancy import archive
from perron.tenancy.archive.jobs import imports_folder, queue_export

MAX_ARCHIVE_BYTES = 2 * 1024 * 1024 * 1024
"""An archive uploaded for import (a large commune with its photos)."""


@post("/communes/{slug:str}/exports", name="console_commune_export", guards=[logged_in_guard])
async def export_start(request: ConsoleRequest, slug: FromPath[str]) -> Redirect:
    """Prepare a downloadable archive of everything of the commune (a job)."""
    user = require_console_user(request)
    async with runtime_of(request).database.transaction() as session:
        commune = await access.commune_for(session, user, slug)
        queue_export(session, commune.id)
    return Redirect(f"/communes/{slug}?done=export_queued#exports", status_code=303)


@get(
    "/communes/{slug:str}/exports/{export_id:uuid}",
    name="console_commune_export_file",
    guards=[logged_in_guard],
)
async def export_file(request: ConsoleRequest, slug: FromPath[str], export_id: FromPath[UUID]) -> File:
    user = require_console_user(request)
    runtime = runtime_of(request)
    async with runtime.database.session() as session:
        commune = await access.commune_for(session, user, slug)
        export = await archive.get_export(session, export_id)
        if export.commune_id != commune.id:
            raise NotFoundException()
        path = archive.export_path(runtime.settings, export)
    async with runtime.database.transaction() as session:
        audit.record_platform(
            session,
            action="commune.export_download",
            object_type="commune_export",
            object_id=str(export.id),
            intercommunale_id=commune.intercommunale_id,
            changes={"commune": slug},
        )
    return File(
        path=path,
        filename=f"{slug}-{export.created_at:%Y%m%d-%H%M%S}.zip",
        media_type="application/zip",
        headers={"cache-control": "no-store"},
    )


@post("/communes/{slug:str}/delete", name="console_commune_delete", guards=[logged_in_guard])
async def delete(request: ConsoleRequest, slug: FromPath[str]) -> Response[bytes] | Redirect:
    """Delete the commune after an export of its current state, naming it to confirm."""
    user = require_console_user(request)
    form = await form_of(request)
    runtime = runtime_of(request)
    async with runtime.database.session() as session:
        commune = await access.commune_for(session, user, slug)
    try:
        await archive.delete_commune(
            runtime.database, runtime.settings, commune.id, confirmation=str(form.get("confirmation", ""))
        )
    except NotFound:
        raise
    except PerronError as error:
        return await commune_page(
            request, slug, errors=errors_of(error, "confirmation"), status=error.status_code
        )
    return Redirect(f"/communes?done=deleted&name={slug}", status_code=303)


# Import (operators) -------------------------------------------------------------------------


def _import_page(
    request: ConsoleRequest, *, errors: dict[str, str] | None = None, **context: object
) -> Response[bytes]:
    return console_page(
        request,
        "perron/console/archive_import.html",
        status_code=400 if errors else 200,
        errors=errors or {},
        **context,
    )


@get("/archives", name="console_archives", guards=[logged_in_guard])
async def archives(request: ConsoleRequest) -> Response[bytes]:
    access.require_operator(require_console_user(request))
    return _import_page(request)


@post(
    "/archives",
    name="console_archive_upload",
    guards=[logged_in_guard],
    request_max_body_size=MAX_ARCHIVE_BYTES,
)
async def archive_upload(request: ConsoleRequest) -> Response[bytes]:
    """Check an uploaded archive (nothing is imported yet) and show what it holds."""
    access.require_operator(require_console_user(request))
    runtime = runtime_of(request)
    form = await form_of(request)
    upload = form.get("archive")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_page(request, errors={"archive": gettext("Choose the archive (.zip) to import.")})
    folder = imports_folder(runtime.settings)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"upload-{secrets.token_hex(8)}.zip"
    target = folder / name
    with target.open("wb") as out:
        while chunk := await upload.read(1024 * 1024):
            out.write(chunk)
    try:
        checked = await archive.check_archive(runtime.database, runtime.settings, target)
    except PerronError as error:
        target.unlink(missing_ok=True)
        problems = getattr(error, "problems", None) or [error.message]
        return _import_page(request, errors={"archive": error.message}, problems=problems)
    return _import_page(request, checked=checked, name=name)


@post("/archives/{name:str}/import", name="console_archive_import", guards=[logged_in_guard])
async def archive_import(request: ConsoleRequest, name: FromPath[str]) -> Response[bytes] | Redirect:
    access.require_operator(require_console_user(request))
    runtime = runtime_of(request)
    folder = imports_folder(runtime.settings)
    if not name.startswith("upload-") or "/" in name or not (folder / name).is_file():
        raise NotFoundException()
    try:
        report = await archive.import_commune(runtime.database, runtime.settings, folder / name)
    except PerronError as error:
        problems = getattr(error, "problems", None) or [error.message]
        return _import_page(request, errors={"archive": error.message}, problems=problems)
    (folder / name).unlink(missing_ok=True)
    return Redirect(f"/communes/{report.slug}?done=imported", status_code=303)


ROUTES = [export_start, export_file, delete, archives, archive_upload, archive_import]
