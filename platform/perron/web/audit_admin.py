"""The commune's audit log (``/admin/audit``, administrators): who changed what, and when.

Newest first, fifty entries a page, with "older entries" links that carry the last entry seen
(keyset pagination: the log grows forever, and a page deep in it costs what the first does).
Filters: a kind of change, a person (or the platform's own changes), a range of dates in
Brussels time. ``/admin/audit.csv`` downloads the entries the same filters keep; the download
itself is recorded in the log. Only the commune's own entries are ever read: the queries run
in its scope (see :mod:`perron.audit_log`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get
from litestar.response import Stream
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit, audit_log
from perron.audit import AuditEntry
from perron.db.engine import Database
from perron.errors import Invalid
from perron.i18n import TIME_ZONE, format_datetime, gettext
from perron.identity import roles
from perron.identity.models import Account, AccountKind
from perron.modules.registry import registry
from perron.tenancy.site import TenantSite
from perron.web.admin_pages import page, parse_day
from perron.web.auth import staff_guard
from perron.web.pages import READ_ONLY

SiteRequest = Request[Any, Any, Any]

BASE = "/admin/audit"
GUARDS = [staff_guard(roles.ADMIN)]
PLATFORM = "platform"
SHOWN_VALUE = 300
"""Characters of a changed value shown on the page (the download has them whole)."""


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _database(request: SiteRequest) -> Database:
    database: Database = request.app.state.runtime.database
    return database


def module_titles(language: str) -> dict[str, str]:
    """Every installed module's title (a module switched off since still has its entries)."""
    return {manifest.name: manifest.title(language) for manifest in registry.ordered()}


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight in Brussels, as the UTC moment the log compares with."""
    return dt.datetime.combine(day, dt.time(), TIME_ZONE).astimezone(dt.UTC)


@dataclass(frozen=True)
class Query:
    """The filters as they came (to show them again) and as the log reads them."""

    values: dict[str, str]
    chosen: audit_log.AuditFilter
    person_label: str | None


async def _person_label(session: AsyncSession, person: UUID) -> str | None:
    """The name of a person of this commune who may appear in the log (a deleted account
    keeps the name its entries were written with); None for anyone else."""
    name: str | None = await session.scalar(select(Account.display_name).where(Account.id == person))
    if name is None:
        name = await session.scalar(
            select(AuditEntry.actor_label)
            .where(AuditEntry.actor_person_id == person)
            .order_by(AuditEntry.occurred_at.desc())
            .limit(1)
        )
    return name


async def read_query(
    session: AsyncSession, params: Mapping[str, str], known: Mapping[str, audit_log.Kind]
) -> tuple[Query, dict[str, str]]:
    """The filters of a request, and the errors of those that cannot be used (field: message)."""
    values = {name: (params.get(name) or "").strip()[:64] for name in ("kind", "person", "from", "to")}
    errors: dict[str, str] = {}
    kind = values["kind"] or None
    if kind is not None and kind not in known:
        errors["kind"] = gettext("Choose a kind of change from the list.")
    person: UUID | None = None
    label: str | None = None
    if values["person"] and values["person"] != PLATFORM:
        try:
            person = UUID(values["person"])
        except ValueError:
            person = None
        label = await _person_label(session, person) if person is not None else None
        if label is None:
            errors["person"] = gettext("Choose a person from the list.")
    days: dict[str, dt.date | None] = {}
    for name in ("from", "to"):
        try:
            day = parse_day(values[name], name)
        except Invalid as error:
            errors[name] = error.reason
            day = None
        if day is not None:
            values[name] = day.isoformat()  # what a date field shows again
        days[name] = day
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors["to"] = gettext("The last day is before the first day: swap them, or change one.")
    chosen = audit_log.AuditFilter(
        kind=kind if "kind" not in errors else None,
        person=person if "person" not in errors else None,
        platform_only=values["person"] == PLATFORM,
        since=_start_of(days["from"]) if days["from"] else None,
        until=_start_of(days["to"] + dt.timedelta(days=1)) if days["to"] else None,
    )
    return Query(values, chosen, label), errors


async def _people(session: AsyncSession) -> list[tuple[str, str]]:
    """The commune's staff, past and present: whose changes an admin most often looks for."""
    rows = await session.execute(
        select(Account.id, Account.display_name, Account.disabled)
        .where(Account.kind == AccountKind.STAFF)
        .order_by(Account.display_name, Account.id)
    )
    return [
        (
            str(account_id),
            name if not disabled else gettext("%(name)s (no longer on the staff)") % {"name": name},
        )
        for account_id, name, disabled in rows.tuples()
    ]


