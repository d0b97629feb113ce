"""Notifications: a module tells an audience something, through the inbox and e-mail.

* :func:`notify` records the notification and queues its fan-out in the caller's transaction
  (the outbox): a rolled-back change notifies no one.
* The fan-out job expands the :class:`Audience` in batches of :data:`FAN_OUT_BATCH` people
  and gives each person an inbox delivery and, following their preference for the module,
  an e-mail now, a place in their daily summary, or nothing. A delivery is unique per
  notification, person and channel: running the fan-out again adds nothing.
* The summary job (:func:`send_digests_batch`) gathers each person's waiting e-mail
  deliveries into one message.

Preferences, per person and module: the inbox is always on (it is the person's record of what
the commune sent them, and it pushes nothing); e-mail is ``immediate``, ``daily`` or ``off``.
Without a stored choice, announcements (kind ``announcement``, what staff post) are e-mailed
immediately and every other kind goes to the daily summary (:func:`default_frequency`).
People without an e-mail address get the inbox only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from perron import audit
from perron.audit import current_actor
from perron.db.base import utcnow
from perron.db.repository import ensure_owned, ensure_tenant
from perron.db.scope import NoTenantScope, current_scope
from perron.errors import Invalid, NotFound
from perron.i18n import TextRules, format_datetime, gettext, pick, pick_language, using_language
from perron.identity.models import Account, AccountKind
from perron.jobs import enqueue
from perron.logging import get_logger
from perron.mail import EmailStatus, OutgoingEmail, mail_service, on_result, queue_email, site_url
from perron.modules.manifest import NAME as MODULE_NAME
from perron.notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    EmailFrequency,
    Notification,
    Preference,
)
from perron.tenancy.models import ModuleActivation
from perron.tenancy.site import TenantSite, load_site

log = get_logger("perron.notifications")

CORE = "core"
"""The module name of what the commune itself sends (staff announcements)."""
ANNOUNCEMENT = "announcement"

FAN_OUT_JOB = "perron.notifications.fan_out"
DIGEST_JOB = "perron.notifications.send_digests"
FAN_OUT_BATCH = 500
DIGEST_BATCH = 100
DIGEST_MAX_ITEMS = 100
"""Items in one summary; what is left waits for the next one."""
MAX_AUDIENCE_IDS = 1000
INBOX_PAGE = 20

PREFERENCES_PATH = "/account/notifications"
INBOX_PATH = "/inbox"

TITLE_RULES = TextRules(max_length=200)
BODY_RULES = TextRules(max_length=10_000)
KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")
ROLE_MAX = 63
LINK_MAX = 500


# --- Audiences ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who a notification is for. Build one with the class methods:
    ``Audience.person(id)``, ``Audience.commune()`` (every verified resident),
    ``Audience.neighbourhoods(ids)`` and ``Audience.streets(ids)`` (their verified residents,
    from the territory service) or ``Audience.role("news.editor")`` (staff holding the role;
    admins hold every role). Disabled accounts never receive anything."""

    kind: str
    ids: tuple[UUID, ...] = ()
    role_name: str | None = None

    @classmethod
    def person(cls, account_id: UUID) -> Audience:
        return cls("person", (_uuid(account_id),))

    @classmethod
    def commune(cls) -> Audience:
        return cls("commune")

    @classmethod
    def neighbourhoods(cls, ids: Iterable[UUID]) -> Audience:
        return cls("neighbourhoods", _id_list(ids, "neighbourhoods"))

    @classmethod
    def streets(cls, ids: Iterable[UUID]) -> Audience:
        return cls("streets", _id_list(ids, "streets"))

    @classmethod
    def role(cls, role: str) -> Audience:
        name = role.strip() if isinstance(role, str) else ""
        if not name or len(name) > ROLE_MAX:
            raise Invalid("audience", f"name a role of 1 to {ROLE_MAX} characters")
        return cls("role", (), name)

    def describe(self) -> dict[str, Any]:
        """A JSON description (stored with the notification, read back by the fan-out)."""
        description: dict[str, Any] = {"kind": self.kind}
        if self.ids:
            description["ids"] = [str(value) for value in self.ids]
        if self.role_name:
            description["role"] = self.role_name
        return description

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> Audience:
        kind = description.get("kind")
        ids = [UUID(value) for value in description.get("ids", ())]
        if kind == "person" and len(ids) == 1:
            return cls.person(ids[0])
        if kind == "commune":
            return cls.commune()
        if kind == "neighbourhoods":
            return cls.neighbourhoods(ids)
        if kind == "streets":
            return cls.streets(ids)
        if kind == "role":
            return cls.role(str(description.get("role", "")))
        raise Invalid("audience", f"unknown audience {dict(description)!r}")


