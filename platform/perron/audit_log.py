"""Reading a commune's audit log: filters, pages newest first, and words for each entry.

The log only grows (every login, every change), so it is read by keyset: a page ends with
an entry, and the next page starts strictly before it in (``occurred_at``, ``id``) order,
which the ``(tenant_id, occurred_at)``, ``(tenant_id, action, occurred_at)`` and
``(tenant_id, actor_person_id, occurred_at)`` indexes serve whatever the page number. Every
query runs in the commune's scope: the ORM adds the commune to it (and PostgreSQL's
row-level security checks it again), so another commune's entries are never read.

Each action has a sentence a commune's admin understands ("Changed the branding"); an
action of a module falls back to the module's title and a verb; anything else shows its code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import ActorKind, AuditEntry
from perron.db.engine import Database
from perron.db.scope import tenant_scope
from perron.errors import Invalid
from perron.i18n import format_list, gettext, language_name, lazy
from perron.tenancy.hosts import display_host
from perron.tenancy.models import LANGUAGES

PAGE_SIZE = 50
EXPORT_BATCH = 500


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of action the viewer filters on: actions starting with one of ``prefixes``
    (``"branding."``) or named in ``actions``."""

    label: str
    prefixes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


KINDS: Mapping[str, Kind] = {
    "branding": Kind(lazy("Branding"), ("branding.",)),
    "domains": Kind(lazy("Web addresses"), ("domain.",)),
    "legal": Kind(lazy("Privacy notice and accessibility statement"), ("legal.",)),
    "modules": Kind(lazy("Modules and settings"), ("module.", "settings.")),
    "staff": Kind(lazy("Staff and roles"), ("staff.",), ("account.roles",)),
    "residents": Kind(
        lazy("Residents and accounts"),
        ("residency.",),
        ("account.create", "account.address", "account.residency_verified", "account.delete"),
    ),
    "logins": Kind(lazy("Logins"), (), ("account.login", "account.linked")),
    "territory": Kind(lazy("Territory"), ("territory.",)),
    "messages": Kind(lazy("Messages and e-mail choices"), ("notification.",)),
    "commune": Kind(lazy("The site itself (opening, suspension, details)"), ("commune.",)),
    "audit": Kind(lazy("Downloads of this log"), ("audit.",)),
}
"""The platform's kinds of action; each installed module adds ``module:<name>``."""

DESCRIPTIONS: Mapping[str, str] = {
    "branding.update": lazy("Changed the branding"),
    "branding.logo_set": lazy("Uploaded a new logo"),
    "branding.logo_remove": lazy("Removed the logo"),
    "domain.add": lazy("Added the address %(object)s"),
    "domain.make_primary": lazy("Made %(object)s the main address"),
    "domain.remove": lazy("Removed the address %(object)s"),
    "legal.update": lazy("Changed the privacy notice or the accessibility statement"),
    "module.enable": lazy("Switched on the module %(object)s"),
    "module.disable": lazy("Switched off the module %(object)s"),
    "settings.update": lazy("Changed the settings of %(object)s"),
    "staff.invite": lazy("Invited a staff member"),
    "staff.remove": lazy("Removed a staff member"),
    "staff.login_created": lazy("A staff member's login was created"),
    "account.roles": lazy("Changed someone's roles"),
    "account.create": lazy("An account was created"),
    "account.address": lazy("An address was changed"),
    "account.residency_verified": lazy("A residency was verified"),
    "account.delete": lazy("An account was deleted"),
    "account.login": lazy("Logged in"),
    "account.linked": lazy("A login was linked to an existing account"),
    "residency.code_issued": lazy("Issued a residency code to send by post"),
    "residency.code_used": lazy("A residency code was typed in"),
    "residency.code_locked": lazy("A residency code was locked after too many wrong tries"),
    "residency.town_hall": lazy("Verified a residency at the town hall"),
    "residency.registered_in_person": lazy("Registered a person at the town hall"),
    "notification.send": lazy("Sent a message"),
    "notification.preferences": lazy("Changed their e-mail choices"),
    "commune.create": lazy("The site was created"),
    "commune.update": lazy("The commune's name, languages or details were changed"),
    "commune.activate": lazy("The site was opened"),
    "commune.suspend": lazy("The site was suspended"),
    "commune.archive": lazy("The site was closed for good"),
    "commune.provision": lazy("The site was set up"),
    "territory.street.create": lazy("Added a street"),
    "territory.street.update": lazy("Changed a street"),
    "territory.street.delete": lazy("Deleted a street"),
    "territory.streets.import": lazy("Imported streets from a file"),
    "territory.neighbourhood.create": lazy("Created a neighbourhood"),
    "territory.neighbourhood.update": lazy("Changed a neighbourhood"),
    "territory.neighbourhood.delete": lazy("Deleted a neighbourhood"),
    "territory.neighbourhood.split": lazy("Split a neighbourhood"),
    "territory.neighbourhood.merge": lazy("Merged neighbourhoods"),
    "territory.zone.create": lazy("Created a zone"),
    "territory.zone.update": lazy("Changed a zone"),
    "territory.zone.delete": lazy("Deleted a zone"),
    "audit.export": lazy("Downloaded the audit log"),
}

