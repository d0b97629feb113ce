"""The commune's own parts of its privacy notice and accessibility statement (``/admin/legal``,
administrators).

The platform writes both pages from what it knows; here the commune adds, in each of its
languages, what only it knows (see :mod:`perron.tenancy.legal`), and who its data protection
officer is (the ``core`` settings ``dpo_name`` and ``dpo_email``, which its intercommunale
may set for all its communes). Plain text only: the pages escape it and make paragraphs of
it. Saving is audited and the public pages show the change at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, get, post

from perron.db.engine import Database
from perron.errors import Invalid
from perron.i18n import gettext, language_name, lazy
from perron.identity import roles
from perron.tenancy import actions
from perron.tenancy.legal import (
    ACCESSIBILITY_FIELDS,
    MAX_LEGAL_TEXT,
    PRIVACY_FIELDS,
    TEXT_FIELDS,
    legal_texts,
    update_legal_texts,
)
from perron.tenancy.settings import read_layers
from perron.tenancy.site import TenantSite
from perron.web.admin_pages import form_text, notice, page, parse_day, see_other
from perron.web.auth import staff_guard

SiteRequest = Request[Any, Any, Any]

BASE = "/admin/legal"
GUARDS = [staff_guard(roles.ADMIN)]
DPO_FIELDS = ("dpo_name", "dpo_email")

TEXTS: Mapping[str, tuple[str, str]] = {
    "privacy_purposes": (
        lazy("What else the commune does with personal data on this site"),
        lazy(
            "Purposes the general notice does not cover, with their legal basis, such as “Registrations "
            "for the school holiday camps, to organise them (a task in the public interest).”"
        ),
    ),
    "privacy_recipients": (
        lazy("Who receives the data"),
        lazy("Services or bodies the commune passes data to, such as the CPAS or the police zone, and why."),
    ),
    "privacy_retention": (
        lazy("How long the commune keeps data"),
        lazy(
            "Periods the commune applies beyond those listed, such as “Registrations: one "
            "year after the camp.”"
        ),
    ),
    "privacy_extra": (
        lazy("More about privacy"),
        lazy("Anything else the commune must tell people about their data on this site."),
    ),
    "accessibility_limitations": (
        lazy("Content the commune knows is not accessible"),
        lazy(
            "Pages, documents or videos that are not accessible yet, why, and when they will be, such as "
            "“The minutes of the council before 2024 are scanned PDF files; ask for a text version.”"
        ),
    ),
    "accessibility_feedback": (
        lazy("How to report a problem or ask for an accessible version"),
        lazy(
            "Who to contact and how quickly the commune answers, such as “Call the reception at "
            "081 00 00 00; we answer within five working days.” The commune's contact details are "
            "shown anyway."
        ),
    ),
}

NOTICES = {
    "saved": lazy("The texts are saved: the privacy notice and the accessibility statement show them now."),
    "unchanged": lazy("Nothing was changed."),
}

DPO_PROBLEMS = {
    "dpo_email": lazy("Write an e-mail address such as dpo@commune.be."),
    "dpo_name": lazy("Keep the name to 200 characters at most."),
}


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _database(request: SiteRequest) -> Database:
    database: Database = request.app.state.runtime.database
    return database


async def _legal_page(
    request: SiteRequest,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, str] | None = None,
) -> Response[bytes]:
    site = _site(request)
    async with _database(request).session() as session:
        stored = await legal_texts(session, site.id)
        layers = await read_layers(session, site.id, "core", intercommunale_id=site.intercommunale_id)
    errors = dict(errors or {})
    values: dict[str, str] = dict(submitted or {})
    if submitted is None:
        for name in TEXT_FIELDS:
            for code in site.languages:
                values[f"{name}.{code}"] = (stored.texts.get(name) or {}).get(code, "")
        values["accessibility_reviewed_on"] = stored.reviewed_on.isoformat() if stored.reviewed_on else ""
        for name in DPO_FIELDS:
            values[name] = str(layers.commune.get(name) or "")

    def group(names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "label": gettext(TEXTS[name][0]),
                "help": gettext(TEXTS[name][1]),
                "languages": [(code, language_name(code)) for code in site.languages],
            }
            for name in names
        ]

    inherited = {
        name: layers.intercommunale.get(name) or layers.platform.get(name) or "" for name in DPO_FIELDS
    }
    return page(
        request,
        "perron/admin/legal.html",
        status_code=400 if errors else 200,
        privacy=group(PRIVACY_FIELDS),
        accessibility=group(ACCESSIBILITY_FIELDS),
        values=values,
        errors=errors,
        locked={name for name in DPO_FIELDS if name in layers.locked},
        inherited=inherited,
        effective={name: getattr(site.contact, name) or "" for name in DPO_FIELDS},
        limit=MAX_LEGAL_TEXT,
        notice=notice(request, NOTICES),
    )


@get(BASE, name="admin_legal", guards=GUARDS)
async def legal_page(request: SiteRequest) -> Response[bytes]:
    return await _legal_page(request)


def _texts(
    form: Mapping[str, Any], site: TenantSite, stored: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    texts: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        kept = {code: text for code, text in (stored.get(name) or {}).items() if code not in site.languages}
        typed = {}
        for code in site.languages:
            value = form.get(f"{name}.{code}")
            typed[code] = value if isinstance(value, str) else ""
        texts[name] = {**kept, **typed}
    return texts


@post(BASE, name="admin_legal_save", guards=GUARDS)
async def legal_save(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str) and key != "_csrf_token"}
    errors: dict[str, str] = {}
    reviewed_on: dt.date | None = None
    try:
        reviewed_on = parse_day(form_text(form, "accessibility_reviewed_on"), "accessibility_reviewed_on")
    except Invalid as error:
        errors[error.field] = error.reason
    dpo = {name: form_text(form, name) for name in DPO_FIELDS}
    if errors:
        return await _legal_page(request, errors=errors, submitted=submitted)
    try:
        async with _database(request).transaction() as session:
            stored = await legal_texts(session, site.id)
            changed = await update_legal_texts(
                session, site.id, texts=_texts(form, site, stored.texts), reviewed_on=reviewed_on
            )
            layers = await read_layers(session, site.id, "core", intercommunale_id=site.intercommunale_id)
            own = {key: value for key, value in layers.commune.items() if key not in layers.locked}
            for name, value in dpo.items():
                if name in layers.locked:
                    continue
                if value:
                    own[name] = value
                else:
                    own.pop(name, None)  # inherit the intercommunale's or the platform's value
            try:
                changed = await actions.update_commune_settings(session, site.id, "core", own) or changed
            except Invalid as error:
                field = error.field if error.field in DPO_FIELDS else "dpo_email"
                raise Invalid(field, gettext(DPO_PROBLEMS[field])) from None
    except Invalid as error:
        return await _legal_page(request, errors={error.field: error.reason}, submitted=submitted)
    return see_other(BASE, "saved" if changed else "unchanged")


ROUTES = [legal_page, legal_save]