def _uuid(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise Invalid("audience", f"{value!r} is not an id") from None


def _id_list(ids: Iterable[UUID] | str, what: str) -> tuple[UUID, ...]:
    if isinstance(ids, str):
        raise Invalid("audience", f"give the {what} as a list of ids")
    values = tuple(sorted({_uuid(value) for value in ids}))
    if not values:
        raise Invalid("audience", f"name at least one of the {what}")
    if len(values) > MAX_AUDIENCE_IDS:
        raise Invalid("audience", f"at most {MAX_AUDIENCE_IDS} {what} at once")
    return values


def _territory() -> Any:
    try:
        from perron.territory import service
    except ImportError:
        raise Invalid(
            "audience", "neighbourhood and street audiences need the territory service, which is missing"
        ) from None
    return service


async def audience_account_ids(
    session: AsyncSession, audience: Audience, *, after: UUID | None = None, limit: int = FAN_OUT_BATCH
) -> list[UUID]:
    """The next ``limit`` recipients after ``after``, in id order (the fan-out's batches)."""
    active: ColumnElement[bool] = Account.disabled.is_(False)
    if after is not None:
        active = and_(active, Account.id > after)
    if audience.kind == "person":
        query = select(Account.id).where(active, Account.id == audience.ids[0])
        return list(await session.scalars(query))
    if audience.kind == "commune":
        query = (
            select(Account.id)
            .where(active, Account.residency_verified_at.is_not(None))
            .order_by(Account.id)
            .limit(limit)
        )
        return list(await session.scalars(query))
    if audience.kind == "role":
        role = audience.role_name or ""
        staff = await session.execute(
            select(Account.id, Account.roles)
            .where(active, Account.kind == AccountKind.STAFF)
            .order_by(Account.id)
        )
        holders = [account_id for account_id, roles in staff if "admin" in roles or role in roles]
        return holders[:limit]
    if audience.kind in ("neighbourhoods", "streets"):
        territory = _territory()
        found = await territory.resident_account_ids(
            session,
            neighbourhoods=audience.ids if audience.kind == "neighbourhoods" else (),
            streets=audience.ids if audience.kind == "streets" else (),
            verified_only=True,
        )
        candidates = sorted({account_id for account_id in found if after is None or account_id > after})
        chosen: list[UUID] = []
        for start in range(0, len(candidates), limit):
            chunk = candidates[start : start + limit]
            enabled = set(await session.scalars(select(Account.id).where(active, Account.id.in_(chunk))))
            chosen += [account_id for account_id in chunk if account_id in enabled]
            if len(chosen) >= limit:
                break
        return chosen[:limit]
    raise Invalid("audience", f"unknown audience {audience.kind!r}")


# --- Sending -----------------------------------------------------------------------------------


def default_frequency(kind: str) -> EmailFrequency:
    """E-mail without a stored preference: announcements at once, the rest in the summary."""
    return EmailFrequency.IMMEDIATE if kind == ANNOUNCEMENT else EmailFrequency.DAILY


def _check_link(link: str | None) -> str | None:
    if link is None:
        return None
    text = link.strip()
    if not text:
        return None
    if len(text) > LINK_MAX or any(c.isspace() or ord(c) < 32 for c in text):
        raise Invalid("link", f"a link is one address without spaces, at most {LINK_MAX} characters")
    if text.startswith("/") and not text.startswith("//"):
        return text
    if re.match(r"^https?://[^/\s]+", text):
        return text
    raise Invalid("link", "give a path on the commune's site (/news/12) or a full https:// address")


def _check_module(module: str) -> str:
    if not isinstance(module, str) or (module != CORE and not MODULE_NAME.match(module)):
        raise Invalid("module", f"{module!r} is not a module name")
    return module


async def notify(
    session: AsyncSession,
    *,
    module: str,
    audience: Audience,
    title: Mapping[str, str],
    body: Mapping[str, str],
    link: str | None = None,
    kind: str = ANNOUNCEMENT,
) -> Notification:
    """Send a notification: recorded now, delivered by a job after the commit.

    ``title`` and ``body`` are plain text per language (``{"fr": ..., "nl": ...}``); each
    person reads them in their language, else in the commune's languages in order. ``link``
    is a path on the commune's site or a full address. ``module`` is the sending module (it
    must be switched on in the commune), or ``"core"`` for the commune itself.
    """
    scope = current_scope()
    if scope is None or scope.tenant_id is None:
        raise NoTenantScope("a notification is sent in its commune's scope")
    tenant_id = ensure_tenant(scope.tenant_id)
    _check_module(module)
    if not isinstance(kind, str) or not KIND.match(kind):
        raise Invalid("kind", "a kind is 1 to 40 lower-case letters, digits, '.', '_' or '-'")
    if not isinstance(audience, Audience):
        raise Invalid("audience", "build the audience with Audience.person(), .commune(), .role() ...")
    titles = TITLE_RULES.check(title, "title")
    bodies = BODY_RULES.check(body, "body")
    target = _check_link(link)
    if module != CORE:
        enabled = await session.scalar(
            select(ModuleActivation.enabled).where(
                ModuleActivation.tenant_id == tenant_id, ModuleActivation.module == module
            )
        )
        if not enabled:
            raise Invalid("module", f"module {module!r} is not switched on in this commune")
    if audience.kind == "person":
        if await session.scalar(select(Account.id).where(Account.id == audience.ids[0])) is None:
            raise Invalid("audience", "there is no such person in this commune")
    elif audience.kind in ("neighbourhoods", "streets"):
        _territory()
    notification = Notification(
        tenant_id=tenant_id,
        module=module,
        kind=kind,
        title=dict(titles),
        body=dict(bodies),
        link=target,
        audience=audience.describe(),
        created_by=current_actor().person_id,
        recipients=0,
    )
    session.add(notification)
    await session.flush()
    audit.record(
        session,
        tenant_id=tenant_id,
        action="notification.send",
        object_type="notification",
        object_id=str(notification.id),
        changes={"module": module, "kind": kind, "audience": audience.describe()},
    )
    enqueue(session, FAN_OUT_JOB, notification_id=str(notification.id))
    return notification


def source_title(module: str, site: TenantSite, language: str) -> str:
    """Who sent it, as a person reads it: the commune, or the module's title."""
    if module == CORE:
        return site.name(language)
    from perron.modules.registry import registry

    manifest = registry.get(module)
    return manifest.title(language) if manifest is not None else module


async def fan_out_batch(session: AsyncSession, notification_id: UUID, after: UUID | None) -> UUID | None:
    """Deliver a notification to the next batch of its audience; returns where the next
    batch starts, or None once everyone has been reached."""
    notification = await session.scalar(select(Notification).where(Notification.id == notification_id))
    if notification is None:
        log.info("notification.gone", notification_id=str(notification_id))
        return None
    audience = Audience.from_description(notification.audience)
    recipients = await audience_account_ids(session, audience, after=after, limit=FAN_OUT_BATCH)
    if recipients:
        await _deliver(session, notification, recipients)
    if len(recipients) == FAN_OUT_BATCH:
        return recipients[-1]
    notification.recipients = (
        await session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.notification_id == notification.id, Delivery.channel == Channel.INBOX
            )
        )
        or 0
    )
    notification.fanned_out_at = notification.fanned_out_at or utcnow()
    return None