MODULE_VERBS: Mapping[str, str] = {
    "create": lazy("added"),
    "add": lazy("added"),
    "update": lazy("changed"),
    "edit": lazy("changed"),
    "delete": lazy("deleted"),
    "remove": lazy("removed"),
    "publish": lazy("published"),
    "withdraw": lazy("withdrawn"),
    "send": lazy("sent"),
    "import": lazy("imported"),
    "approve": lazy("approved"),
    "reject": lazy("refused"),
    "cancel": lazy("cancelled"),
}
"""How a module's own action reads when the platform has no sentence for it:
``news.publish`` becomes "News: published"."""

FIELD_LABELS: Mapping[str, str] = {
    "primary_color": lazy("Main colour"),
    "primary_text_color": lazy("Text on the main colour"),
    "accent_color": lazy("Links and buttons"),
    "background_color": lazy("Page background"),
    "text_color": lazy("Body text"),
    "font": lazy("Font"),
    "tagline": lazy("Tagline"),
    "intro": lazy("Home-page introduction"),
    "home_sections": lazy("Home-page sections"),
    "logo": lazy("Logo"),
    "logo_size": lazy("Logo size"),
    "uploaded_file": lazy("Uploaded file"),
    "host": lazy("Address"),
    "is_primary": lazy("Main address"),
    "primary": lazy("Main address"),
    "enabled": lazy("Switched on"),
    "roles": lazy("Roles"),
    "disabled": lazy("Closed"),
    "status": lazy("Status"),
    "status_notice": lazy("Notice shown while suspended"),
    "names": lazy("Name"),
    "languages": lazy("Languages"),
    "domains": lazy("Addresses"),
    "email": lazy("E-mail"),
    "display_name": lazy("Name"),
    "title": lazy("Title"),
    "version": lazy("Version"),
    "privacy_purposes": lazy("Other purposes"),
    "privacy_recipients": lazy("Who receives the data"),
    "privacy_retention": lazy("How long data is kept"),
    "privacy_extra": lazy("More about privacy"),
    "accessibility_limitations": lazy("Content known not to be accessible"),
    "accessibility_feedback": lazy("How to report a problem"),
    "accessibility_reviewed_on": lazy("Last review of the accessibility statement"),
    "contact_email": lazy("Contact e-mail"),
    "contact_phone": lazy("Phone"),
    "postal_address": lazy("Postal address"),
    "website": lazy("Website"),
    "opening_hours": lazy("Opening hours"),
    "dpo_email": lazy("Data protection officer's e-mail"),
    "dpo_name": lazy("Data protection officer"),
    "nis_code": lazy("NIS code"),
    "intercommunale": lazy("Intercommunale"),
    "intercommunale_id": lazy("Intercommunale"),
    "kind": lazy("Kind"),
    "resident": lazy("Resident"),
    "address": lazy("Address"),
    "street": lazy("Street"),
    "house_number": lazy("Number"),
    "postcode": lazy("Postcode"),
    "birth_year": lazy("Year of birth"),
    "language": lazy("Language"),
    "assurance": lazy("Level of login"),
    "how": lazy("How"),
    "expires_at": lazy("Valid until"),
    "announce": lazy("Announced to residents"),
    "neighbourhoods": lazy("Neighbourhoods"),
    "audience": lazy("Sent to"),
    "module": lazy("Module"),
    "filters": lazy("Filters"),
    "again": lazy("Invited again"),
}

