"""Onboarding communes from a CSV file, and the per-line report that follows them."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.console import access
from perron.console import bulk as importer
from perron.console import onboarding as flow
from perron.console.models import BulkOnboarding, Onboarding, OnboardingStatus
from perron.console.web.common import (
    ConsoleRequest,
    console_page,
    errors_of,
    form_of,
    logged_in_guard,
    path_id,
    require_console_user,
    runtime_of,
)
from perron.console.web.onboarding import _body_for_new
from perron.errors import Invalid, NotFound, PerronError
from perron.i18n import gettext
from perron.web.pages import READ_ONLY

TEMPLATE = (
    "name;nis;domain;languages;admin_email\n"
    "Ciney;91030;ciney.be;fr;marie.dubois@ciney.be\n"
    "Eupen;63023;eupen.be;de fr;k.schmitz@eupen.be\n"
)


async def _form_page(
    request: ConsoleRequest, *, errors: dict[str, str] | None = None, chosen: str = ""
) -> Response[bytes]:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        bodies = await access.visible_intercommunales(session, user)
    return console_page(
        request,
        "perron/console/import.html",
        status_code=400 if errors else 200,
        bodies=bodies,
        errors=errors or {},
        chosen=chosen or request.query_params.get("intercommunale", ""),
        max_lines=importer.MAX_LINES,
    )


@get("/imports/new", name="console_import_form", guards=[logged_in_guard])
async def import_form(request: ConsoleRequest) -> Response[bytes]:
    return await _form_page(request)


@get("/imports/template.csv", name="console_import_template", guards=[logged_in_guard], opt=READ_ONLY)
async def import_template(request: ConsoleRequest) -> Response[str]:
    return Response(
        TEMPLATE,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="communes.csv"'},
    )


@post(
    "/imports",
    name="console_import",
    guards=[logged_in_guard],
    request_max_body_size=importer.MAX_BYTES + 256 * 1024,
)
async def import_file(request: ConsoleRequest) -> Response[bytes] | Redirect:
    user = require_console_user(request)
    form = await form_of(request)
    runtime = runtime_of(request)
    chosen = str(form.get("intercommunale", ""))
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("file", gettext("Choose the CSV file to import."))
        data = await upload.read(importer.MAX_BYTES + 1)
        async with runtime.database.transaction() as session:
            body = await _body_for_new(session, user, chosen)
            bulk = await importer.import_file(
                session,
                body=body,
                data=data,
                filename=upload.filename,
                created_by=user.email,
                console_host=runtime.settings.console_host,
            )
    except NotFound:
        raise
    except PerronError as error:
        return await _form_page(request, errors=errors_of(error, "file"), chosen=chosen)
    return Redirect(f"/imports/{bulk.id}", status_code=303)


async def report_context(session: AsyncSession, bulk: BulkOnboarding) -> dict[str, Any]:
    onboardings = {
        str(item.id): item
        for item in await session.scalars(select(Onboarding).where(Onboarding.bulk_id == bulk.id))
    }
    runs = await flow.job_states(session, [item.job_id for item in onboardings.values() if item.job_id])
    outcomes: dict[str, str] = {}
    counts = {"done": 0, "working": 0, "failed": 0}
    for key, item in onboardings.items():
        if item.status is OnboardingStatus.DONE:
            outcomes[key], counts["done"] = "done", counts["done"] + 1
            continue
        state = runs.get(item.job_id, "queued") if item.job_id else "queued"
        if state == "failed":
            outcomes[key], counts["failed"] = "failed", counts["failed"] + 1
        else:
            outcomes[key], counts["working"] = state, counts["working"] + 1
    return {
        "bulk": bulk,
        "outcomes": outcomes,
        "counts": counts,
        "finished": counts["working"] == 0,
    }


def _outcome_words() -> dict[str, str]:
    return {
        "done": gettext("on board"),
        "failed": gettext("provisioning failed"),
        "queued": gettext("waiting to start"),
        "running": gettext("being provisioned"),
        "retrying": gettext("waiting to retry"),
    }


async def _bulk(request: ConsoleRequest, bulk_id: str) -> tuple[BulkOnboarding, dict[str, Any]]:
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        bulk = await access.bulk_for(session, user, path_id(bulk_id))
        return bulk, await report_context(session, bulk)


@get("/imports/{bulk_id:str}", name="console_import_report", guards=[logged_in_guard], opt=READ_ONLY)
async def report(request: ConsoleRequest, bulk_id: FromPath[str]) -> Response[bytes]:
    _, context = await _bulk(request, bulk_id)
    return console_page(request, "perron/console/import_report.html", words=_outcome_words(), **context)


@get("/imports/{bulk_id:str}/lines", name="console_import_lines", guards=[logged_in_guard], opt=READ_ONLY)
async def report_lines(request: ConsoleRequest, bulk_id: FromPath[str]) -> Response[bytes]:
    """The report's table alone (what the page's script refreshes)."""
    _, context = await _bulk(request, bulk_id)
    return console_page(request, "perron/console/_import_lines.html", words=_outcome_words(), **context)


@get("/imports/{bulk_id:str}/report.csv", name="console_import_csv", guards=[logged_in_guard], opt=READ_ONLY)
async def report_csv(request: ConsoleRequest, bulk_id: FromPath[str]) -> Response[str]:
    bulk, context = await _bulk(request, bulk_id)
    words = _outcome_words()
    outcomes = {key: words.get(value, value) for key, value in context["outcomes"].items()}
    return Response(
        importer.report_csv(bulk, outcomes),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="report-{bulk.id}.csv"'},
    )


ROUTES = [import_form, import_template, import_file, report, report_lines, report_csv]