async def _site(session: AsyncSession, tenant_id: UUID) -> TenantSite:
    site = await load_site(session, tenant_id)
    if site is None:
        raise NotFound("the commune no longer exists")
    return site


async def _deliver(session: AsyncSession, notification: Notification, account_ids: Sequence[UUID]) -> None:
    accounts = list(
        await session.scalars(
            select(Account)
            .where(Account.id.in_(account_ids), Account.disabled.is_(False))
            .order_by(Account.id)
        )
    )
    existing = {
        (account_id, channel)
        for account_id, channel in await session.execute(
            select(Delivery.account_id, Delivery.channel).where(
                Delivery.notification_id == notification.id, Delivery.account_id.in_(account_ids)
            )
        )
    }
    preferences = dict(
        (
            await session.execute(
                select(Preference.account_id, Preference.email).where(
                    Preference.module == notification.module, Preference.account_id.in_(account_ids)
                )
            )
        )
        .tuples()
        .all()
    )
    mail_on = mail_service().enabled
    site: TenantSite | None = None
    now = utcnow()
    for account in accounts:
        if (account.id, Channel.INBOX) not in existing:
            session.add(
                Delivery(
                    tenant_id=notification.tenant_id,
                    notification_id=notification.id,
                    account_id=account.id,
                    channel=Channel.INBOX,
                    status=DeliveryStatus.SENT,
                    sent_at=now,
                )
            )
        if (account.id, Channel.EMAIL) in existing or not mail_on or not account.email:
            continue
        frequency = preferences.get(account.id) or default_frequency(notification.kind)
        if frequency is EmailFrequency.OFF:
            continue
        delivery = Delivery(
            tenant_id=notification.tenant_id,
            notification_id=notification.id,
            account_id=account.id,
            channel=Channel.EMAIL,
            status=DeliveryStatus.DIGEST_PENDING,
        )
        if frequency is EmailFrequency.IMMEDIATE:
            site = site or await _site(session, notification.tenant_id)
            try:
                email = await _queue_notification_email(session, site, notification, account)
            except Invalid as error:
                delivery.status, delivery.error = DeliveryStatus.FAILED, error.message
            else:
                delivery.email_id = email.id
                delivery.status = (
                    DeliveryStatus.PENDING if email.status is EmailStatus.QUEUED else DeliveryStatus.FAILED
                )
                delivery.error = email.error
        session.add(delivery)
    await session.flush()