CORE_SETTINGS = lazy("Changed the commune's contact details")


# --- Filters and pages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What the viewer shows: one kind of action, one person (or only the platform's own
    changes), between two moments (``since`` included, ``until`` excluded, UTC)."""

    kind: str | None = None
    person: UUID | None = None
    platform_only: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def kinds(module_titles: Mapping[str, str]) -> dict[str, Kind]:
    """The platform's kinds and one per installed module (``module:<name>``)."""
    found = dict(KINDS)
    for name, title in sorted(module_titles.items(), key=lambda item: item[1].casefold()):
        found[f"module:{name}"] = Kind(title, (f"{name}.",))
    return found


def _prefix(prefix: str) -> ColumnElement[bool]:
    """Actions starting with ``prefix``, as a range an index serves on every database
    (LIKE would not use one on PostgreSQL without a special operator class)."""
    following = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(AuditEntry.action >= prefix, AuditEntry.action < following)


def _conditions(chosen: AuditFilter, known: Mapping[str, Kind]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if chosen.kind:
        kind = known.get(chosen.kind)
        if kind is None:
            raise Invalid("kind", gettext("Choose a kind of change from the list."))
        options = [_prefix(prefix) for prefix in kind.prefixes]
        if kind.actions:
            options.append(AuditEntry.action.in_(kind.actions))
        conditions.append(or_(*options))
    if chosen.platform_only:
        conditions.append(AuditEntry.actor_person_id.is_(None))
    elif chosen.person is not None:
        conditions.append(AuditEntry.actor_person_id == chosen.person)
    if chosen.since is not None:
        conditions.append(AuditEntry.occurred_at >= chosen.since)
    if chosen.until is not None:
        conditions.append(AuditEntry.occurred_at < chosen.until)
    return conditions


async def _position(session: AsyncSession, entry_id: UUID) -> tuple[dt.datetime, UUID]:
    occurred = await session.scalar(select(AuditEntry.occurred_at).where(AuditEntry.id == entry_id))
    if occurred is None:  # a forged id, or another commune's: the same answer
        raise Invalid("before", gettext("This page of the log does not exist; start again from the newest."))
    return occurred, entry_id


def _before(position: tuple[dt.datetime, UUID]) -> ColumnElement[bool]:
    occurred, entry_id = position
    return or_(
        AuditEntry.occurred_at < occurred,
        and_(AuditEntry.occurred_at == occurred, AuditEntry.id < entry_id),
    )


async def entries_page(
    session: AsyncSession,
    chosen: AuditFilter,
    known: Mapping[str, Kind],
    *,
    before: UUID | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[AuditEntry], UUID | None]:
    """One page of the commune in scope's entries, newest first, and the cursor of the next
    page (the last entry's id) when there is one."""
    conditions = _conditions(chosen, known)
    if before is not None:
        conditions.append(_before(await _position(session, before)))
    rows = list(
        await session.scalars(
            select(AuditEntry)
            .where(*conditions)
            .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
            .limit(limit + 1)
        )
    )
    following = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], following


async def every_entry(
    database: Database,
    tenant_id: UUID,
    chosen: AuditFilter,
    known: Mapping[str, Kind],
    *,
    batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[AuditEntry]]:
    """All of a commune's entries the filter keeps, newest first, in batches each read in a
    short session of its own (a download of a long log never holds one transaction open)."""
    conditions = _conditions(chosen, known)
    position: tuple[dt.datetime, UUID] | None = None
    while True:
        with tenant_scope(tenant_id):
            async with database.session() as session:
                query = select(AuditEntry).where(*conditions)
                if position is not None:
                    query = query.where(_before(position))
                rows = list(
                    await session.scalars(
                        query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(batch)
                    )
                )
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        position = (rows[-1].occurred_at, rows[-1].id)


