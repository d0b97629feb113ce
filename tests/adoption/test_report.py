"""The adoption figures of a constructed history: ISO weeks across a year boundary in
Brussels time, distinct people per week and per period, new accounts per week, totals, and
two communes that never see each other's activity."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from perron.adoption import Comparison, adoption_overview, adoption_report
from perron.adoption.models import SITE
from perron.db.scope import CrossTenantAccess, platform_scope
from perron.errors import Invalid
from perron.identity.models import Account
from perron.testing.harness import Harness, Person, Tenant
from tests.adoption.conftest import seed_activity, set_created_at

D = dt.date
UTC = dt.UTC
TODAY = D(2027, 1, 6)  # a Wednesday; its ISO week (2027-W01) began on Monday 4 January
LONG_AGO = dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


async def citizen(
    harness: Harness, tenant: Tenant, *, created: dt.datetime = LONG_AGO, **options: object
) -> Person:
    person = await harness.citizen(tenant, **options)  # type: ignore[arg-type]
    await set_created_at(harness, tenant, person, created)
    return person


async def test_the_report_counts_a_constructed_history_across_the_new_year(
    harness: Harness, hannut: Tenant
) -> None:
    a, b, d, e, f = [await citizen(harness, hannut) for _ in range(5)]
    c = await citizen(harness, hannut, resident=False)
    await seed_activity(
        harness,
        hannut,
        a,
        [
            (SITE, D(2026, 12, 15)),
            (SITE, D(2026, 12, 16)),  # the same week again: still one person
            (SITE, D(2026, 12, 29)),
            (SITE, D(2027, 1, 3)),  # a Sunday: ISO week 2026-W53, which began on 28 December
            ("news", D(2026, 12, 29)),
            ("forum", D(2027, 1, 4)),
            (SITE, D(2027, 1, 7)),  # tomorrow: not in any figure
        ],
    )
    await seed_activity(
        harness, hannut, b, [(SITE, D(2026, 12, 28)), (SITE, D(2027, 1, 5)), ("news", D(2027, 1, 5))]
    )
    await seed_activity(harness, hannut, c, [(SITE, D(2026, 12, 21))])
    await seed_activity(harness, hannut, d, [(SITE, D(2026, 12, 13))])  # the previous period's last day
    await seed_activity(harness, hannut, e, [(SITE, D(2026, 11, 20))])  # the previous period's first day
    await seed_activity(harness, hannut, f, [(SITE, D(2026, 11, 19))])  # before both periods
    # New accounts, created around Brussels midnights (UTC+1 in winter).
    for moment in [
        dt.datetime(2026, 12, 13, 23, 30, tzinfo=UTC),  # Monday 14 December, 00:30 in Brussels
        dt.datetime(2026, 12, 20, 22, 30, tzinfo=UTC),  # Sunday 20 December, 23:30
        dt.datetime(2026, 12, 27, 23, 30, tzinfo=UTC),  # Monday 28 December, 00:30
        dt.datetime(2027, 1, 3, 23, 30, tzinfo=UTC),  # Monday 4 January, 00:30
        dt.datetime(2027, 1, 6, 22, 59, tzinfo=UTC),  # today, 23:59
        dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC),  # in the previous period
        dt.datetime(2027, 1, 6, 23, 30, tzinfo=UTC),  # tomorrow, 00:30: not counted yet
    ]:
        await citizen(harness, hannut, created=moment, resident=False)
    closed = await citizen(harness, hannut, created=dt.datetime(2026, 12, 30, 9, 0, tzinfo=UTC))
    async with harness.transaction(hannut) as session:
        await session.execute(update(Account).where(Account.id == closed.id).values(disabled=True))
    await harness.staff(hannut)  # staff are neither accounts of citizens nor new citizens

    async with harness.transaction(hannut) as session:
        report = await adoption_report(session, hannut.id, weeks=4, today=TODAY, modules=["news", "forum"])

    assert report.weeks == (D(2026, 12, 14), D(2026, 12, 21), D(2026, 12, 28), D(2027, 1, 4))
    assert report.active_citizens == (1, 1, 2, 1)
    usage = {module.module: module for module in report.modules}
    assert usage["news"].weekly == (0, 0, 1, 1)
    assert usage["forum"].weekly == (0, 0, 0, 1)
    assert report.new_accounts == (2, 0, 2, 2)  # the closed account was created on 30 December
    # The period shown (14 December to today, 24 days) against the 24 days before it.
    assert report.previous_start == D(2026, 11, 20)
    assert report.period_active == Comparison(3, 2)
    assert report.period_active.change == pytest.approx(0.5)
    assert usage["news"].period == Comparison(2, 0) and usage["news"].period.change is None
    assert usage["forum"].period == Comparison(1, 0)
    assert report.period_new_accounts == Comparison(6, 1)
    assert report.accounts == 6 + 7  # open citizen accounts: not the closed one, not staff
    assert report.residents == 5
    assert report.measured_since == D(2026, 11, 19)


async def test_no_comparison_is_made_up_before_measuring_began(harness: Harness, hannut: Tenant) -> None:
    person = await citizen(harness, hannut)
    await seed_activity(harness, hannut, person, [(SITE, D(2026, 12, 30)), ("news", D(2027, 1, 5))])
    async with harness.transaction(hannut) as session:
        report = await adoption_report(session, hannut.id, weeks=12, today=TODAY)
    assert len(report.weeks) == 12 and report.weeks[-1] == D(2027, 1, 4)
    assert [usage.module for usage in report.modules] == ["news"]  # the enabled module with pages
    assert report.period_active == Comparison(1, None)
    assert report.modules[0].period == Comparison(1, None)
    assert report.period_new_accounts.previous is not None  # accounts were counted all along


@pytest.mark.parametrize("weeks", [0, 53, -1, True, "26"])
async def test_a_period_outside_one_to_52_weeks_is_refused(
    harness: Harness, hannut: Tenant, weeks: object
) -> None:
    async with harness.transaction(hannut) as session:
        with pytest.raises(Invalid) as refused:
            await adoption_report(session, hannut.id, weeks=weeks, today=TODAY)  # type: ignore[arg-type]
    assert refused.value.field == "weeks"


async def test_each_commune_sees_only_its_own_activity(
    harness: Harness, hannut: Tenant, eupen: Tenant
) -> None:
    hannut_people = [await citizen(harness, hannut) for _ in range(3)]
    for person in hannut_people:
        await seed_activity(harness, hannut, person, [(SITE, D(2027, 1, 5)), ("news", D(2027, 1, 5))])
    await seed_activity(harness, hannut, hannut_people[0], [(SITE, D(2026, 11, 20))])  # 31 to 60 days ago
    eupen_person = await citizen(harness, eupen, resident=False)
    await seed_activity(harness, eupen, eupen_person, [(SITE, D(2027, 1, 4))])
    quiet = await harness.commune("quiet")

    async with harness.transaction(eupen) as session:
        report = await adoption_report(session, eupen.id, weeks=4, today=TODAY)
        assert report.active_citizens == (0, 0, 0, 1)
        assert report.modules[0].weekly == (0, 0, 0, 0)
        assert (report.accounts, report.residents) == (1, 0)
        with pytest.raises(CrossTenantAccess):
            await adoption_report(session, hannut.id, weeks=4, today=TODAY)
        with pytest.raises(CrossTenantAccess):
            await adoption_overview(session, [hannut.id], today=TODAY)
        assert (await adoption_overview(session, [eupen.id], today=TODAY))[
            eupen.id
        ].active_citizens.current == 1

    with platform_scope("test: the console's overview"):
        async with harness.database.session() as session:
            overview = await adoption_overview(session, [hannut.id, eupen.id, quiet.id], today=TODAY)
            hannut_report = await adoption_report(session, hannut.id, weeks=4, today=TODAY)
    assert overview[hannut.id].active_citizens == Comparison(3, 1)
    assert (overview[hannut.id].accounts, overview[hannut.id].residents) == (3, 3)
    assert overview[eupen.id].active_citizens == Comparison(1, 0)
    assert (overview[eupen.id].accounts, overview[eupen.id].residents) == (1, 0)
    assert overview[quiet.id].active_citizens == Comparison(0, 0)
    assert hannut_report.active_citizens == (0, 0, 0, 3)  # read from the console: still one commune
