"""Sending e-mail: queue a message in the change's transaction, a job sends it.

:func:`queue_email` renders the message in the recipient's language and the commune's
branding, stores it (:class:`~perron.mail.models.OutgoingEmail`) and queues
:func:`send_email` through the outbox: a rolled-back change sends nothing. The job sends
over SMTP in a thread; a temporary failure (server down, busy) is tried again after
``PERRON_MAIL_RETRY_SECONDS``, doubling each time, :data:`MAX_ATTEMPTS` times in all; a
permanent one (unknown recipient) or the last attempt marks the message failed with the
reason. Whoever queued a message can follow its outcome with :func:`on_result`.

Every process builds its mail service from the settings the first time it needs it (every
Perron process reads the same ``PERRON_*`` variables); :func:`configure` sets it explicitly.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any
from uuid import UUID

import dramatiq
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import signals
from perron.config import Settings, load_settings
from perron.db.base import new_id, utcnow
from perron.db.repository import ensure_tenant
from perron.errors import Invalid
from perron.jobs import JobContext, enqueue, job
from perron.logging import get_logger
from perron.mail.compose import build_message, layout_context, message_id, one_line, render, site_url
from perron.mail.models import EmailStatus, OutgoingEmail
from perron.mail.transport import PermanentFailure, TemporaryFailure, Transport, transport_for
from perron.tenancy.models import LANGUAGES
from perron.tenancy.site import TenantSite
from perron.web.templating import Templates, theme_template_dirs

log = get_logger("perron.mail")

MAX_ATTEMPTS = 8
"""Attempts per message; with the default 60 s first wait, the last is about two hours after
the first."""
MAX_RETRY_DELAY_SECONDS = 6 * 3600
ERROR_LENGTH = 1000
CATEGORY_LENGTH = 40

DISABLED_REASON = "e-mail is switched off on this deployment (PERRON_MAIL_ENABLED=false)"


@dataclass(frozen=True)
class MailService:
    settings: Settings
    templates: Templates
    transport: Transport

    @property
    def enabled(self) -> bool:
        return self.settings.mail_enabled

    @property
    def from_address(self) -> str:
        return self.settings.mail_from_address


_service: MailService | None = None
_lock = threading.Lock()


def configure(settings: Settings | None, templates: Templates | None = None) -> MailService | None:
    """Use these settings (and templates) for this process's e-mail; ``None`` forgets them,
    so the next use reads the environment again. Returns the service in force before."""
    global _service
    with _lock:
        previous = _service
        _service = _build(settings, templates) if settings is not None else None
        return previous


def restore(previous: MailService | None) -> None:
    """Put back what :func:`configure` returned (tests)."""
    global _service
    with _lock:
        _service = previous


def mail_service() -> MailService:
    global _service
    with _lock:
        if _service is None:
            _service = _build(load_settings(), None)
        return _service


def _build(settings: Settings, templates: Templates | None) -> MailService:
    transport = transport_for(settings)
    if not settings.mail_enabled:
        log.info("mail.disabled", reason="PERRON_MAIL_ENABLED=false: no e-mail leaves the platform")
    elif not settings.smtp_host:
        # Say where the mail goes: a developer looking for a message finds it there.
        (log.warning if settings.env == "production" else log.info)(
            "mail.folder",
            folder=str(settings.mail_folder),
            reason="no PERRON_SMTP_HOST: e-mails are written as .eml files instead of being sent",
        )
    else:
        log.info("mail.smtp", transport=transport.description)
    return MailService(
        settings=settings,
        templates=templates or Templates(theme_template_dirs(settings.themes_dir)),
        transport=transport,
    )


# --- Following what became of a message ------------------------------------------------------

ResultHook = Callable[[AsyncSession, OutgoingEmail], Awaitable[None]]
_hooks: dict[str, list[ResultHook]] = {}


def on_result(category: str, hook: ResultHook) -> None:
    """Call ``hook(session, email)`` in the sending job's transaction once a message of this
    category is sent or has failed for good (``email.status`` says which)."""
    hooks = _hooks.setdefault(category, [])
    if hook not in hooks:
        hooks.append(hook)


async def _finished(session: AsyncSession, email: OutgoingEmail) -> None:
    for hook in _hooks.get(email.category, ()):
        await hook(session, email)


# --- Queueing ----------------------------------------------------------------------------------


def check_address(address: str, field: str = "to") -> str:
    """A single mailbox address, as the SMTP envelope takes it; ``Invalid`` otherwise."""
    text = address.strip()
    problem = f"{address!r} is not an e-mail address"
    if not text or len(text) > 254 or any(c.isspace() or c in '<>,;"' for c in text):
        raise Invalid(field, problem)
    try:
        parsed = Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        raise Invalid(field, problem) from None
    if not parsed.username or "." not in parsed.domain:
        raise Invalid(field, problem)
    try:
        # An internationalised domain travels in its ASCII form, which every server takes.
        domain = parsed.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise Invalid(field, problem) from None
    return f"{parsed.username}@{domain}"


async def queue_email(
    session: AsyncSession,
    *,
    site: TenantSite,
    to_address: str,
    language: str,
    subject: str,
    template: str,
    context: Mapping[str, Any] | None = None,
    category: str,
    to_name: str | None = None,
    account_id: UUID | None = None,
    unsubscribe_path: str | None = None,
) -> OutgoingEmail:
    """Render ``<template>.html`` and ``<template>.txt`` for one recipient and queue the
    message, in ``session``'s transaction.

    ``language`` is the recipient's: the commune's name (the sender's display name), the
    layout and the template's own texts use it. ``unsubscribe_path`` (on the commune's site)
    becomes the ``List-Unsubscribe`` header and the layout's footer link. ``category`` groups
    messages for :func:`on_result`. With e-mail switched off the message is kept, marked
    failed with the reason, and no job is queued.
    """
    ensure_tenant(site.id)
    service = mail_service()
    address = check_address(to_address)
    if language not in LANGUAGES:
        language = site.default_language
    if not category or len(category) > CATEGORY_LENGTH:
        raise Invalid("category", f"name the kind of message in 1 to {CATEGORY_LENGTH} characters")
    title = one_line(subject)
    if not title:
        raise Invalid("subject", "an e-mail needs a subject")
    email_id = new_id()
    unsubscribe_url = site_url(service.settings, site, unsubscribe_path) if unsubscribe_path else None
    values = (
        layout_context(service.settings, site, language)
        | dict(context or {})
        | {"subject": title, "unsubscribe_url": unsubscribe_url}
    )
    rendered = render(service.templates, template, values, language)
    email = OutgoingEmail(
        tenant_id=site.id,
        id=email_id,
        category=category,
        account_id=account_id,
        to_address=address,
        to_name=one_line(to_name, 200) if to_name else None,
        from_name=one_line(site.name(language), 200),
        reply_to=site.contact.contact_email,
        language=language,
        subject=title,
        text_body=rendered.text,
        html_body=rendered.html,
        unsubscribe_url=unsubscribe_url,
        message_id=message_id(email_id, service.from_address),
        status=EmailStatus.QUEUED,
        attempts=0,
    )
    if not service.enabled:
        email.status = EmailStatus.FAILED
        email.error = DISABLED_REASON
        email.failed_at = utcnow()
    session.add(email)
    await session.flush()
    if service.enabled:
        enqueue(session, send_email, email_id=str(email_id))
    return email


# --- Sending -----------------------------------------------------------------------------------


def retry_delay_ms(settings: Settings, attempt: int) -> int:
    """Wait before attempt ``attempt + 1``: the base doubled each time, capped, with jitter
    (messages that failed together do not all come back at the same instant)."""
    ceiling = min(settings.mail_retry_seconds * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)
    return max(1, int(ceiling * random.uniform(0.75, 1.0) * 1000))


def _fail(email: OutgoingEmail, reason: str) -> None:
    email.status = EmailStatus.FAILED
    email.error = reason[:ERROR_LENGTH]
    email.failed_at = utcnow()


@job("perron.mail.send", queue="mail", max_retries=MAX_ATTEMPTS - 1)
async def send_email(ctx: JobContext, *, email_id: str) -> None:
    """Send one queued message (again, after a temporary failure); a message already sent
    or failed is left alone, so a second delivery of this job sends nothing twice."""
    email = await ctx.session.scalar(select(OutgoingEmail).where(OutgoingEmail.id == UUID(email_id)))
    if email is None:
        log.info("mail.gone", email_id=email_id)  # erased with its recipient's account
        return
    if email.status is not EmailStatus.QUEUED:
        return
    service = mail_service()
    if not service.enabled:
        _fail(email, DISABLED_REASON)
        await _finished(ctx.session, email)
        return
    try:
        message = build_message(email, service.from_address)
    except (ValueError, TypeError, HeaderParseError) as error:
        _fail(email, f"the message could not be composed: {error}")
        log.error("mail.unsendable", email_id=email_id, error=str(error))
        await _finished(ctx.session, email)
        return
    email.attempts = ctx.attempt
    # Commit before talking to the server: no transaction (nor SQLite's write lock) is held
    # while the network is slow.
    await ctx.progress(0, 1, "sending")
    try:
        await asyncio.to_thread(service.transport.send, message, service.from_address, [email.to_address])
    except PermanentFailure as error:
        _fail(email, str(error))
        log.warning("mail.refused", email_id=email_id, error=str(error))
    except TemporaryFailure as error:
        if ctx.attempt >= MAX_ATTEMPTS:
            _fail(email, f"gave up after {ctx.attempt} attempts: {error}")
            log.error("mail.failed", email_id=email_id, attempts=ctx.attempt, error=str(error))
        else:
            email.error = str(error)[:ERROR_LENGTH]
            await ctx.progress(0, 1, f"attempt {ctx.attempt} failed; trying again later")
            delay = retry_delay_ms(service.settings, ctx.attempt)
            log.warning(
                "mail.retry", email_id=email_id, attempt=ctx.attempt, delay_ms=delay, error=str(error)
            )
            raise dramatiq.Retry(f"temporary failure sending e-mail {email_id}", delay=delay) from None
    else:
        email.status = EmailStatus.SENT
        email.sent_at = utcnow()
        email.error = None
        log.info("mail.sent", email_id=email_id, transport=service.transport.description)
    await _finished(ctx.session, email)


async def _erase_for_account(ctx: signals.SignalContext, event: signals.AccountEvent) -> None:
    """A deleted account's messages go with it (addresses and texts are personal data)."""
    await ctx.session.execute(delete(OutgoingEmail).where(OutgoingEmail.account_id == event.account_id))


signals.account_deleted.connect(_erase_for_account, module=None)

__all__ = [
    "MAX_ATTEMPTS",
    "MailService",
    "check_address",
    "configure",
    "mail_service",
    "on_result",
    "queue_email",
    "restore",
    "send_email",
    "site_url",
]