# --- Words -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One changed field, as a person reads it: ``before`` → ``after``, or a single ``value``
    for entries that record what was done rather than what changed."""

    label: str
    before: str | None
    after: str | None
    value: str | None = None

    @property
    def heading(self) -> str:
        """The label as it introduces its value (French puts a space before the colon)."""
        return labelled(self.label)


def labelled(label: str, value: str | None = None) -> str:
    """``Label:`` or ``Label: value``, punctuated the way the current language does."""
    if value is None:
        return gettext("%(label)s:") % {"label": label}
    return gettext("%(label)s: %(value)s") % {"label": label, "value": value}


def who(entry: AuditEntry) -> str:
    """Who acted: the person's name (as it was then), or the platform."""
    if entry.actor_kind == ActorKind.PERSON.value:
        if entry.platform_scope:
            return gettext("%(name)s, for the platform") % {"name": entry.actor_label}
        return entry.actor_label
    if entry.actor_kind == ActorKind.CLI.value:
        # The operator's account and server names are the platform's business.
        return gettext("The platform's operators (command line)")
    if entry.actor_kind == ActorKind.ANONYMOUS.value:
        return gettext("A visitor who was not logged in")
    return gettext("The platform (automatic)")


def _object_words(entry: AuditEntry, module_titles: Mapping[str, str]) -> str:
    value = entry.object_id or ""
    if entry.action.startswith("domain."):
        return display_host(value)
    if entry.action.startswith("module."):
        return module_titles.get(value, value)
    if entry.action == "settings.update" and value.startswith("module:"):
        return module_titles.get(value.removeprefix("module:"), value.removeprefix("module:"))
    return value


def describe(entry: AuditEntry, module_titles: Mapping[str, str]) -> str:
    """What was done, in a sentence of the current language."""
    if entry.action == "settings.update" and entry.object_id == "core":
        return gettext(CORE_SETTINGS)
    sentence = DESCRIPTIONS.get(entry.action)
    if sentence is not None:
        return gettext(sentence) % {"object": _object_words(entry, module_titles)}
    module, _, verb = entry.action.partition(".")
    if module in module_titles and verb:
        what = gettext(MODULE_VERBS[verb]) if verb in MODULE_VERBS else verb.replace("_", " ")
        return gettext("%(module)s: %(what)s") % {"module": module_titles[module], "what": what}
    return entry.action


def field_label(name: str) -> str:
    label = FIELD_LABELS.get(name)
    return gettext(label) if label is not None else name.replace("_", " ")


def show_value(value: Any, limit: int | None = None) -> str:
    """A stored value in words: yes/no, lists joined, texts per language named."""
    if value is None or value == "" or value == [] or value == {}:
        text = gettext("nothing")
    elif isinstance(value, bool):
        text = gettext("yes") if value else gettext("no")
    elif isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            name = language_name(key) if key in LANGUAGES else str(key)
            parts.append(labelled(name, show_value(item)))
        text = "; ".join(parts)
    elif isinstance(value, list | tuple):
        text = format_list([show_value(item) for item in value])
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        return text[: limit - 1].rstrip() + "…"
    return text


def changes(entry: AuditEntry, limit: int | None = None) -> list[Change]:
    """The entry's changes, field by field (``{field: [before, after]}`` by convention;
    anything else is shown as a single value)."""
    shown: list[Change] = []
    for name, value in (entry.changes or {}).items():
        label = field_label(name)
        if isinstance(value, list) and len(value) == 2:
            shown.append(Change(label, show_value(value[0], limit), show_value(value[1], limit)))
        else:
            shown.append(Change(label, None, None, show_value(value, limit)))
    return shown


def changes_text(entry: AuditEntry) -> str:
    """The changes on one line, for the CSV download."""
    return "; ".join(
        labelled(
            change.label, change.value if change.value is not None else f"{change.before} → {change.after}"
        )
        for change in changes(entry)
    )