def _texts(notification: Notification, language: str, site: TenantSite) -> dict[str, Any]:
    fallbacks = site.languages
    return {
        "title": pick(notification.title, language, fallbacks),
        "title_language": pick_language(notification.title, language, fallbacks) or language,
        "body": pick(notification.body, language, fallbacks),
        "body_language": pick_language(notification.body, language, fallbacks) or language,
    }


async def _queue_notification_email(
    session: AsyncSession, site: TenantSite, notification: Notification, account: Account
) -> OutgoingEmail:
    settings = mail_service().settings
    language = account.language
    texts = _texts(notification, language, site)
    return await queue_email(
        session,
        site=site,
        to_address=account.email or "",
        to_name=account.display_name,
        language=language,
        subject=texts["title"],
        template="perron/email/notification",
        context=texts
        | {
            "source": source_title(notification.module, site, language)
            if notification.module != CORE
            else "",
            "link_url": site_url(settings, site, notification.link) if notification.link else None,
        },
        category="notification",
        account_id=account.id,
        unsubscribe_path=PREFERENCES_PATH,
    )


async def _email_finished(session: AsyncSession, email: OutgoingEmail) -> None:
    """An e-mail carrying deliveries was sent or gave up: so did they."""
    sent = email.status is EmailStatus.SENT
    await session.execute(
        update(Delivery)
        .where(
            Delivery.email_id == email.id,
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.FAILED)),
        )
        .values(
            status=DeliveryStatus.SENT if sent else DeliveryStatus.FAILED,
            sent_at=email.sent_at if sent else None,
            error=None if sent else email.error,
        )
        .execution_options(synchronize_session=False)
    )


on_result("notification", _email_finished)
on_result("digest", _email_finished)


# --- Daily summaries ----------------------------------------------------------------------------


async def send_digests_batch(session: AsyncSession, tenant_id: UUID, after: UUID | None) -> UUID | None:
    """Send the summaries of the next :data:`DIGEST_BATCH` people with e-mail waiting; returns
    where the next batch starts, or None when everyone's summary is queued."""
    ensure_tenant(tenant_id)
    waiting = (
        select(Delivery.account_id)
        .where(Delivery.channel == Channel.EMAIL, Delivery.status == DeliveryStatus.DIGEST_PENDING)
        .group_by(Delivery.account_id)
        .order_by(Delivery.account_id)
        .limit(DIGEST_BATCH)
    )
    if after is not None:
        waiting = waiting.where(Delivery.account_id > after)
    account_ids = list(await session.scalars(waiting))
    if not account_ids:
        return None
    site = await _site(session, tenant_id)
    for account_id in account_ids:
        await _send_digest(session, site, account_id)
    return account_ids[-1] if len(account_ids) == DIGEST_BATCH else None


