"""Notifications: audiences reach exactly their people, by the channels each person chose,
the fan-out never delivers twice, daily summaries group what waits, and the inbox and the
preferences pages work for the person logged in (and only for them)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select, update

from perron.audit import Actor, ActorKind, AuditEntry, acting_as
from perron.db.scope import platform_scope
from perron.errors import Invalid
from perron.identity import actions as identity
from perron.identity.models import Account
from perron.jobs import OutboxMessage, enqueue
from perron.mail import OutgoingEmail
from perron.notifications import (
    Audience,
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    Preference,
    notify,
    service,
)
from perron.notifications.service import FAN_OUT_JOB
from perron.tenancy import actions
from perron.testing.harness import Harness, Person, Tenant
from tests.conftest import settings_env
from tests.integration.conftest_smtp import SMTPServer, run_jobs, smtp_mail, smtp_server

__all__ = ["smtp_mail", "smtp_server"]  # fixtures used by the tests below


def _territory_installed() -> bool:
    try:
        return importlib.util.find_spec("perron.territory.service") is not None
    except ModuleNotFoundError:  # not even the perron.territory package
        return False


TERRITORY = _territory_installed()
needs_territory = pytest.mark.skipif(
    not TERRITORY,
    reason="perron.territory.service is not installed yet: neighbourhood and street audiences need it",
)


@pytest.fixture
async def harness(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    yield harness
    await harness.close()


@pytest.fixture
async def hannut(harness: Harness) -> Tenant:
    return await harness.commune("hannut", languages=["fr", "nl"], names={"fr": "Hannut", "nl": "Hannuit"})


async def send(
    harness: Harness,
    tenant: Tenant,
    audience: Audience,
    *,
    title: Mapping[str, str] | None = None,
    body: Mapping[str, str] | None = None,
    run: bool = True,
    **options: Any,
) -> Notification:
    """A staff member sends a notification; its jobs run (unless ``run`` is false)."""
    options.setdefault("module", "core")
    async with harness.transaction(tenant) as session:
        with acting_as(Actor(ActorKind.PERSON, "Claire (staff)", UUID(int=7))):
            notification = await notify(
                session,
                audience=audience,
                title=title or {"fr": "Travaux rue de la Station", "nl": "Werken in de Stationsstraat"},
                body=body or {"fr": "Du lundi au vendredi.", "nl": "Van maandag tot vrijdag."},
                **options,
            )
    if run:
        await run_jobs(harness.runtime)
    return notification


async def deliveries(
    harness: Harness, tenant: Tenant, notification: Notification | None = None
) -> list[Delivery]:
    async with harness.transaction(tenant) as session:
        query = select(Delivery).order_by(Delivery.account_id, Delivery.channel)
        if notification is not None:
            query = query.where(Delivery.notification_id == notification.id)
        return list(await session.scalars(query))


def reached(rows: list[Delivery], channel: Channel = Channel.INBOX) -> set[UUID]:
    return {row.account_id for row in rows if row.channel is channel}


def by_person(rows: list[Delivery], channel: Channel) -> dict[UUID, DeliveryStatus]:
    return {row.account_id: row.status for row in rows if row.channel is channel}


async def set_choice(harness: Harness, tenant: Tenant, person: Person, module: str, choice: str) -> None:
    async with harness.transaction(tenant) as session:
        await service.set_preferences(session, person.id, {module: choice}, modules=[module])


async def disable(harness: Harness, tenant: Tenant, person: Person) -> None:
    async with harness.transaction(tenant) as session:
        await session.execute(update(Account).where(Account.id == person.id).values(disabled=True))


# --- Audiences --------------------------------------------------------------------------------


async def test_a_person_audience_reaches_exactly_that_person(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    an = await harness.citizen(hannut, email="an@example.be", language="nl")
    others = [await harness.citizen(hannut, email=f"other{n}@example.be") for n in range(2)]
    notification = await send(harness, hannut, Audience.person(an.id))
    rows = await deliveries(harness, hannut)
    assert reached(rows) == reached(rows, Channel.EMAIL) == {an.id}
    assert [received.recipients for received in smtp_mail.messages] == [["an@example.be"]]
    assert not any(smtp_mail.to(other.account.email or "") for other in others)
    async with harness.transaction(hannut) as session:
        stored = await session.scalar(select(Notification).where(Notification.id == notification.id))
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "notification.send"))
    assert stored is not None and stored.recipients == 1 and stored.fanned_out_at is not None
    assert stored.created_by == UUID(int=7)
    assert audit is not None and audit.object_id == str(notification.id)


async def test_the_commune_audience_reaches_its_verified_residents_and_no_one_else(
    harness: Harness, hannut: Tenant
) -> None:
    residents = [await harness.citizen(hannut, resident=True) for _ in range(3)]
    visitor = await harness.citizen(hannut, resident=False)
    moved_away = await harness.citizen(hannut, resident=True)
    await disable(harness, hannut, moved_away)
    staff = await harness.staff(hannut, roles=["admin"])
    await send(harness, hannut, Audience.commune())
    assert reached(await deliveries(harness, hannut)) == {person.id for person in residents}
    assert {visitor.id, moved_away.id, staff.id}.isdisjoint(reached(await deliveries(harness, hannut)))


async def test_a_role_audience_reaches_the_staff_holding_it_and_the_admins(
    harness: Harness, hannut: Tenant
) -> None:
    editor = await harness.staff(hannut, roles=["news.editor"])
    admin = await harness.staff(hannut, roles=["admin"])
    await harness.staff(hannut, roles=["works.manager"])
    retired = await harness.staff(hannut, roles=["news.editor"])
    await disable(harness, hannut, retired)
    await harness.citizen(hannut)
    await send(harness, hannut, Audience.role("news.editor"), kind="moderation")
    assert reached(await deliveries(harness, hannut)) == {editor.id, admin.id}


@needs_territory
async def test_a_neighbourhood_reaches_exactly_its_residents_by_their_channel_and_language(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    """The issue's acceptance test, with a notification from a module switched on."""
    from perron.territory import actions as territory

    async with harness.transaction(hannut) as session:
        place = await territory.create_street(
            session, hannut.id, names={"fr": "Grand-Place"}, postcode="4280"
        )
        station = await territory.create_street(
            session, hannut.id, names={"fr": "Rue de la Station", "nl": "Stationsstraat"}, postcode="4280"
        )
        far = await territory.create_street(
            session, hannut.id, names={"fr": "Rue de Crehen"}, postcode="4280"
        )
        centre = await territory.create_neighbourhood(
            session, hannut.id, names={"fr": "Centre"}, street_ids=[place.id, station.id]
        )
        await territory.create_neighbourhood(session, hannut.id, names={"fr": "Crehen"}, street_ids=[far.id])
        await actions.set_module_enabled(session, hannut.id, "works", True)
    address = {"postcode": "4280", "house_number": "1"}
    dutch = await harness.citizen(
        hannut, email="an@example.be", language="nl", street="Stationsstraat", **address
    )
    french = await harness.citizen(
        hannut, email="luc@example.be", language="fr", street="Grand Place", **address
    )
    quiet = await harness.citizen(hannut, email="eva@example.be", street="grand-place", **address)
    await set_choice(harness, hannut, quiet, "works", "off")
    unverified = await harness.citizen(
        hannut, resident=False, email="x@example.be", street="Grand-Place", **address
    )
    elsewhere = await harness.citizen(hannut, email="y@example.be", street="Rue de Crehen", **address)

    notification = await send(harness, hannut, Audience.neighbourhoods([centre.id]), module="works")
    rows = await deliveries(harness, hannut, notification)
    assert reached(rows) == {dutch.id, french.id, quiet.id}
    assert reached(rows, Channel.EMAIL) == {dutch.id, french.id}  # Eva chose the inbox only
    assert {unverified.id, elsewhere.id}.isdisjoint(reached(rows))
    [to_an] = smtp_mail.to("an@example.be")
    [to_luc] = smtp_mail.to("luc@example.be")
    assert len(smtp_mail.messages) == 2
    assert (
        to_an.message["Subject"] == "Werken in de Stationsstraat"
        and to_an.message["Content-Language"] == "nl"
    )
    assert "Van maandag tot vrijdag." in to_an.text and "Kies welke e-mails u ontvangt" in to_an.text
    assert to_luc.message["Subject"] == "Travaux rue de la Station" and "Du lundi au vendredi." in to_luc.text

    by_street = await send(harness, hannut, Audience.streets([far.id]), module="works")
    assert reached(await deliveries(harness, hannut, by_street)) == {elsewhere.id}


