"""What a commune adds to its privacy notice and accessibility statement.

The platform writes both pages from what it knows (:mod:`perron.web.legal`): what the platform
keeps, the cookies, the rights, the authorities. Only the commune knows the rest: what else it
does with personal data, who receives it, how long it keeps it, what on its site is known not
to be accessible, how to ask for an accessible alternative, and when it last reviewed the
statement. It writes these here, per language.

The texts are plain text, never HTML: pages escape them and only turn blank lines into
paragraphs. Each is checked (known language, no control characters, at most
:data:`MAX_LEGAL_TEXT` characters) before anything is stored, and every change is audited and
refreshes the commune's public pages at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from perron import audit
from perron.cache import invalidate
from perron.db.base import Base, TenantOwned, utcnow
from perron.db.repository import ensure_tenant
from perron.errors import Invalid
from perron.i18n import TIME_ZONE, TextRules, gettext, pick, pick_language
from perron.sentinels import NOT_GIVEN, NotGiven

MAX_LEGAL_TEXT = 4000
"""Characters per text and language: room for several paragraphs, not for a whole policy."""

PRIVACY_FIELDS = ("privacy_purposes", "privacy_recipients", "privacy_retention", "privacy_extra")
ACCESSIBILITY_FIELDS = ("accessibility_limitations", "accessibility_feedback")
TEXT_FIELDS = PRIVACY_FIELDS + ACCESSIBILITY_FIELDS
"""Every text a commune may add, each a text per language."""

EARLIEST_REVIEW = dt.date(2018, 9, 23)
"""The Web Accessibility Directive's statements start here (Belgian public bodies' first
statements date from its transposition): an earlier review date is a typing mistake."""

_RULES = TextRules(max_length=MAX_LEGAL_TEXT)


class LegalTexts(TenantOwned, Base):
    """A commune's own parts of its privacy notice and accessibility statement."""

    __tablename__ = "legal_texts"

    privacy_purposes: Mapped[dict[str, str]] = mapped_column(
        default=dict, comment="what else the commune does with personal data, per language"
    )
    privacy_recipients: Mapped[dict[str, str]] = mapped_column(
        default=dict, comment="who receives personal data, per language"
    )
    privacy_retention: Mapped[dict[str, str]] = mapped_column(
        default=dict, comment="how long the commune keeps data, per language"
    )
    privacy_extra: Mapped[dict[str, str]] = mapped_column(
        default=dict, comment="anything else for the privacy notice, per language"
    )
    accessibility_limitations: Mapped[dict[str, str]] = mapped_column(
        default=dict, comment="content known not to be accessible, per language"
    )
    accessibility_feedback: Mapped[dict[str, str]] = mapped_column(
        default=dict, comment="how to report a problem or ask for an accessible version, per language"
    )
    accessibility_reviewed_on: Mapped[dt.date | None] = mapped_column(
        comment="when the commune last reviewed its accessibility statement"
    )
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@dataclass(frozen=True, slots=True)
class CommuneLegalTexts:
    """What the commune wrote, as the pages and the admin form read it."""

    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    reviewed_on: dt.date | None = None

    def text(self, name: str, language: str, fallbacks: tuple[str, ...] = ()) -> str:
        """The text in ``language``, else in the commune's languages in order ("" when none)."""
        return pick(self.texts.get(name) or {}, language, fallbacks)

    def language_of(self, name: str, language: str, fallbacks: tuple[str, ...] = ()) -> str | None:
        """The language of the text :meth:`text` gives (for a ``lang`` attribute)."""
        return pick_language(self.texts.get(name) or {}, language, fallbacks)


async def legal_texts(session: AsyncSession, commune_id: UUID) -> CommuneLegalTexts:
    """The commune's texts (none written yet: empty)."""
    ensure_tenant(commune_id)
    row = await session.scalar(select(LegalTexts).where(LegalTexts.tenant_id == commune_id))
    if row is None:
        return CommuneLegalTexts()
    return CommuneLegalTexts(
        {name: dict(getattr(row, name) or {}) for name in TEXT_FIELDS}, row.accessibility_reviewed_on
    )


def check_texts(texts: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """Every text checked and trimmed; empty ones dropped. :class:`Invalid` names the first
    wrong one as ``<field>.<language>``."""
    unknown = sorted(set(texts) - set(TEXT_FIELDS))
    if unknown:
        raise Invalid(unknown[0], gettext("There is no such text."))
    checked: dict[str, dict[str, str]] = {}
    for name in TEXT_FIELDS:
        value = texts.get(name) or {}
        if isinstance(value, Mapping) and not any(
            isinstance(text, str) and text.strip() for text in value.values()
        ):
            checked[name] = {}  # nothing written: allowed here (TranslatedText wants one)
            continue
        checked[name] = dict(_RULES.check(value, name))
    return checked


def check_review_date(value: dt.date | None, today: dt.date) -> dt.date | None:
    """A review date cannot be in the future, nor before accessibility statements existed."""
    if value is None:
        return None
    if value > today:
        raise Invalid(
            "accessibility_reviewed_on",
            gettext("The review date is in the future; give the date the statement was last reviewed."),
        )
    if value < EARLIEST_REVIEW:
        raise Invalid(
            "accessibility_reviewed_on",
            gettext("The review date is before 2018, when accessibility statements began; check the year."),
        )
    return value


async def update_legal_texts(
    session: AsyncSession,
    commune_id: UUID,
    *,
    texts: Mapping[str, object] | None = None,
    reviewed_on: dt.date | NotGiven | None = NOT_GIVEN,
    today: dt.date | None = None,
) -> bool:
    """Change the commune's texts (all of them at once: a text left out is removed) and its
    review date; returns whether anything changed. Refused input raises before any change."""
    ensure_tenant(commune_id)
    row = await session.scalar(select(LegalTexts).where(LegalTexts.tenant_id == commune_id))
    before: dict[str, Any] = {
        **{name: dict(getattr(row, name) or {}) if row else {} for name in TEXT_FIELDS},
        "accessibility_reviewed_on": row.accessibility_reviewed_on if row else None,
    }
    after = dict(before)
    if texts is not None:
        after.update(check_texts(texts))
    if not isinstance(reviewed_on, NotGiven):
        after["accessibility_reviewed_on"] = check_review_date(
            reviewed_on, today or dt.datetime.now(TIME_ZONE).date()
        )
    changes = audit.diff(
        {**before, "accessibility_reviewed_on": _iso(before["accessibility_reviewed_on"])},
        {**after, "accessibility_reviewed_on": _iso(after["accessibility_reviewed_on"])},
    )
    if not changes:
        return False
    if row is None:
        row = LegalTexts(tenant_id=commune_id)
        session.add(row)
    for name in TEXT_FIELDS:
        setattr(row, name, after[name])
    row.accessibility_reviewed_on = after["accessibility_reviewed_on"]
    audit.record(
        session,
        tenant_id=commune_id,
        action="legal.update",
        object_type="legal_texts",
        object_id=None,
        changes=changes,
    )
    invalidate(session, commune_id)  # /privacy and /accessibility are served from the page cache
    return True


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