async def _send_digest(session: AsyncSession, site: TenantSite, account_id: UUID) -> None:
    rows = list(
        (
            await session.execute(
                select(Delivery, Notification)
                .join(
                    Notification,
                    (Notification.tenant_id == Delivery.tenant_id)
                    & (Notification.id == Delivery.notification_id),
                )
                .where(
                    Delivery.account_id == account_id,
                    Delivery.channel == Channel.EMAIL,
                    Delivery.status == DeliveryStatus.DIGEST_PENDING,
                )
                .order_by(Notification.created_at, Notification.id)
                # Two summary runs at once (cron twice) cannot both take the same deliveries:
                # the second waits, then finds them no longer waiting (SQLite has one writer).
                .with_for_update(of=Delivery)
            )
        ).tuples()
    )
    account = await session.scalar(select(Account).where(Account.id == account_id))
    if account is None or account.disabled or not account.email or not mail_service().enabled:
        reason = "e-mail is switched off" if account and account.email else "no e-mail address"
        for delivery, _ in rows:
            delivery.status, delivery.error = DeliveryStatus.SKIPPED, reason
        return
    read = dict(
        (
            await session.execute(
                select(Delivery.notification_id, Delivery.read_at).where(
                    Delivery.account_id == account_id,
                    Delivery.channel == Channel.INBOX,
                    Delivery.status == DeliveryStatus.READ,
                    Delivery.notification_id.in_([notification.id for _, notification in rows]),
                )
            )
        )
        .tuples()
        .all()
    )
    preferences = await preferences_of(session, account_id)
    items: list[tuple[Delivery, Notification]] = []
    for delivery, notification in rows:
        if notification.id in read:
            # Already read in the inbox: the summary has nothing to tell about it.
            delivery.status, delivery.read_at = DeliveryStatus.READ, read[notification.id]
        elif preferences.get(notification.module, default_frequency(notification.kind)) is EmailFrequency.OFF:
            delivery.status, delivery.error = DeliveryStatus.SKIPPED, "e-mail switched off for this module"
        elif len(items) < DIGEST_MAX_ITEMS:
            items.append((delivery, notification))
    if not items:
        return
    language = account.language
    settings = mail_service().settings
    entries = [
        _texts(notification, language, site)
        | {
            "source": source_title(notification.module, site, language),
            "when": format_datetime(notification.created_at, "medium", language=language),
            "link_url": site_url(settings, site, notification.link) if notification.link else None,
        }
        for _, notification in items
    ]
    with using_language(language):
        subject = gettext("Your summary from %(commune)s") % {"commune": site.name(language)}
    try:
        email = await queue_email(
            session,
            site=site,
            to_address=account.email,
            to_name=account.display_name,
            language=language,
            subject=subject,
            template="perron/email/digest",
            context={"items": entries, "inbox_url": site_url(settings, site, INBOX_PATH)},
            category="digest",
            account_id=account.id,
            unsubscribe_path=PREFERENCES_PATH,
        )
    except Invalid as error:
        for delivery, _ in items:
            delivery.status, delivery.error = DeliveryStatus.FAILED, error.message
        return
    for delivery, _ in items:
        delivery.email_id = email.id
        delivery.status = (
            DeliveryStatus.PENDING if email.status is EmailStatus.QUEUED else DeliveryStatus.FAILED
        )
        delivery.error = email.error


# --- Preferences -------------------------------------------------------------------------------


async def preferences_of(session: AsyncSession, account_id: UUID) -> dict[str, EmailFrequency]:
    """The person's stored choices, by module (modules not named use the default)."""
    rows = await session.execute(
        select(Preference.module, Preference.email).where(Preference.account_id == account_id)
    )
    return dict(rows.tuples().all())


async def preference_modules(session: AsyncSession, site: TenantSite, account_id: UUID) -> list[str]:
    """Modules a person can choose for: the commune itself, the modules switched on that are
    installed, and any module that has notified them."""
    from perron.modules.registry import registry

    received = set(
        await session.scalars(
            select(Notification.module)
            .join(
                Delivery,
                (Delivery.tenant_id == Notification.tenant_id)
                & (Delivery.notification_id == Notification.id),
            )
            .where(Delivery.account_id == account_id)
            .distinct()
        )
    )
    installed = {name for name in site.enabled_modules if registry.get(name) is not None}
    return [CORE, *sorted((installed | received) - {CORE})]


DEFAULT_CHOICE = "default"
CHOICES = (DEFAULT_CHOICE, *(frequency.value for frequency in EmailFrequency))