# --- Preferences ------------------------------------------------------------------------------


async def test_each_person_is_told_by_the_channel_they_chose(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    default = await harness.citizen(hannut, email="default@example.be")
    immediate = await harness.citizen(hannut, email="immediate@example.be")
    daily = await harness.citizen(hannut, email="daily@example.be")
    off = await harness.citizen(hannut, email="off@example.be")
    no_address = await harness.citizen(hannut)
    await set_choice(harness, hannut, immediate, "core", "immediate")
    await set_choice(harness, hannut, daily, "core", "daily")
    await set_choice(harness, hannut, off, "core", "off")
    everyone = {default.id, immediate.id, daily.id, off.id, no_address.id}

    notification = await send(harness, hannut, Audience.commune())
    rows = await deliveries(harness, hannut, notification)
    assert by_person(rows, Channel.INBOX) == dict.fromkeys(everyone, DeliveryStatus.SENT)
    assert by_person(rows, Channel.EMAIL) == {
        default.id: DeliveryStatus.SENT,  # announcements are e-mailed at once by default
        immediate.id: DeliveryStatus.SENT,
        daily.id: DeliveryStatus.DIGEST_PENDING,
    }
    assert sorted(address for received in smtp_mail.messages for address in received.recipients) == [
        "default@example.be",
        "immediate@example.be",
    ]
    emailed = [row for row in rows if row.channel is Channel.EMAIL and row.status is DeliveryStatus.SENT]
    assert all(row.email_id is not None and row.sent_at is not None for row in emailed)


async def test_other_kinds_go_to_the_daily_summary_unless_chosen_otherwise(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    default = await harness.citizen(hannut, email="default@example.be")
    eager = await harness.citizen(hannut, email="eager@example.be")
    await set_choice(harness, hannut, eager, "core", "immediate")
    notification = await send(harness, hannut, Audience.commune(), kind="reminder")
    assert by_person(await deliveries(harness, hannut, notification), Channel.EMAIL) == {
        default.id: DeliveryStatus.DIGEST_PENDING,
        eager.id: DeliveryStatus.SENT,
    }
    assert [received.recipients for received in smtp_mail.messages] == [["eager@example.be"]]


async def test_a_failed_email_is_recorded_on_the_delivery_and_the_inbox_still_has_it(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    refused = await harness.citizen(hannut, email="nobody@example.be")
    notification = await send(harness, hannut, Audience.person(refused.id))
    rows = await deliveries(harness, hannut, notification)
    assert by_person(rows, Channel.INBOX) == {refused.id: DeliveryStatus.SENT}
    [emailed] = [row for row in rows if row.channel is Channel.EMAIL]
    assert emailed.status is DeliveryStatus.FAILED and emailed.error and "550" in emailed.error


# --- Daily summaries ----------------------------------------------------------------------------


def run_cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``perron ...`` in its own process, as cron runs it."""
    return subprocess.run(
        [sys.executable, "-m", "perron", *args],
        capture_output=True,
        text=True,
        env={**settings_env(settings), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        timeout=120,
    )


async def test_the_daily_summary_groups_what_waits_into_one_email_once(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer, settings: Any
) -> None:
    daily = await harness.citizen(hannut, email="daily@example.be", language="nl")
    changed_mind = await harness.citizen(hannut, email="later@example.be")
    reader = await harness.citizen(hannut, email="reader@example.be")
    for person in (daily, changed_mind, reader):
        await set_choice(harness, hannut, person, "core", "daily")
    first = await send(
        harness, hannut, Audience.commune(), title={"fr": "Collecte des sapins", "nl": "Kerstbomen"}
    )
    second = await send(harness, hannut, Audience.commune(), title={"fr": "Fermeture <b>du</b> parc"})
    assert smtp_mail.messages == []  # everything waits for the summary
    await set_choice(harness, hannut, changed_mind, "core", "off")
    client = harness.client(hannut, person=reader)
    for notification in (first, second):  # read in the inbox before the summary went out
        inbox_row = next(
            row
            for row in await deliveries(harness, hannut, notification)
            if row.account_id == reader.id and row.channel is Channel.INBOX
        )
        read = await harness.post_form(client, "/inbox", f"/inbox/{inbox_row.id}/read", {})
        assert read.status_code == 303

    result = await asyncio.to_thread(
        run_cli, settings, "notifications", "send-digests", "--commune", "hannut"
    )
    assert result.returncode == 0, result.stderr
    assert "Queued the daily summaries of 1 commune(s) (hannut)" in result.stdout
    await run_jobs(harness.runtime)

    [summary] = smtp_mail.messages
    assert summary.recipients == ["daily@example.be"]
    assert summary.message["Subject"] == "Uw overzicht van Hannuit"
    assert summary.text.index("Kerstbomen") < summary.text.index("Fermeture <b>du</b> parc")  # oldest first
    assert "Fermeture &lt;b&gt;du&lt;/b&gt; parc" in summary.html
    assert 'lang="fr"' in summary.html  # the French-only title says it is French
    rows = [row for n in (first, second) for row in await deliveries(harness, hannut, n)]
    emails = [row for row in rows if row.channel is Channel.EMAIL]
    assert {row.status for row in emails if row.account_id == daily.id} == {DeliveryStatus.SENT}
    assert len({row.email_id for row in emails if row.account_id == daily.id}) == 1
    assert {row.status for row in emails if row.account_id == changed_mind.id} == {DeliveryStatus.SKIPPED}
    assert {row.status for row in emails if row.account_id == reader.id} == {DeliveryStatus.READ}

    again = await asyncio.to_thread(run_cli, settings, "notifications", "send-digests")
    assert again.returncode == 0, again.stderr
    await run_jobs(harness.runtime)
    assert len(smtp_mail.messages) == 1  # nothing waits any more: nothing is sent twice


async def test_send_digests_refuses_an_unknown_or_inactive_commune(
    harness: Harness, hannut: Tenant, settings: Any
) -> None:
    await harness.commune("dormant", status=actions.CommuneStatus.SUSPENDED)
    unknown = await asyncio.to_thread(
        run_cli, settings, "notifications", "send-digests", "--commune", "nowhere"
    )
    assert unknown.returncode == 1 and "no commune has the slug 'nowhere'" in unknown.stderr
    dormant = await asyncio.to_thread(
        run_cli, settings, "notifications", "send-digests", "--commune", "dormant"
    )
    assert dormant.returncode == 1 and "dormant is suspended" in dormant.stderr
    with platform_scope("test: look at the outbox"):
        async with harness.database.session() as session:
            assert await session.scalar(select(func.count(OutboxMessage.id))) == 0


# --- The fan-out --------------------------------------------------------------------------------


async def test_running_the_fan_out_again_delivers_nothing_twice(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    people = [await harness.citizen(hannut, email=f"p{n}@example.be") for n in range(3)]
    notification = await send(harness, hannut, Audience.commune())
    before = await deliveries(harness, hannut, notification)
    assert len(before) == 6 and len(smtp_mail.messages) == 3
    async with harness.transaction(hannut) as session:  # the broker delivers the job again
        enqueue(session, FAN_OUT_JOB, notification_id=str(notification.id))
        enqueue(session, FAN_OUT_JOB, notification_id=str(notification.id), after=str(people[0].id))
    await run_jobs(harness.runtime)
    after = await deliveries(harness, hannut, notification)
    assert [(row.id, row.status) for row in after] == [(row.id, row.status) for row in before]
    assert len(smtp_mail.messages) == 3
    async with harness.transaction(hannut) as session:
        assert await session.scalar(select(func.count(OutgoingEmail.id))) == 3


async def test_a_large_audience_is_reached_in_batches(
    harness: Harness, hannut: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "FAN_OUT_BATCH", 2)
    people = [await harness.citizen(hannut) for _ in range(5)]
    notification = await send(harness, hannut, Audience.commune())
    assert reached(await deliveries(harness, hannut, notification)) == {person.id for person in people}
    async with harness.transaction(hannut) as session:
        stored = await session.scalar(select(Notification).where(Notification.id == notification.id))
    assert stored is not None and stored.recipients == 5 and stored.fanned_out_at is not None


async def test_a_rolled_back_change_notifies_no_one(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    await harness.citizen(hannut, email="an@example.be")
    with pytest.raises(RuntimeError):
        async with harness.transaction(hannut) as session:
            await notify(
                session, module="core", audience=Audience.commune(), title={"fr": "x"}, body={"fr": "y"}
            )
            raise RuntimeError("the change failed")
    await run_jobs(harness.runtime)
    assert await deliveries(harness, hannut) == [] and smtp_mail.messages == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"module": "Not a module"}, "module"),
        ({"module": "works"}, "module"),  # installed or not, it is not switched on here
        ({"kind": "Announcement!"}, "kind"),
        ({"title": {}}, "title"),
        ({"title": {"fr": "x" * 201}}, "title.fr"),
        ({"title": {"xx": "Bonjour"}}, "title"),
        ({"body": {"fr": "a\x00b"}}, "body.fr"),
        ({"link": "javascript:alert(1)"}, "link"),
        ({"link": "//evil.example/phish"}, "link"),
        ({"audience": "everyone"}, "audience"),
        ({"audience": Audience.person(UUID(int=1))}, "audience"),
    ],
)
async def test_a_bad_notification_is_refused_and_nothing_is_recorded(
    harness: Harness, hannut: Tenant, options: dict[str, Any], field: str
) -> None:
    values: dict[str, Any] = {
        "module": "core",
        "audience": Audience.commune(),
        "title": {"fr": "Titre"},
        "body": {"fr": "Texte"},
    } | options
    with pytest.raises(Invalid) as refused:
        async with harness.transaction(hannut) as session:
            await notify(session, **values)
    assert refused.value.field.startswith(field), refused.value
    async with harness.transaction(hannut) as session:
        assert await session.scalar(select(func.count(Notification.id))) == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: Audience.neighbourhoods([]),
        lambda: Audience.streets(["not-an-id"]),
        lambda: Audience.role(""),
        lambda: Audience.role("x" * 64),
        lambda: Audience.neighbourhoods([UUID(int=n) for n in range(1001)]),
    ],
)
def test_a_malformed_audience_is_refused(build: Any) -> None:
    with pytest.raises(Invalid) as refused:
        build()
    assert refused.value.field == "audience"


async def test_a_deleted_account_takes_its_deliveries_choices_and_emails_with_it(
    harness: Harness, hannut: Tenant, smtp_mail: SMTPServer
) -> None:
    leaving = await harness.citizen(hannut, email="leaving@example.be")
    staying = await harness.citizen(hannut, email="staying@example.be")
    await set_choice(harness, hannut, leaving, "core", "immediate")
    await send(harness, hannut, Audience.commune())
    async with harness.transaction(hannut) as session:
        account = await session.scalar(select(Account).where(Account.id == leaving.id))
        assert account is not None
        await identity.delete_account(session, account)
    await harness.settle()
    async with harness.transaction(hannut) as session:
        assert set(await session.scalars(select(Delivery.account_id))) == {staying.id}
        assert list(await session.scalars(select(Preference))) == []
        assert set(await session.scalars(select(OutgoingEmail.to_address))) == {"staying@example.be"}


# --- The inbox ----------------------------------------------------------------------------------


async def test_the_inbox_shows_only_my_notifications_newest_first_in_my_language(
    harness: Harness, hannut: Tenant
) -> None:
    me = await harness.citizen(hannut, language="de")  # Hannut offers French and Dutch
    other = await harness.citizen(hannut)
    await send(harness, hannut, Audience.person(me.id), title={"nl": "Eerste", "fr": "Premier"})
    await send(harness, hannut, Audience.person(other.id), title={"fr": "Pour quelqu'un d'autre"})
    await send(
        harness, hannut, Audience.person(me.id), title={"nl": "Alleen in het Nederlands"}, link="/news/7"
    )
    page = await harness.client(hannut, person=me).get("/inbox", params={"lang": "fr"})
    assert page.status_code == 200
    html = page.text
    assert "Pour quelqu&#39;un d&#39;autre" not in html and "autre" not in html
    assert html.index("Alleen in het Nederlands") < html.index("Premier")  # newest first
    assert "Eerste" not in html  # French page: the French title, not the Dutch one
    assert '<span lang="nl">Alleen in het Nederlands</span>' in html  # the fallback says its language
    assert html.count("inbox__new") == 2 and "Non lues : 2" in html
    assert 'href="/news/7"' in html


async def test_the_inbox_is_paged_newest_first_without_gaps_or_repeats(
    harness: Harness, hannut: Tenant
) -> None:
    me = await harness.citizen(hannut)
    for number in range(service.INBOX_PAGE + 3):
        await send(harness, hannut, Audience.person(me.id), title={"fr": f"Message {number:02d}"}, run=False)
    await run_jobs(harness.runtime)
    client = harness.client(hannut, person=me)
    first = (await client.get("/inbox")).text
    titles = re.findall(r"<span>Message (\d\d)</span>", first)
    assert titles == [f"{n:02d}" for n in range(service.INBOX_PAGE + 2, 2, -1)]
    older = re.search(r'href="/inbox\?before=([0-9a-f-]+)"', first)
    assert older is not None
    second = (await client.get("/inbox", params={"before": older.group(1)})).text
    assert re.findall(r"<span>Message (\d\d)</span>", second) == ["02", "01", "00"]
    assert "/inbox?before=" not in second and 'href="/inbox"' in second
    refused = await client.get("/inbox", params={"before": "garbage"})
    assert refused.status_code == 400


async def test_marking_as_read_is_for_my_own_notifications(harness: Harness, hannut: Tenant) -> None:
    me = await harness.citizen(hannut)
    other = await harness.citizen(hannut)
    await send(harness, hannut, Audience.commune())
    rows = await deliveries(harness, hannut)
    mine = next(row for row in rows if row.account_id == me.id and row.channel is Channel.INBOX)
    theirs = next(row for row in rows if row.account_id == other.id and row.channel is Channel.INBOX)
    client = harness.client(hannut, person=me)

    forged = await client.post(f"/inbox/{mine.id}/read", data={})  # no CSRF token
    assert forged.status_code == 403
    stolen = await harness.post_form(client, "/inbox", f"/inbox/{theirs.id}/read", {})
    assert stolen.status_code == 404
    done = await harness.post_form(client, "/inbox", f"/inbox/{mine.id}/read", {})
    assert done.status_code == 303 and done.headers["location"] == f"/inbox#n-{mine.id}"
    again = await harness.post_form(client, "/inbox", f"/inbox/{mine.id}/read", {})
    assert again.status_code == 303

    statuses = {row.id: row.status for row in await deliveries(harness, hannut)}
    assert statuses[mine.id] is DeliveryStatus.READ and statuses[theirs.id] is DeliveryStatus.SENT
    page = (await client.get("/inbox")).text
    assert "inbox__new" not in page and "Vous avez tout lu." in page


async def test_the_inbox_and_preferences_need_a_login(harness: Harness, hannut: Tenant) -> None:
    anonymous = harness.client(hannut)
    for path in ("/inbox", "/account/notifications"):
        response = await anonymous.get(path)
        assert response.status_code == 401, path


# --- The preferences form -----------------------------------------------------------------------


async def test_choices_are_saved_from_a_plain_form(harness: Harness, hannut: Tenant) -> None:
    me = await harness.citizen(hannut, email="me@example.be")
    client = harness.client(hannut, person=me)
    form = (await client.get("/account/notifications")).text
    assert "<legend>Messages de la commune</legend>" in form
    assert 'name="email-core" value="default" checked' in form
    saved = await harness.post_form(
        client, "/account/notifications", "/account/notifications", {"email-core": "daily"}
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/account/notifications?saved=1"
    shown = (await client.get("/account/notifications?saved=1")).text
    assert "Vos choix sont enregistrés." in shown and 'value="daily" checked' in shown
    async with harness.transaction(hannut) as session:
        assert await service.preferences_of(session, me.id) == {"core": service.EmailFrequency.DAILY}
        assert (
            await session.scalar(
                select(func.count(AuditEntry.id)).where(AuditEntry.action == "notification.preferences")
            )
            == 1
        )
    back = await harness.post_form(
        client, "/account/notifications", "/account/notifications", {"email-core": "default"}
    )
    assert back.status_code == 303
    async with harness.transaction(hannut) as session:
        assert await service.preferences_of(session, me.id) == {}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email-core": "weekly"}, "email-core", "Choisissez l&#39;une des options proposées."),
        (
            {"email-core": "off", "email-shop": "off"},
            "email-shop",
            "Ce formulaire ne contient pas cette question",
        ),
        ({"email-core": "off", "mood": "happy"}, "mood", "Ce formulaire ne contient pas cette question"),
    ],
)
async def test_a_wrong_choice_is_explained_and_nothing_is_saved(
    harness: Harness, hannut: Tenant, data: dict[str, str], field: str, message: str
) -> None:
    me = await harness.citizen(hannut)
    client = harness.client(hannut, person=me)
    refused = await harness.post_form(client, "/account/notifications", "/account/notifications", data)
    assert refused.status_code == 400
    assert message in refused.text and f'href="#field-{field}"' in refused.text
    async with harness.transaction(hannut) as session:
        assert await service.preferences_of(session, me.id) == {}
    assert "Nous n&#39;avons pas d&#39;adresse e-mail pour vous" in refused.text


async def test_the_form_lists_the_modules_that_notified_me(harness: Harness, hannut: Tenant) -> None:
    me = await harness.citizen(hannut)
    async with harness.transaction(hannut) as session:
        await actions.set_module_enabled(session, hannut.id, "works", True)
    await send(harness, hannut, Audience.person(me.id), module="works", kind="update")
    client = harness.client(hannut, person=me)
    form = (await client.get("/account/notifications")).text
    assert 'name="email-works"' in form
    saved = await harness.post_form(
        client, "/account/notifications", "/account/notifications", {"email-works": "off"}
    )
    assert saved.status_code == 303
    async with harness.transaction(hannut) as session:
        assert await service.preferences_of(session, me.id) == {"works": service.EmailFrequency.OFF}


def test_the_default_choice_depends_on_the_kind() -> None:
    assert service.default_frequency("announcement") is service.EmailFrequency.IMMEDIATE
    assert service.default_frequency("reminder") is service.EmailFrequency.DAILY
