"""Onboarding many communes at once from a CSV file.

The file has a header line naming its columns (in English, French or Dutch): the commune's
name, its NIS code, its domain, its languages (``fr`` or ``fr nl``; the first is the site's
default) and its first administrator's e-mail (optionally their name). Comma, semicolon (what
spreadsheets write in Belgium) and tab separators are recognised, and UTF-8 or Windows-1252.

Every line is checked on its own, with the same rules as the wizard, against the database and
against the lines above it: the good lines are onboarded (each its own provisioning job), the
bad ones are reported with their line number and what is wrong. One bad line never stops the
others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.console import onboarding as flow
from perron.console.models import BulkOnboarding, Onboarding, OnboardingStatus
from perron.errors import Invalid, PerronError
from perron.i18n import gettext
from perron.jobs import enqueue
from perron.tenancy.models import DEFAULT_PALETTE, LANGUAGES, FontChoice, Intercommunale

MAX_BYTES = 1024 * 1024
MAX_LINES = 1000

COLUMNS = {
    "name": ("name", "nom", "naam", "commune", "gemeente"),
    "nis": ("nis", "nis_code", "code_nis", "niscode", "nis-code", "code ins", "ins"),
    "domain": ("domain", "domaine", "domein", "address", "adresse"),
    "languages": ("languages", "language", "langues", "langue", "talen", "taal"),
    "admin_email": ("admin_email", "email", "e-mail", "admin", "courriel", "admin e-mail"),
    "admin_name": ("admin_name", "nom_admin", "admin naam", "administrateur"),
}
REQUIRED = ("name", "nis", "domain", "languages", "admin_email")


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    values: dict[str, str]


def _text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise Invalid("file", gettext("The file is larger than 1 MB: split it into several files."))
    if b"\x00" in data:
        raise Invalid("file", gettext("This is not a CSV text file (save the sheet as CSV and try again)."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _column_of(header: str) -> str | None:
    wanted = " ".join(header.strip().lower().replace("_", " ").split())
    for column, names in COLUMNS.items():
        if wanted in {name.replace("_", " ") for name in names}:
            return column
    return None


def read_lines(data: bytes) -> list[Line]:
    """The file's data lines with their line numbers; refuses a file that cannot be read as
    a whole (not text, no header, a required column missing, too many lines)."""
    text = _text(data)
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise Invalid("file", gettext("The file is empty."))
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader)
    columns = [_column_of(name) for name in header]
    missing = [column for column in REQUIRED if column not in columns]
    if missing:
        raise Invalid(
            "file",
            gettext("The first line must name the columns; missing: %(columns)s.")
            % {"columns": ", ".join(missing)},
        )
    lines: list[Line] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(lines) >= MAX_LINES:
            raise Invalid("file", gettext("At most %(count)d communes per file.") % {"count": MAX_LINES})
        values = {
            column: cell.strip() for column, cell in zip(columns, row, strict=False) if column is not None
        }
        if len(row) > len(header):
            values["_extra"] = "yes"
        lines.append(Line(reader.line_num, values))
    if not lines:
        raise Invalid("file", gettext("The file names its columns but has no commune under them."))
    return lines


def _languages(raw: str) -> list[str]:
    codes = [
        part for part in raw.lower().replace(",", " ").replace("|", " ").replace("/", " ").split() if part
    ]
    if not codes:
        raise Invalid("languages", gettext("Give the site's languages, such as fr or fr nl."))
    return codes


def _admin_name(email: str) -> str:
    """A name to address the administrator by until they log in (their login then gives
    their real name): ``marie.dubois@ciney.be`` → ``Marie Dubois``."""
    local = email.partition("@")[0]
    words = [word for word in local.replace("_", ".").replace("-", ".").split(".") if word]
    return " ".join(word.capitalize() for word in words) or email


def spec_of(line: Line, intercommunale: str | None, modules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A line as the wizard would have described it (or Invalid naming the column)."""
    values = line.values
    if values.get("_extra"):
        raise Invalid("line", gettext("This line has more cells than the header has columns."))
    name = values.get("name", "")
    if not name:
        raise Invalid("name", gettext("The commune's name is empty."))
    languages = [code for code in _languages(values.get("languages", "")) if code]
    unknown = [code for code in languages if code not in LANGUAGES]
    if unknown:
        raise Invalid(
            "languages",
            gettext("%(code)s is not a language Perron offers (fr, nl, de, en).") % {"code": unknown[0]},
        )
    form = {f"language.{code}": "on" for code in languages} | {f"name.{code}": name for code in languages}
    form |= {"default_language": languages[0], "nis_code": values.get("nis", "")}
    spec: dict[str, Any] = {"intercommunale": intercommunale}
    spec |= flow.check_commune_step(form)
    spec |= flow.check_addresses_step({"primary_domain": values.get("domain", "")})
    email = values.get("admin_email", "")
    if not email:
        raise Invalid("admin1.email", gettext("The administrator's e-mail address is empty."))
    spec |= flow.check_admins_step(
        {
            "admin1.email": email,
            "admin1.name": values.get("admin_name") or _admin_name(email),
            "admin1.language": spec["languages"][0],
        },
        spec["languages"],
    )
    spec["branding"] = {"palette": dict(DEFAULT_PALETTE), "font": FontChoice.SYSTEM.value, "tagline": {}}
    spec["modules"] = dict(modules)
    spec["demo"] = False
    return spec