def _row(entry: AuditEntry, titles: Mapping[str, str], language: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "when": format_datetime(entry.occurred_at, "medium", language=language),
        "when_iso": entry.occurred_at.astimezone(TIME_ZONE).isoformat(timespec="seconds"),
        "who": audit_log.who(entry),
        "person": str(entry.actor_person_id) if entry.actor_person_id else None,
        "what": audit_log.describe(entry, titles),
        "action": entry.action,
        "changes": audit_log.changes(entry, SHOWN_VALUE),
    }


def _link(values: Mapping[str, str], **extra: str) -> str:
    query = {name: value for name, value in {**values, **extra}.items() if value}
    return f"{BASE}?{urlencode(query)}" if query else BASE


@get(BASE, name="admin_audit", guards=GUARDS)
async def audit_page(request: SiteRequest) -> Response[bytes]:
    language = request.scope["state"]["language"]
    titles = module_titles(language)
    known = audit_log.kinds(titles)
    before_text = (request.query_params.get("before") or "").strip()
    entries: list[AuditEntry] = []
    following: UUID | None = None
    async with _database(request).session() as session:
        query, errors = await read_query(session, request.query_params, known)
        people = await _people(session)
        if not errors:
            try:
                before = UUID(before_text) if before_text else None
            except ValueError:
                before = None
                errors["before"] = gettext(
                    "This page of the log does not exist; start again from the newest."
                )
            if not errors:
                try:
                    entries, following = await audit_log.entries_page(
                        session, query.chosen, known, before=before
                    )
                except Invalid as error:
                    errors[error.field] = error.reason
    if query.chosen.person is not None and str(query.chosen.person) not in dict(people):
        people.append((str(query.chosen.person), query.person_label or ""))
    return page(
        request,
        "perron/admin/audit.html",
        status_code=400 if errors else 200,
        entries=[_row(entry, titles, language) for entry in entries],
        kinds=[(key, gettext(kind.label)) for key, kind in known.items()],
        people=people,
        platform=PLATFORM,
        values=query.values,
        errors=errors,
        filtered=any(query.values.values()),
        older=_link(query.values, before=str(following)) if following else None,
        newest=_link(query.values) if before_text else None,
        download=_link(query.values).replace(BASE, f"{BASE}.csv", 1),
        person_link=lambda person: _link({**query.values, "person": person}),
    )


def _cell(value: str) -> str:
    """A spreadsheet must never take a cell for a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerow([_cell(cell) for cell in cells])
    return buffer.getvalue()


@get(f"{BASE}.csv", name="admin_audit_csv", guards=GUARDS, opt=READ_ONLY)
async def audit_csv(request: SiteRequest) -> Response[bytes] | Stream:
    """The entries the filters keep, as a spreadsheet (semicolons, as Excel expects in
    Belgium; UTF-8 with a byte-order mark so that accents survive)."""
    site = _site(request)
    language = request.scope["state"]["language"]
    titles = module_titles(language)
    known = audit_log.kinds(titles)
    async with _database(request).session() as session:
        query, errors = await read_query(session, request.query_params, known)
    if errors:
        return Response(
            ("\n".join(errors.values()) + "\n").encode(),
            status_code=400,
            media_type="text/plain; charset=utf-8",
            headers={"cache-control": "no-store"},
        )
    async with _database(request).transaction() as session:
        audit.record(
            session,
            tenant_id=site.id,
            action="audit.export",
            object_type="audit_log",
            changes={"filters": {name: value for name, value in query.values.items() if value}},
        )
    database = _database(request)

    async def lines() -> AsyncIterator[bytes]:
        yield "\ufeff".encode()
        yield _csv_line(
            [
                gettext("When (Brussels time)"),
                gettext("Who"),
                gettext("Person's reference"),
                gettext("What"),
                gettext("Action code"),
                gettext("Concerning"),
                gettext("Changes"),
                gettext("Request reference"),
            ]
        ).encode()
        async for batch in audit_log.every_entry(database, site.id, query.chosen, known):
            yield "".join(
                _csv_line(
                    [
                        entry.occurred_at.astimezone(TIME_ZONE).strftime("%Y-%m-%d %H:%M:%S"),
                        audit_log.who(entry),
                        str(entry.actor_person_id or ""),
                        audit_log.describe(entry, titles),
                        entry.action,
                        entry.object_id or "",
                        audit_log.changes_text(entry),
                        entry.request_id or "",
                    ]
                )
                for entry in batch
            ).encode()

    today = dt.datetime.now(TIME_ZONE).date().isoformat()
    return Stream(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="audit-{site.slug}-{today}.csv"',
            "cache-control": "no-store",
        },
    )


ROUTES = [audit_page, audit_csv]