async def set_preferences(
    session: AsyncSession, account_id: UUID, choices: Mapping[str, str], *, modules: Sequence[str]
) -> bool:
    """Store a person's e-mail choices: ``{module: "default" | "immediate" | "daily" | "off"}``.

    Every choice is checked before anything is stored; ``Invalid`` names the first wrong one.
    Returns whether anything changed.
    """
    account = ensure_owned(await session.scalar(select(Account).where(Account.id == account_id)))
    if account is None:
        raise NotFound("there is no such account")
    for module, choice in choices.items():
        if module not in modules:
            raise Invalid(module, "there is no such module to choose for")
        if choice not in CHOICES:
            raise Invalid(module, "choose immediately, a daily summary, never, or the default")
    before = await preferences_of(session, account_id)
    after = dict(before)
    for module, choice in choices.items():
        if choice == DEFAULT_CHOICE:
            after.pop(module, None)
        else:
            after[module] = EmailFrequency(choice)
    if after == before:
        return False
    removed = [module for module in before if module not in after]
    if removed:
        await session.execute(
            delete(Preference).where(Preference.account_id == account_id, Preference.module.in_(removed))
        )
    for module, frequency in after.items():
        if module not in before:
            session.add(
                Preference(tenant_id=account.tenant_id, account_id=account_id, module=module, email=frequency)
            )
        elif before[module] is not frequency:
            await session.execute(
                update(Preference)
                .where(Preference.account_id == account_id, Preference.module == module)
                .values(email=frequency, updated_at=utcnow())
            )
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="notification.preferences",
        object_type="account",
        object_id=str(account_id),
        changes=audit.diff(
            {key: value.value for key, value in before.items()},
            {key: value.value for key, value in after.items()},
        ),
    )
    return True


# --- The inbox ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    delivery_id: UUID
    title: str
    title_language: str
    body: str
    body_language: str
    link: str | None
    source: str
    created_at: Any
    unread: bool


async def inbox(
    session: AsyncSession,
    site: TenantSite,
    account_id: UUID,
    *,
    language: str,
    before: UUID | None = None,
    limit: int = INBOX_PAGE,
) -> tuple[list[InboxItem], UUID | None]:
    """A page of a person's inbox, newest first, and the cursor of the next (older) page.

    ``before`` is the last delivery of the previous page (keyset pagination: pages stay
    right while new notifications arrive); one that is not the person's is ignored.
    """
    query = (
        select(Delivery, Notification)
        .join(
            Notification,
            (Notification.tenant_id == Delivery.tenant_id) & (Notification.id == Delivery.notification_id),
        )
        .where(Delivery.account_id == account_id, Delivery.channel == Channel.INBOX)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        cursor = (
            await session.execute(
                select(Notification.created_at, Notification.id)
                .join(
                    Delivery,
                    (Delivery.tenant_id == Notification.tenant_id)
                    & (Delivery.notification_id == Notification.id),
                )
                .where(
                    Delivery.id == before,
                    Delivery.account_id == account_id,
                    Delivery.channel == Channel.INBOX,
                )
            )
        ).first()
        if cursor is not None:
            created_at, notification_id = cursor
            query = query.where(
                or_(
                    Notification.created_at < created_at,
                    and_(Notification.created_at == created_at, Notification.id < notification_id),
                )
            )
    rows = list((await session.execute(query)).tuples())
    items = [
        InboxItem(
            delivery_id=delivery.id,
            link=notification.link,
            source=source_title(notification.module, site, language),
            created_at=notification.created_at,
            unread=delivery.status is not DeliveryStatus.READ,
            **_texts(notification, language, site),
        )
        for delivery, notification in rows[:limit]
    ]
    following = rows[limit - 1][0].id if len(rows) > limit else None
    return items, following


async def unread_count(session: AsyncSession, account_id: UUID) -> int:
    count = await session.scalar(
        select(func.count(Delivery.id)).where(
            Delivery.account_id == account_id,
            Delivery.channel == Channel.INBOX,
            Delivery.status != DeliveryStatus.READ,
        )
    )
    return int(count or 0)


async def mark_read(session: AsyncSession, account_id: UUID, delivery_id: UUID) -> bool:
    """Mark one of the person's inbox notifications read; ``NotFound`` for anyone else's."""
    delivery = await session.scalar(
        select(Delivery).where(
            Delivery.id == delivery_id, Delivery.account_id == account_id, Delivery.channel == Channel.INBOX
        )
    )
    if delivery is None:
        raise NotFound("there is no such notification in your inbox")
    ensure_owned(delivery)
    if delivery.status is DeliveryStatus.READ:
        return False
    delivery.status, delivery.read_at = DeliveryStatus.READ, utcnow()
    return True
