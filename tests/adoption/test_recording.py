"""Activity days are recorded from the request path: once per person, module and day, only
for citizens, never for files, errors or anonymous visitors, and never at a page's expense."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from perron.adoption import recording
from perron.adoption.models import RETENTION_DAYS, SITE
from perron.adoption.recording import ActivityRecorder, Visit, brussels_today, prune_activity
from perron.identity import actions as identity
from perron.identity.models import Account
from perron.testing.harness import Harness, Tenant
from tests.adoption.conftest import activity_rows, seed_activity
from tests.integration.test_notifications import run_cli


async def test_many_requests_by_a_citizen_write_one_row_per_module_and_day(
    harness: Harness, hannut: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[str, ...]] = []
    real_write = recording.write_activity

    async def counted(session, account_id, day, modules, *, tenant_id):  # type: ignore[no-untyped-def]
        writes.append(tuple(modules))
        await real_write(session, account_id, day, modules, tenant_id=tenant_id)

    monkeypatch.setattr(recording, "write_activity", counted)
    citizen = await harness.citizen(hannut)
    client = harness.client(hannut, person=citizen)
    for path in ["/", "/", "/account", "/news", "/news/", "/", "/news", "/privacy"]:
        response = await client.get(path)
        assert response.status_code == 200, path

    today = brussels_today()
    assert await activity_rows(harness, hannut) == [(citizen.id, SITE, today), (citizen.id, "news", today)]
    # The first page wrote the site's row, the first news page the module's; nothing after.
    assert writes == [(SITE,), ("news",)]


async def test_two_processes_recording_the_same_day_keep_one_row(harness: Harness, hannut: Tenant) -> None:
    citizen = await harness.citizen(hannut)
    visit = Visit(hannut.id, citizen.id, brussels_today(), (SITE, "news"))
    first, second = ActivityRecorder(harness.database), ActivityRecorder(harness.database)
    assert await asyncio.gather(first.record(visit), second.record(visit)) == [True, True]
    assert await first.record(visit)  # a memo forgotten (a restart) inserts nothing twice
    assert len(await activity_rows(harness, hannut)) == 2


async def test_anonymous_visitors_staff_files_and_errors_record_nothing(
    harness: Harness, hannut: Tenant
) -> None:
    anonymous = harness.client(hannut)
    for path in ["/", "/news", "/privacy"]:
        assert (await anonymous.get(path)).status_code == 200

    staff = await harness.staff(hannut)
    staff_client = harness.client(hannut, person=staff)
    for path in ["/", "/news", "/admin", "/admin/adoption"]:
        assert (await staff_client.get(path)).status_code == 200, path

    citizen = await harness.citizen(hannut)
    client = harness.client(hannut, person=citizen)
    for path in ["/static/perron/perron.css", "/branding.css", "/manifest.webmanifest", "/favicon.ico"]:
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/no-such-page")).status_code == 404
    assert (await client.get("/admin")).status_code == 403
    assert (await client.head("/")).status_code in (200, 405)
    assert await activity_rows(harness, hannut) == []

    await harness.disable(hannut, "news")
    assert (await client.get("/news")).status_code == 404  # a module switched off is not "used"
    assert await activity_rows(harness, hannut) == []

    assert (await client.get("/")).status_code == 200
    assert await activity_rows(harness, hannut) == [(citizen.id, SITE, brussels_today())]


async def test_a_failing_write_does_not_break_the_page_and_is_tried_again(
    harness: Harness, hannut: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = recording.write_activity

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database refused the write")

    monkeypatch.setattr(recording, "write_activity", broken)
    citizen = await harness.citizen(hannut)
    client = harness.client(hannut, person=citizen)
    response = await client.get("/news")
    assert response.status_code == 200
    assert "Hannut" in response.text
    assert await activity_rows(harness, hannut) == []

    monkeypatch.setattr(recording, "write_activity", real_write)
    assert (await client.get("/news")).status_code == 200
    assert {module for _, module, _ in await activity_rows(harness, hannut)} == {SITE, "news"}


async def test_the_request_deleting_the_account_records_nothing_after_it(
    harness: Harness, hannut: Tenant
) -> None:
    citizen = await harness.citizen(hannut)
    client = harness.client(hannut, person=citizen)
    token = await harness.form_token(client, "/account/delete")
    assert len(await activity_rows(harness, hannut)) == 1
    harness.runtime.activity.forget()  # as if the form were sent to another server process
    response = await client.post("/account/delete", data={"understood": "yes", "_csrf_token": token})
    assert response.status_code == 303
    await harness.settle()
    assert await activity_rows(harness, hannut) == []  # the row went with the account; none came back
    visit = Visit(hannut.id, citizen.id, brussels_today(), (SITE,))
    assert await harness.runtime.activity.record(visit) is False


async def test_deleting_the_account_deletes_its_activity_and_the_download_lists_it(
    harness: Harness, hannut: Tenant
) -> None:
    citizen = await harness.citizen(hannut)
    neighbour = await harness.citizen(hannut)
    client = harness.client(hannut, person=citizen)
    assert (await client.get("/news")).status_code == 200
    assert (await harness.client(hannut, person=neighbour).get("/")).status_code == 200

    download = (await client.get("/account/data.json")).json()
    today = brussels_today().isoformat()
    assert download["activity_days"] == [{"day": today, "module": "site"}, {"day": today, "module": "news"}]

    async with harness.transaction(hannut) as session:
        await identity.delete_account(session, await session.get_one(Account, (hannut.id, citizen.id)))
    await harness.settle()
    assert await activity_rows(harness, hannut) == [(neighbour.id, SITE, brussels_today())]


async def test_days_past_the_retention_are_pruned_by_the_first_visit_of_the_day(
    harness: Harness, hannut: Tenant
) -> None:
    citizen = await harness.citizen(hannut)
    today = brussels_today()
    kept_day = today - dt.timedelta(days=RETENTION_DAYS)
    await seed_activity(
        harness,
        hannut,
        citizen,
        [
            (SITE, kept_day - dt.timedelta(days=40)),
            ("news", kept_day - dt.timedelta(days=1)),
            (SITE, kept_day),
        ],
    )
    assert (await harness.client(hannut, person=citizen).get("/")).status_code == 200
    assert await activity_rows(harness, hannut) == [(citizen.id, SITE, kept_day), (citizen.id, SITE, today)]


async def test_prune_keeps_each_communes_recent_days(harness: Harness, hannut: Tenant, eupen: Tenant) -> None:
    today = dt.date(2027, 3, 1)
    old = today - dt.timedelta(days=RETENTION_DAYS + 1)
    for tenant in (hannut, eupen):
        person = await harness.citizen(tenant)
        await seed_activity(harness, tenant, person, [(SITE, old), (SITE, today)])
    async with harness.transaction(hannut) as session:
        assert await prune_activity(session, hannut.id, today=today) == 1
        assert await prune_activity(session, hannut.id, today=today) == 0
    assert [day for _, _, day in await activity_rows(harness, hannut)] == [today]
    assert [day for _, _, day in await activity_rows(harness, eupen)] == [old, today]


async def test_the_prune_command_prunes_every_commune(
    harness: Harness, hannut: Tenant, eupen: Tenant, settings: Any
) -> None:
    today = brussels_today()
    old = today - dt.timedelta(days=RETENTION_DAYS + 3)
    for tenant in (hannut, eupen):
        person = await harness.citizen(tenant)
        await seed_activity(harness, tenant, person, [(SITE, old), ("news", old), (SITE, today)])
    result = await asyncio.to_thread(run_cli, settings, "adoption", "prune")
    assert result.returncode == 0, result.stderr
    assert "Deleted 4 activity day(s) older than 396 days (eupen: 2, hannut: 2)." in result.stdout
    for tenant in (hannut, eupen):
        assert [day for _, _, day in await activity_rows(harness, tenant)] == [today]
    again = await asyncio.to_thread(run_cli, settings, "adoption", "prune", "--commune", "hannut")
    assert (
        again.returncode == 0
        and "Deleted 0 activity day(s) older than 396 days in 1 commune(s)." in again.stdout
    )
    unknown = await asyncio.to_thread(run_cli, settings, "adoption", "prune", "--commune", "nowhere")
    assert unknown.returncode == 1 and "no commune has the slug 'nowhere'" in unknown.stderr
