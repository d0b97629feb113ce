"""E-mail: rendered in the recipient's language and the commune's branding, sent over a real
SMTP server (aiosmtpd on a local port) by a job, with its outcome recorded on the message."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from perron import mail
from perron.config import ConfigurationError
from perron.db.scope import platform_scope
from perron.errors import Invalid
from perron.jobs.deadletters import DeadLetter
from perron.mail import EmailStatus, OutgoingEmail
from perron.tenancy import actions
from perron.tenancy.site import load_site
from perron.testing.harness import Harness, Tenant
from tests.conftest import base_settings
from tests.integration.conftest_smtp import (
    SMTPServer,
    free_port,
    mail_settings,
    run_jobs,
    smtp_mail,
    smtp_server,
)

__all__ = ["smtp_mail", "smtp_server"]  # fixtures used by the tests below

PALETTE = {"primary_color": "#7a1f3d", "primary_text_color": "#ffffff", "accent_color": "#1d4f91"}


@pytest.fixture
async def harness(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    yield harness
    await harness.close()


@pytest.fixture
async def hannut(harness: Harness) -> Tenant:
    tenant = await harness.commune("hannut", languages=["fr", "nl"], names={"fr": "Hannut", "nl": "Hannuit"})
    async with harness.transaction(tenant) as session:
        await actions.update_branding(session, tenant.id, palette=PALETTE)
        await actions.update_commune_settings(session, tenant.id, "core", {"contact_email": "info@hannut.be"})
    return tenant


async def queue(harness: Harness, tenant: Tenant, **options: Any) -> OutgoingEmail:
    values: dict[str, Any] = {
        "to_address": "an@example.be",
        "to_name": "An Peeters",
        "language": "nl",
        "subject": "Wegenwerken in de Stationsstraat",
        "template": "perron/email/notification",
        "context": {
            "title": "Wegenwerken in de Stationsstraat",
            "title_language": "nl",
            "body": "Van maandag tot vrijdag.\n\nParkeren is verboden.",
            "body_language": "nl",
            "source": "",
            "link_url": "http://hannut.test/news/12",
        },
        "category": "test",
        "unsubscribe_path": "/account/notifications",
    }
    values |= options
    async with harness.transaction(tenant) as session:
        site = await load_site(session, tenant.id)
        assert site is not None
        return await mail.queue_email(session, site=site, **values)


async def stored(harness: Harness, tenant: Tenant, email_id: Any) -> OutgoingEmail:
    async with harness.transaction(tenant) as session:
        row = await session.scalar(select(OutgoingEmail).where(OutgoingEmail.id == email_id))
    assert row is not None
    return row


async def test_a_message_arrives_in_the_recipients_language_and_the_communes_branding(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    queued = await queue(harness, hannut)
    assert smtp_mail.messages == []  # nothing leaves before the job runs
    await run_jobs(harness.runtime)

    [received] = smtp_mail.messages
    assert received.sender == "no-reply@perron.test"
    assert received.recipients == ["an@example.be"]
    message = received.message
    assert email.utils.parseaddr(message["From"]) == ("Hannuit", "no-reply@perron.test")  # the Dutch name
    assert email.utils.parseaddr(message["To"]) == ("An Peeters", "an@example.be")
    assert email.utils.parseaddr(message["Reply-To"])[1] == "info@hannut.be"
    assert message["Subject"] == "Wegenwerken in de Stationsstraat"
    assert message["Content-Language"] == "nl"
    assert message["Message-ID"] == queued.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] == "<http://hannut.test/account/notifications>"
    assert email.utils.parsedate_to_datetime(message["Date"]) is not None
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]

    html, text = received.html, received.text
    # The commune's colours are inline (e-mail clients drop stylesheets).
    assert "background-color:#7a1f3d" in html and "color:#ffffff" in html
    assert "<style" not in html and "stylesheet" not in html
    assert '<html lang="nl">' in html
    # The layout's own words are Dutch; the body keeps its paragraphs.
    assert "Kies welke e-mails u ontvangt" in html and "Kies welke e-mails u ontvangt" in text
    assert "Lees meer" in html and "Lees meer: http://hannut.test/news/12" in text
    assert "Van maandag tot vrijdag.</p>" in html and "Parkeren is verboden." in text
    assert "info@hannut.be" in text

    row = await stored(harness, hannut, queued.id)
    assert (row.status, row.attempts, row.error) == (EmailStatus.SENT, 1, None)
    assert row.sent_at is not None


async def test_a_persons_text_is_escaped_in_html_and_left_alone_in_plain_text(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    hostile = '<script>alert("x")</script> Tom & Jerry <b>bold</b>'
    await queue(
        harness,
        hannut,
        language="fr",
        subject="Line one\nBcc: victim@example.be",
        context={
            "title": hostile,
            "title_language": "fr",
            "body": hostile,
            "body_language": "fr",
            "source": "",
        },
    )
    await run_jobs(harness.runtime)
    [received] = smtp_mail.messages
    assert "<script>" not in received.html and "<b>bold</b>" not in received.html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt;"
        in received.html
    )
    assert hostile in received.text  # plain text is not HTML: nothing to escape
    # A line break in a subject cannot smuggle a header in.
    assert received.message["Subject"] == "Line one Bcc: victim@example.be"
    assert received.message["Bcc"] is None and received.recipients == ["an@example.be"]
    assert email.utils.parseaddr(received.message["From"])[0] == "Hannut"  # French this time


async def test_a_rolled_back_change_sends_nothing(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    with pytest.raises(RuntimeError):
        async with harness.transaction(hannut) as session:
            site = await load_site(session, hannut.id)
            assert site is not None
            await mail.queue_email(
                session,
                site=site,
                to_address="an@example.be",
                language="fr",
                subject="Never",
                template="perron/email/notification",
                context={"title": "Never", "body": "", "title_language": "fr", "body_language": "fr"},
                category="test",
            )
            raise RuntimeError("the change failed")
    await run_jobs(harness.runtime)
    assert smtp_mail.messages == []
    async with harness.transaction(hannut) as session:
        assert list(await session.scalars(select(OutgoingEmail))) == []


@pytest.mark.parametrize(
    ("address", "field"),
    [("not an address", "to"), ("an@localhost", "to"), ("a@b.be\r\nBcc: x@y.be", "to"), ("", "to")],
)
async def test_a_bad_address_is_refused_and_nothing_is_queued(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer, address: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await queue(harness, hannut, to_address=address)
    assert refused.value.field == field
    await run_jobs(harness.runtime)
    assert smtp_mail.messages == []
    async with harness.transaction(hannut) as session:
        assert list(await session.scalars(select(OutgoingEmail))) == []


async def test_a_recipient_the_server_refuses_fails_at_once_with_the_reason(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    queued = await queue(harness, hannut, to_address="nobody@example.be")
    await run_jobs(harness.runtime)
    row = await stored(harness, hannut, queued.id)
    assert row.status is EmailStatus.FAILED
    assert row.attempts == 1  # refused for good: trying again would not help
    assert row.error is not None and "550" in row.error and "No such user" in row.error
    assert smtp_mail.messages == []


async def test_smtp_down_is_retried_then_the_message_is_marked_failed(
    harness: Harness, hannut: Tenant, runtime: Any, client_for: Any
) -> None:
    closed = free_port()  # nothing listens there
    previous = mail.configure(mail_settings(runtime.settings, closed), runtime.templates)
    try:
        queued = await queue(harness, hannut)
        await run_jobs(harness.runtime)
    finally:
        mail.restore(previous)
    row = await stored(harness, hannut, queued.id)
    assert row.status is EmailStatus.FAILED
    assert row.attempts == mail.MAX_ATTEMPTS
    assert row.error is not None
    assert row.error.startswith(
        f"gave up after {mail.MAX_ATTEMPTS} attempts: could not talk to SMTP 127.0.0.1"
    )
    assert row.failed_at is not None and row.sent_at is None
    # Giving up is the job's normal end, not a crash: no dead letter, and the site still answers.
    with platform_scope("test: look at the dead letters"):
        async with runtime.database.session() as session:
            assert list(await session.scalars(select(DeadLetter))) == []
    assert (await client_for(hannut.host).get("/")).status_code == 200


async def test_a_message_sent_twice_by_the_broker_leaves_once(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer, runtime: Any
) -> None:
    queued = await queue(harness, hannut)
    await run_jobs(harness.runtime)
    async with harness.transaction(hannut) as session:  # at-least-once delivery: the same job again
        from perron.jobs import enqueue

        enqueue(session, mail.send_email, email_id=str(queued.id))
    await run_jobs(harness.runtime)
    assert len(smtp_mail.messages) == 1


async def test_without_an_smtp_host_mail_is_written_to_a_folder(
    harness: Harness, hannut: Tenant, runtime: Any, tmp_path: Path
) -> None:
    folder_settings = runtime.settings.model_copy(update={"data_dir": tmp_path, "smtp_host": None})
    previous = mail.configure(folder_settings, runtime.templates)
    try:
        assert mail.mail_service().transport.description == f"folder {tmp_path / 'mail'}"
        queued = await queue(harness, hannut)
        await run_jobs(harness.runtime)
    finally:
        mail.restore(previous)
    [written] = list((tmp_path / "mail").glob("*.eml"))
    message = BytesParser(policy=policy.default).parsebytes(written.read_bytes())
    assert message["Message-ID"] == queued.message_id
    assert message["Subject"] == "Wegenwerken in de Stationsstraat"
    assert (await stored(harness, hannut, queued.id)).status is EmailStatus.SENT
    assert not list((tmp_path / "mail").glob("*.part"))


async def test_switched_off_mail_sends_nothing_and_says_why(
    harness: Harness, hannut: Tenant, runtime: Any, smtp_server: SMTPServer
) -> None:
    off = mail_settings(runtime.settings, smtp_server.port).model_copy(update={"mail_enabled": False})
    previous = mail.configure(off, runtime.templates)
    try:
        queued = await queue(harness, hannut)
        await run_jobs(harness.runtime)
    finally:
        mail.restore(previous)
    assert smtp_server.messages == []
    row = await stored(harness, hannut, queued.id)
    assert row.status is EmailStatus.FAILED
    assert row.error == "e-mail is switched off on this deployment (PERRON_MAIL_ENABLED=false)"


def test_smtp_settings_are_checked_when_the_process_starts(tmp_path: Path) -> None:
    settings = base_settings(
        tmp_path, smtp_host="smtp.example.be", smtp_port=465, smtp_ssl=True, smtp_starttls=False
    )
    assert settings.smtp_ssl and not settings.smtp_starttls
    with pytest.raises(
        ConfigurationError, match="PERRON_SMTP_SSL and PERRON_SMTP_STARTTLS exclude each other"
    ):
        base_settings(tmp_path, smtp_ssl=True)
    with pytest.raises(ConfigurationError, match="PERRON_MAIL_FROM_ADDRESS: must be a plain e-mail address"):
        base_settings(tmp_path, mail_from_address="Perron <no-reply@example.be>")
    with pytest.raises(ConfigurationError, match="PERRON_SMTP_HOST: must be a host name"):
        base_settings(tmp_path, smtp_host="smtp://smtp.example.be")
    with pytest.raises(ConfigurationError, match="PERRON_SMTP_PORT"):
        base_settings(tmp_path, smtp_port=0)
    secret = base_settings(tmp_path, smtp_password="hunter2")
    assert "hunter2" not in repr(secret)


def test_an_internationalised_domain_is_sent_in_its_ascii_form() -> None:
    assert mail.check_address(" lea@hôtel-de-ville.be ") == "lea@xn--htel-de-ville-plb.be"
    for wrong in ("a@b", "@x.be", "a@@b.be", "a@.be", "a b@c.be"):
        with pytest.raises(Invalid):
            mail.check_address(wrong)
