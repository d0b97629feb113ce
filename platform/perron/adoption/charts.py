"""Weekly bar charts drawn on the server, as data a template turns into inline SVG.

No chart library: the pages' Content-Security-Policy forbids inline ``<style>`` and scripts,
which libraries such as pygal embed in their SVG. Here Python computes the geometry and the
words, and the macros of ``perron/adoption/charts.html`` write SVG with presentation
attributes only:

* ``role="img"`` with a ``<title>`` and a ``<desc>`` saying the trend in words, and the same
  numbers in a real ``<table>`` (in a ``<details>``) below the chart;
* a ``viewBox`` 320 units wide, so the chart scales to the page and stays readable at 320 px;
* bars in the commune's accent colour (checked for 4.5:1 on the page background when the
  branding was saved) or ``currentColor``, text in ``currentColor``;
* numbers and dates formatted with Babel in the page's language.

For the console: :func:`adoption_view` turns an :class:`~perron.adoption.report.AdoptionReport`
into an :class:`AdoptionView`; ``{{ adoption_dashboard(view) }}`` renders it, and
``{{ weekly_chart(chart) }}`` renders one :class:`WeeklyChart` (from :func:`weekly_chart`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perron.adoption.report import AdoptionReport, Comparison
from perron.i18n import format_date, format_number, format_percent, gettext, using_language

WIDTH = 320.0
HEIGHT = 180.0
PLOT_LEFT = 40.0
PLOT_RIGHT = 314.0
PLOT_TOP = 10.0
PLOT_BOTTOM = 150.0
LABEL_BASELINE = 170.0
BAR_SHARE = 0.7
"""Share of each week's slot the bar fills (the rest separates bars)."""

_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True, slots=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    value: int


@dataclass(frozen=True, slots=True)
class AxisTick:
    position: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class ChartRow:
    """One line of the chart's table: the week, and the value as written."""

    week: str
    value: str


@dataclass(frozen=True, slots=True)
class WeeklyChart:
    id: str
    """Unique on the page: the SVG's title and description are referenced by id."""
    title: str
    description: str
    """The trend in words (the SVG's ``<desc>``, also shown under the chart)."""
    value_heading: str
    bars: tuple[ChartBar, ...]
    y_ticks: tuple[AxisTick, ...]
    x_ticks: tuple[AxisTick, ...]
    rows: tuple[ChartRow, ...]
    colour: str
    width: float = WIDTH
    height: float = HEIGHT
    plot_left: float = PLOT_LEFT
    plot_right: float = PLOT_RIGHT
    plot_top: float = PLOT_TOP
    plot_bottom: float = PLOT_BOTTOM
    label_baseline: float = LABEL_BASELINE


def _step(largest: int) -> int:
    """A round gridline step (1, 2, 5, 10, 20, 50, ...) giving at most four steps to ``largest``."""
    magnitude = 1
    while True:
        for base in (1, 2, 5):
            if math.ceil(largest / (base * magnitude)) <= 4:
                return base * magnitude
        magnitude *= 10


def _number(value: float) -> str:
    return format_number(value) if float(value).is_integer() else format_number(value, 1)


def _week_label(monday: dt.date) -> str:
    return format_date(monday, "medium")


def describe(weeks: Sequence[dt.date], values: Sequence[int]) -> str:
    """The trend in words, for people who do not see the chart (and everyone else)."""
    if not weeks:
        return ""
    sentences = [
        gettext("Weeks from %(first)s to %(last)s (this week so far).")
        % {"first": _week_label(weeks[0]), "last": _week_label(weeks[-1])}
    ]
    if not any(values):
        sentences.append(gettext("Zero in every week of this period."))
        return " ".join(sentences)
    complete = list(values[:-1])
    if len(complete) >= 2:
        half = len(complete) // 2
        first = sum(complete[:half]) / half
        second = sum(complete[half:]) / (len(complete) - half)
        numbers = {"first": _number(round(first, 1)), "second": _number(round(second, 1))}
        if second > first * 1.1 and second - first >= 0.5:
            message = gettext(
                "Rising: %(first)s a week on average in the first half of the period, "
                "%(second)s in the second half."
            )
        elif second < first * 0.9 and first - second >= 0.5:
            message = gettext(
                "Falling: %(first)s a week on average in the first half of the period, "
                "%(second)s in the second half."
            )
        else:
            message = gettext(
                "Steady: %(first)s a week on average in the first half of the period, "
                "%(second)s in the second half."
            )
        sentences.append(message % numbers)
    highest = max(range(len(values)), key=lambda index: (values[index], index))
    sentences.append(
        gettext("Highest: %(value)s, in the week of %(week)s.")
        % {"value": _number(values[highest]), "week": _week_label(weeks[highest])}
    )
    sentences.append(gettext("This week so far: %(value)s.") % {"value": _number(values[-1])})
    return " ".join(sentences)


