"""``/admin/adoption``: for the commune's administrators only; the period is a plain GET form;
the charts and tables show the commune's own numbers in the page's language."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from perron.adoption.models import SITE, week_of
from perron.adoption.recording import brussels_today
from perron.i18n import format_date
from perron.testing.harness import Harness, Tenant
from tests.adoption.conftest import seed_activity
from tests.adoption.test_charts import bars, table_values


def section(html: str, chart_id: str) -> str:
    start = html.index(f'<section class="chart" aria-labelledby="{chart_id}-heading">')
    return html[start : html.index("</section>", start)]


async def test_only_the_communes_administrators_see_the_page(harness: Harness, hannut: Tenant) -> None:
    anonymous = await harness.client(hannut).get("/admin/adoption")
    assert anonymous.status_code == 401
    citizen = await harness.citizen(hannut)
    assert (await harness.client(hannut, person=citizen).get("/admin/adoption")).status_code == 403
    clerk = await harness.staff(hannut, roles=("staff",))
    clerk_client = harness.client(hannut, person=clerk)
    assert (await clerk_client.get("/admin/adoption")).status_code == 403
    assert 'href="/admin/adoption"' not in (await clerk_client.get("/admin")).text
    admin = await harness.staff(hannut)
    admin_client = harness.client(hannut, person=admin)
    assert (await admin_client.get("/admin/adoption")).status_code == 200
    assert 'href="/admin/adoption"' in (await admin_client.get("/admin")).text


async def test_the_page_draws_the_communes_weeks(harness: Harness, hannut: Tenant, eupen: Tenant) -> None:
    today = brussels_today()
    two_weeks_ago = today - dt.timedelta(weeks=2)
    people = [await harness.citizen(hannut) for _ in range(3)]
    for person in people:
        await seed_activity(harness, hannut, person, [(SITE, today), ("news", today)])
    await seed_activity(harness, hannut, people[0], [(SITE, two_weeks_ago)])
    stranger = await harness.citizen(eupen)  # another commune's people never show here
    await seed_activity(harness, eupen, stranger, [(SITE, two_weeks_ago), (SITE, today)])
    admin = await harness.staff(hannut)
    client = harness.client(hannut, person=admin)

    page = (await client.get("/admin/adoption")).text
    citizens = section(page, "adoption-citizens")
    drawn = bars(citizens)
    assert len(drawn) == 26
    heights = [height for _, _, _, height in drawn]
    assert heights[-1] == pytest.approx(3 * heights[-3], abs=0.03) and heights[-1] > 0
    assert [height for index, height in enumerate(heights) if index not in (23, 25)] == [0] * 24
    values = table_values(citizens)
    assert values[-3:] == ["1", "0", "3"] and values[:-3] == ["0"] * 23
    assert 'fill="#0b5394"' in citizens  # the commune's accent colour
    news = section(page, "adoption-module-news")
    assert table_values(news)[-1] == "3" and len(bars(news)) == 26
    first_week = week_of(today) - dt.timedelta(weeks=25)
    assert format_date(first_week, "medium", language="fr") in citizens
    assert '<option value="26" selected>' in page

    twelve = (await client.get("/admin/adoption?weeks=12")).text
    assert len(bars(section(twelve, "adoption-citizens"))) == 12
    assert '<option value="12" selected>' in twelve


@pytest.mark.parametrize("weeks", ["13", "abc", "-26", "52.0"])
async def test_a_period_not_offered_is_refused_in_words(harness: Harness, hannut: Tenant, weeks: str) -> None:
    client = harness.client(hannut, person=await harness.staff(hannut))
    response = await client.get(f"/admin/adoption?weeks={weeks}")
    assert response.status_code == 400
    assert 'class="error-summary"' in response.text and 'href="#field-weeks"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "<svg" not in response.text


async def test_the_page_speaks_the_communes_language(harness: Harness, eupen: Tenant) -> None:
    admin = await harness.staff(eupen, language="de")
    page = (await harness.client(eupen, person=admin).get("/admin/adoption?weeks=52")).text
    assert '<html lang="de"' in page
    first_week = week_of(brussels_today()) - dt.timedelta(weeks=51)
    assert format_date(first_week, "medium", language="de") in page
    assert re.search(r"\d{2}\.\d{2}\.\d{4}", page)
