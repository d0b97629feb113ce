"""The charts: one bar per week, heights proportional to the values, the same numbers in
the table, the trend in words, Babel formatting in the page's language, no inline style."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from perron.adoption import weekly_chart
from perron.adoption.charts import PLOT_BOTTOM, PLOT_TOP, WeeklyChart, describe
from perron.adoption.models import week_of
from perron.i18n import using_language

WEEKS = tuple(week_of(dt.date(2026, 12, 14)) + dt.timedelta(weeks=index) for index in range(5))
_RECT = re.compile(r'<rect class="chart__bar" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/>')


def render(runtime: Any, chart: WeeklyChart, language: str = "fr") -> str:
    template = runtime.templates.environment(language).from_string(
        '{% from "perron/adoption/charts.html" import weekly_chart %}{{ weekly_chart(chart) }}'
    )
    return str(template.render(chart=chart))


def bars(html: str) -> list[tuple[float, float, float, float]]:
    return [tuple(float(value) for value in match) for match in _RECT.findall(html)]  # type: ignore[misc]


def table_values(html: str) -> list[str]:
    return re.findall(r"<tr><th scope=\"row\">[^<]*</th><td>([^<]*)</td></tr>", html)


def test_one_bar_per_week_with_heights_proportional_to_the_values(runtime: Any) -> None:
    values = (0, 3, 6, 12, 1234)
    chart = weekly_chart(
        "test-chart", "Active citizens per week", WEEKS, values, language="fr", value_heading="People"
    )
    html = render(runtime, chart)
    drawn = bars(html)
    assert len(drawn) == len(values)
    heights = [height for _, _, _, height in drawn]
    assert heights[0] == 0
    for value, height in zip(values[1:], heights[1:], strict=True):
        assert height / value == pytest.approx(heights[-1] / values[-1], rel=0.01)
    for _, y, _, height in drawn:  # every bar stands on the axis, inside the plot
        assert y + height == pytest.approx(PLOT_BOTTOM, abs=0.02) and y >= PLOT_TOP
    xs = [x for x, _, _, _ in drawn]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # oldest week on the left, none overlapping
    assert table_values(html) == ["0", "3", "6", "12", "1\u202f234"]  # fr_BE groups with a narrow space
    assert len(re.findall("<tr>", html)) == len(values) + 1  # the header, then a row per week


def test_the_svg_is_an_image_with_a_title_and_a_description_and_no_style(runtime: Any) -> None:
    chart = weekly_chart(
        "people", "Active citizens per week", WEEKS, (1, 2, 3, 4, 5), language="en", value_heading="People"
    )
    html = render(runtime, chart, "en")
    assert '<svg class="chart__svg" viewBox="0 0 320.0 180.0" width="100%" role="img"' in html
    assert 'aria-labelledby="people-title people-desc"' in html
    assert '<title id="people-title">Active citizens per week</title>' in html
    assert f'<desc id="people-desc">{chart.description}</desc>' in html
    assert "style" not in html.lower() and "<script" not in html
    assert '<caption id="people-caption">Active citizens per week</caption>' in html
    assert "<details" in html and "<summary>" in html
    assert 'fill="currentColor"' in html  # no colour given: the text's


def test_the_trend_is_said_in_words() -> None:
    with using_language("en"):
        said_in_english()


def said_in_english() -> None:
    rising = describe(WEEKS, (1, 1, 4, 5, 2))
    assert rising.startswith("Weeks from 14 Dec 2026 to 11 Jan 2027 (this week so far).")
    assert "Rising: 1 a week on average in the first half of the period, 4.5 in the second half." in rising
    assert "Highest: 5, in the week of 4 Jan 2027." in rising
    assert rising.endswith("This week so far: 2.")
    assert (
        "Falling: 6 a week on average in the first half of the period, 1.5 in the second half."
        in describe(WEEKS, (6, 6, 2, 1, 0))
    )
    assert "Steady: 3 a week" in describe(WEEKS, (3, 3, 3, 3, 9))
    assert describe(WEEKS, (0, 0, 0, 0, 0)).endswith("Zero in every week of this period.")


def test_dates_and_numbers_follow_the_language() -> None:
    values = (0, 1500, 0, 0, 7)
    german = weekly_chart("de-chart", "Titel", WEEKS, values, language="de", value_heading="Personen")
    english = weekly_chart("en-chart", "Title", WEEKS, values, language="en", value_heading="People")
    assert [tick.label for tick in german.x_ticks] == ["14.12.2026", "28.12.2026", "11.01.2027"]
    assert [tick.label for tick in english.x_ticks] == ["14 Dec 2026", "28 Dec 2026", "11 Jan 2027"]
    assert [tick.label for tick in german.y_ticks] == ["0", "500", "1.000", "1.500"]
    assert [tick.label for tick in english.y_ticks] == ["0", "500", "1,000", "1,500"]
    assert [row.value for row in german.rows][1] == "1.500"


def test_a_colour_must_be_a_hex_colour_and_ids_must_be_safe() -> None:
    chart = weekly_chart("ok", "T", WEEKS, (1,) * 5, language="fr", value_heading="P", colour="#0b5394")
    assert chart.colour == "#0b5394"
    with pytest.raises(ValueError, match="is not #rrggbb"):
        weekly_chart("ok", "T", WEEKS, (1,) * 5, language="fr", value_heading="P", colour="red;x")
    with pytest.raises(ValueError, match="lower-case letters"):
        weekly_chart('x" onload="', "T", WEEKS, (1,) * 5, language="fr", value_heading="P")
    with pytest.raises(ValueError, match="one value per week"):
        weekly_chart("ok", "T", WEEKS, (1, 2), language="fr", value_heading="P")