def weekly_chart(
    chart_id: str,
    title: str,
    weeks: Sequence[dt.date],
    values: Sequence[int],
    *,
    language: str,
    value_heading: str,
    colour: str | None = None,
) -> WeeklyChart:
    """A bar per week, heights proportional to the values (from zero).

    ``chart_id``: lower-case letters, digits and ``-``, unique on the page; ``colour``: a
    ``#rrggbb`` that passes 3:1 against the background behind the chart (the commune's
    ``accent_color`` does), or None for the text colour."""
    if not _ID.match(chart_id):
        raise ValueError(f"chart id {chart_id!r}: lower-case letters, digits and '-', starting with a letter")
    if len(weeks) != len(values) or not weeks:
        raise ValueError("a weekly chart needs one value per week, and at least one week")
    if colour is not None and not _HEX.match(colour):
        raise ValueError(f"colour {colour!r} is not #rrggbb")
    with using_language(language):
        largest = max(max(values), 1)
        step = _step(largest)
        top = math.ceil(largest / step) * step
        plot_height = PLOT_BOTTOM - PLOT_TOP
        slot = (PLOT_RIGHT - PLOT_LEFT) / len(values)
        bar_width = round(slot * BAR_SHARE, 2)
        bars = tuple(
            ChartBar(
                x=round(PLOT_LEFT + index * slot + (slot - bar_width) / 2, 2),
                y=round(PLOT_BOTTOM - value / top * plot_height, 2),
                width=bar_width,
                height=round(value / top * plot_height, 2),
                value=value,
            )
            for index, value in enumerate(values)
        )
        y_ticks = tuple(
            AxisTick(round(PLOT_BOTTOM - tick / top * plot_height, 2), format_number(tick), "end")
            for tick in range(0, top + 1, step)
        )
        labelled = sorted({0, len(weeks) // 2, len(weeks) - 1})
        anchors = {0: "start", len(weeks) - 1: "end"}
        x_ticks = tuple(
            AxisTick(
                round(
                    bars[index].x
                    if anchors.get(index) == "start"
                    else bars[index].x + bar_width
                    if anchors.get(index) == "end"
                    else bars[index].x + bar_width / 2,
                    2,
                ),
                _week_label(weeks[index]),
                anchors.get(index, "middle") if len(weeks) > 1 else "middle",
            )
            for index in labelled
        )
        rows = tuple(
            ChartRow(
                (
                    gettext("Week of %(date)s, so far")
                    if index == len(weeks) - 1
                    else gettext("Week of %(date)s")
                )
                % {"date": _week_label(monday)},
                format_number(value),
            )
            for index, (monday, value) in enumerate(zip(weeks, values, strict=True))
        )
        return WeeklyChart(
            id=chart_id,
            title=title,
            description=describe(weeks, values),
            value_heading=value_heading,
            bars=bars,
            y_ticks=y_ticks,
            x_ticks=x_ticks,
            rows=rows,
            colour=colour or "currentColor",
        )


@dataclass(frozen=True, slots=True)
class Figure:
    """A headline number with its comparison, as written on the page."""

    label: str
    value: str
    comparison: str


@dataclass(frozen=True, slots=True)
class AdoptionView:
    period: str
    measured_since: str
    figures: tuple[Figure, ...]
    charts: tuple[WeeklyChart, ...]


def compare(comparison: Comparison) -> str:
    """``12 in the previous period of the same length (+25 %).``"""
    if comparison.previous is None:
        return gettext("Nothing was measured yet in the previous period of the same length.")
    numbers = {"previous": format_number(comparison.previous)}
    change = comparison.change
    if change is None:
        return gettext("%(previous)s in the previous period of the same length.") % numbers
    sign = "+" if change > 0 else ""
    return gettext("%(previous)s in the previous period of the same length (%(change)s).") % (
        numbers | {"change": sign + format_percent(change)}
    )


def adoption_view(
    report: AdoptionReport,
    *,
    language: str,
    module_titles: Mapping[str, str] | None = None,
    colour: str | None = None,
    id_prefix: str = "adoption",
) -> AdoptionView:
    """Everything the dashboard shows for ``report``, in ``language``.

    ``module_titles`` names the modules (default: the module's name); ``colour`` as for
    :func:`weekly_chart`; ``id_prefix`` keeps ids unique when a page shows several reports."""
    titles = dict(module_titles or {})
    with using_language(language):
        figures = [
            Figure(
                gettext("Active citizens"),
                format_number(report.period_active.current),
                compare(report.period_active),
            ),
            Figure(
                gettext("New accounts"),
                format_number(report.period_new_accounts.current),
                compare(report.period_new_accounts),
            ),
            Figure(
                gettext("Citizen accounts"),
                format_number(report.accounts),
                gettext("Of which %(residents)s with verified residency.")
                % {"residents": format_number(report.residents)},
            ),
        ]
        figures += [
            Figure(
                gettext("Citizens who used %(module)s") % {"module": titles.get(usage.module, usage.module)},
                format_number(usage.period.current),
                compare(usage.period),
            )
            for usage in report.modules
        ]
        people = gettext("People")
        charts = [
            weekly_chart(
                f"{id_prefix}-citizens",
                gettext("Active citizens per week"),
                report.weeks,
                report.active_citizens,
                language=language,
                value_heading=people,
                colour=colour,
            ),
            weekly_chart(
                f"{id_prefix}-accounts",
                gettext("New accounts per week"),
                report.weeks,
                report.new_accounts,
                language=language,
                value_heading=gettext("Accounts"),
                colour=colour,
            ),
        ]
        charts += [
            weekly_chart(
                f"{id_prefix}-module-{usage.module.replace('_', '-')}",
                gettext("Citizens using %(module)s per week")
                % {"module": titles.get(usage.module, usage.module)},
                report.weeks,
                usage.weekly,
                language=language,
                value_heading=people,
                colour=colour,
            )
            for usage in report.modules
        ]
        return AdoptionView(
            period=gettext("From %(start)s to today, %(today)s.")
            % {
                "start": format_date(report.start, "long"),
                "today": format_date(report.today, "long"),
            },
            measured_since=(
                gettext("Measured since %(date)s.") % {"date": format_date(report.measured_since, "long")}
                if report.measured_since
                else gettext("Nothing has been measured yet: figures appear once citizens log in.")
            ),
            figures=tuple(figures),
            charts=tuple(charts),
        )