def _describe(error: PerronError) -> str:
    column = getattr(error, "field", None) or ""
    reason = getattr(error, "reason", None) or error.message
    labels = {
        "name": gettext("name"),
        "nis_code": gettext("NIS code"),
        "slug": gettext("name"),
        "primary_domain": gettext("domain"),
        "languages": gettext("languages"),
        "admin1.email": gettext("administrator's e-mail"),
        "admin1.name": gettext("administrator's name"),
    }
    label = next((text for key, text in labels.items() if column.startswith(key)), "")
    return f"{label}: {reason}" if label else str(reason)


def _iter_specs(
    lines: list[Line], intercommunale: str | None, modules: dict[str, dict[str, Any]]
) -> Iterator[tuple[Line, dict[str, Any] | None, str | None]]:
    for line in lines:
        try:
            yield line, spec_of(line, intercommunale, modules), None
        except PerronError as error:
            yield line, None, _describe(error)


async def import_file(
    session: AsyncSession,
    *,
    body: Intercommunale | None,
    data: bytes,
    filename: str,
    created_by: str,
    console_host: str,
) -> BulkOnboarding:
    """Check every line, onboard the good ones (one provisioning job each, queued with this
    transaction), and keep the per-line report."""
    lines = read_lines(data)
    bulk = BulkOnboarding(
        intercommunale_id=body.id if body else None,
        filename=(filename or "communes.csv")[:200],
        created_by=created_by,
    )
    session.add(bulk)
    await session.flush()
    modules = await flow.default_modules(session, bulk.intercommunale_id)
    report: list[dict[str, Any]] = []
    for line, spec, problem in _iter_specs(lines, body.slug if body else None, modules):
        entry: dict[str, Any] = {
            "line": line.number,
            "name": line.values.get("name", ""),
            "nis": line.values.get("nis", ""),
            "domain": line.values.get("domain", ""),
        }
        if spec is not None:
            try:
                await flow.check_free(session, spec, console_host=console_host)
            except PerronError as error:
                problem = _describe(error)
        if spec is None or problem is not None:
            entry["error"] = problem
            report.append(entry)
            continue
        onboarding = Onboarding(
            intercommunale_id=bulk.intercommunale_id,
            status=OnboardingStatus.QUEUED,
            step=len(flow.STEPS),
            spec=spec,
            bulk_id=bulk.id,
            bulk_line=line.number,
            created_by=created_by,
        )
        session.add(onboarding)
        await session.flush()
        queued = enqueue(session, flow.PROVISION_JOB, tenant_id=None, onboarding_id=str(onboarding.id))
        onboarding.job_id = queued.id
        entry["onboarding_id"] = str(onboarding.id)
        report.append(entry)
        await session.flush()
    bulk.lines = report
    bulk.accepted = sum(1 for entry in report if "onboarding_id" in entry)
    bulk.refused = len(report) - bulk.accepted
    audit.record_platform(
        session,
        action="onboarding.csv",
        object_type="bulk_onboarding",
        object_id=str(bulk.id),
        intercommunale_id=bulk.intercommunale_id,
        changes={"file": bulk.filename, "accepted": bulk.accepted, "refused": bulk.refused},
    )
    return bulk


def _cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (names come from the uploaded file)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(bulk: BulkOnboarding, outcomes: dict[str, str]) -> str:
    """The per-line report as CSV (semicolons, for spreadsheets set up for Belgium)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(
        [gettext("line"), gettext("name"), gettext("NIS code"), gettext("domain"), gettext("outcome")]
    )
    for entry in bulk.lines:
        outcome = entry.get("error") or outcomes.get(entry.get("onboarding_id", ""), gettext("accepted"))
        writer.writerow(
            [_cell(cell) for cell in (entry["line"], entry["name"], entry["nis"], entry["domain"], outcome)]
        )
    return out.getvalue()
