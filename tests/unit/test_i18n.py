"""Visitors get their language; every platform string is translated in fr, nl and de; dates,
numbers and money read the way each language writes them; texts written in several
languages fall back in a known order and are validated before they are stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError

from perron.cli.i18n import CheckReport, check_catalogs, platform_project
from perron.errors import Invalid
from perron.i18n import (
    TextRules,
    TranslatedText,
    format_currency,
    format_date,
    format_datetime,
    format_list,
    format_number,
    format_percent,
    format_relative,
    format_time,
    format_timedelta,
    gettext,
    negotiate,
    pick,
    pick_language,
    using_language,
)
from perron.web.templating import Templates

SPACES = str.maketrans({"\u202f": " ", "\xa0": " "})


def plain(text: str) -> str:
    """Babel separates with (narrow) no-break spaces; compare them as spaces."""
    return text.translate(SPACES)


def test_explicit_choice_then_cookie_then_browser_then_commune_default() -> None:
    offered = ["fr", "nl"]
    assert negotiate(offered, requested="nl", cookie="fr", accept_language="fr") == "nl"
    assert negotiate(offered, requested=None, cookie="nl", accept_language="fr") == "nl"
    assert negotiate(offered, requested=None, cookie=None, accept_language="de-DE,nl;q=0.8,fr;q=0.5") == "nl"
    assert negotiate(offered, requested="de", cookie="en", accept_language="en") == "fr"
    assert negotiate(offered, requested=None, cookie=None, accept_language="garbage;;;q=x") == "fr"


# --- Catalogs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform_report() -> CheckReport:
    return check_catalogs(platform_project(), required=("nl", "de"))


@pytest.mark.parametrize("language", ["fr", "nl", "de"])
def test_every_platform_string_is_translated(platform_report: CheckReport, language: str) -> None:
    (report,) = [report for report in platform_report.languages if report.language == language]
    assert [f"{problem.kind}: {problem.message} ({problem.where})" for problem in report.problems] == []


def test_strings_are_translated_per_language() -> None:
    with using_language("nl"):
        assert gettext("Skip to main content") == "Naar de hoofdinhoud"
    with using_language("de"):
        assert gettext("Skip to main content") == "Zum Hauptinhalt springen"
    with using_language("en"):
        assert gettext("Skip to main content") == "Skip to main content"


# --- Formatting -----------------------------------------------------------------------------

SPRING_AFTERNOON = dt.datetime(2026, 3, 5, 14, 30, tzinfo=dt.UTC)  # 15:30 in Brussels (CET)


@pytest.mark.parametrize(
    ("language", "date", "moment"),
    [
        ("fr", "5 mars 2026", "5 mars 2026, 15:30"),
        ("nl", "5 maart 2026", "5 maart 2026, 15:30"),
        ("de", "5. März 2026", "5. März 2026, 15:30"),
        ("en", "5 March 2026", "5 March 2026, 15:30"),
    ],
)
def test_dates_are_written_the_way_each_language_writes_them(language: str, date: str, moment: str) -> None:
    assert format_date(SPRING_AFTERNOON, language=language) == date
    assert format_datetime(SPRING_AFTERNOON, language=language) == moment
    with using_language(language):
        assert format_date(SPRING_AFTERNOON) == date  # the current language by default


def test_short_dates_and_patterns() -> None:
    assert format_date(SPRING_AFTERNOON, "short", language="fr") == "5/03/26"
    assert format_date(SPRING_AFTERNOON, "short", language="de") == "05.03.26"
    assert format_date(SPRING_AFTERNOON, "full", language="nl") == "donderdag 5 maart 2026"
    assert (
        format_datetime(SPRING_AFTERNOON, "EEEE d MMMM 'om' HH:mm", language="nl")
        == "donderdag 5 maart om 15:30"
    )


def test_times_are_shown_in_brussels_time_across_daylight_saving() -> None:
    summer_night = dt.datetime(2026, 6, 30, 22, 30, tzinfo=dt.UTC)  # CEST, UTC+2
    winter_night = dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)  # CET, UTC+1
    assert format_date(summer_night, language="fr") == "1 juillet 2026"
    assert format_time(summer_night, language="fr") == "00:30"
    assert format_date(winter_night, language="nl") == "16 januari 2026"
    assert format_time(winter_night, language="nl") == "00:30"
    # A naive datetime is what the database hands back: it is UTC.
    assert format_time(dt.datetime(2026, 6, 30, 10, 0), language="de") == "12:00"  # noqa: DTZ001
    # A plain date or time is shown as it is.
    assert format_date(dt.date(2026, 12, 31), language="en") == "31 December 2026"
    assert format_time(dt.time(9, 5), language="en") == "09:05"


@pytest.mark.parametrize(
    ("language", "money", "number", "two_digits", "percent"),
    [
        ("fr", "1 234,50 €", "1 234,5", "2,50", "25,6 %"),
        ("nl", "€ 1.234,50", "1.234,5", "2,50", "25,6%"),
        ("de", "1.234,50 €", "1.234,5", "2,50", "25,6 %"),
        ("en", "€1,234.50", "1,234.5", "2.50", "25.6%"),
    ],
)
def test_numbers_and_money_per_locale(
    language: str, money: str, number: str, two_digits: str, percent: str
) -> None:
    assert plain(format_currency(1234.5, language=language)) == money
    assert plain(format_currency(Decimal("1234.50"), "EUR", language=language)) == money
    assert plain(format_number(1234.5, language=language)) == number
    assert format_number(2.5, 2, language=language) == two_digits
    assert plain(format_percent(0.256, 1, language=language)) == percent


def test_amounts_never_break_across_lines() -> None:
    for language in ("fr", "nl", "de"):
        assert " " not in format_currency(1234.5, language=language)
    assert plain(format_number(1234567, language="fr")) == "1 234 567"
    assert plain(format_currency(1234.5, "USD", language="fr")) == "1 234,50 $US"


def test_durations_lists_and_relative_moments() -> None:
    later = SPRING_AFTERNOON + dt.timedelta(hours=3)
    assert format_relative(SPRING_AFTERNOON, now=later, language="fr") == "il y a 3 heures"
    assert format_relative(SPRING_AFTERNOON, now=later, language="nl") == "3 uur geleden"
    assert format_relative(later + dt.timedelta(days=2), now=later, language="de") == "in 2 Tagen"
    assert format_timedelta(dt.timedelta(minutes=90), language="en") == "2 hours"
    assert format_list(["fr", "nl", "de"], language="fr") == "fr, nl et de"
    assert format_list(["fr", "nl"], "or", language="nl") == "fr of nl"


def test_missing_values_show_nothing_and_never_today() -> None:
    assert format_date(None) == format_datetime(None) == format_time(None) == ""
    assert format_currency(None) == format_number(None) == format_percent(None) == ""
    assert format_relative(None) == format_timedelta(None) == format_list(None) == ""


def test_templates_format_in_their_own_language() -> None:
    templates = Templates()
    source = (
        "{{ when|format_date }} | {{ when|format_datetime('short') }} | {{ format_currency(price) }}"
        " | {{ nothing|format_date }} | {{ count|format_number }}"
    )
    context = {"when": SPRING_AFTERNOON, "price": 1234.5, "count": 12000}
    rendered = {
        language: plain(templates.environment(language).from_string(source).render(context))
        for language in ("fr", "nl", "de", "en")
    }
    assert rendered == {
        "fr": "5 mars 2026 | 5/03/26 15:30 | 1 234,50 € |  | 12 000",
        "nl": "5 maart 2026 | 5/03/2026, 15:30 | € 1.234,50 |  | 12.000",
        "de": "5. März 2026 | 05.03.26, 15:30 | 1.234,50 € |  | 12.000",
        "en": "5 March 2026 | 05/03/2026, 15:30 | €1,234.50 |  | 12,000",
    }


def test_templates_pick_texts_and_mark_their_language() -> None:
    templates = Templates()
    source = '<h2 lang="{{ title|pick_language(languages) }}">{{ title|pick(languages) }}</h2>{{ none|pick }}'
    context = {"title": {"nl": "Fietsherstelling", "fr": "Réparation de vélos"}, "languages": ["nl", "fr"]}
    assert templates.environment("fr").from_string(source).render(context) == (
        '<h2 lang="fr">Réparation de vélos</h2>'
    )
    assert templates.environment("de").from_string(source).render(context) == (
        '<h2 lang="nl">Fietsherstelling</h2>'
    )


# --- Texts in several languages -------------------------------------------------------------


def test_pick_follows_the_documented_fallback_order() -> None:
    texts = {"fr": "Bienvenue", "nl": "Welkom", "de": "Willkommen"}
    assert pick(texts, "nl", ["fr"]) == "Welkom"  # the requested language
    assert pick(texts, "en", ["de", "nl"]) == "Willkommen"  # then the commune's languages in order
    assert pick(texts, "en", ["nl", "de"]) == "Welkom"
    assert pick(texts, "en") == "Bienvenue"  # then French
    assert pick({"de": "Willkommen", "nl": "Welkom"}, "en") == "Welkom"  # then fr, nl, de, en
    assert pick({"xx": "Something"}, "fr") == "Something"  # then anything
    assert pick({"nl": "  ", "de": "Willkommen"}, "nl", ["nl"]) == "Willkommen"  # blanks skipped
    assert pick({}, "fr", default="Hannut") == "Hannut"
    assert pick(None, "fr") == ""
    with using_language("de"):
        assert pick(texts) == "Willkommen"  # the current language by default
    assert pick_language(texts, "en", ["nl"]) == "nl"
    assert pick_language({"fr": " "}, "fr") is None


class NewsItem(BaseModel):
    title: Annotated[TranslatedText, TextRules(max_length=20, required=("fr",))]
    body: TranslatedText


def test_translated_text_is_cleaned_and_ordered() -> None:
    item = NewsItem(
        title={"en": "Road works", "fr": "  Travaux  ", "nl": "", "de": "   "},
        body={"nl": "Eerste regel\r\nTweede regel", "fr": "Cafe\u0301"},
    )
    assert isinstance(item.title, TranslatedText)
    assert list(item.title.items()) == [("fr", "Travaux"), ("en", "Road works")]
    assert item.body == {"fr": "Café", "nl": "Eerste regel\nTweede regel"}
    assert item.body["fr"] == "Café" and len(item.body["fr"]) == 4  # composed (NFC)
    assert item.title.pick("nl", ["nl", "fr"]) == "Travaux"
    assert NewsItem.model_validate_json(item.model_dump_json()) == item


def _errors(**values: object) -> list[tuple[tuple[str | int, ...], str, str]]:
    data = {"title": {"fr": "Travaux"}, "body": {"fr": "Texte"}} | values
    with pytest.raises(ValidationError) as caught:
        NewsItem.model_validate(data)
    return [(error["loc"], error["type"], error["msg"]) for error in caught.value.errors()]


def test_translated_text_refuses_what_cannot_be_stored() -> None:
    with using_language("en"):
        assert _errors(title={"es": "Obras", "fr": "Travaux"}) == [
            (
                ("title", "es", "[key]"),
                "translated_text_language",
                "'es' is not a language Perron offers (fr, nl, de, en).",
            )
        ]
        assert _errors(title={"fr": "x" * 21}) == [
            (
                ("title", "fr"),
                "translated_text_too_long",
                "The text can be at most 20 characters long (it has 21).",
            )
        ]
        assert _errors(body={"nl": "bell\x07"})[0][:2] == (("body", "nl"), "translated_text_control")
        assert _errors(body={"nl": "nul\x00"})[0][2] == (
            "The text contains an invisible control character (U+0000); remove it."
        )
        assert _errors(body="Texte")[0][:2] == (("body",), "translated_text_type")
        assert _errors(body={"fr": 12})[0][:2] == (("body", "fr"), "translated_text_string")
        assert _errors(body={"fr": "  ", "nl": ""}) == [
            (("body",), "translated_text_empty", "Write the text in at least one language.")
        ]
        assert _errors(title={"nl": "Werken", "de": "Bauarbeiten"}) == [
            (("title",), "translated_text_missing", "The text is missing in French.")
        ]


def test_translated_text_errors_speak_the_current_language() -> None:
    with using_language("fr"):
        assert _errors(title={"nl": "Werken"})[0][2] == "Le texte manque en français."
        assert _errors(title={"fr": "x" * 21})[0][2] == (
            "Le texte peut compter au plus 20 caractères (il en a 21)."
        )
    with using_language("de"):
        assert _errors(body={})[0][2] == "Schreiben Sie den Text in mindestens einer Sprache."


def test_text_rules_check_raises_invalid_naming_the_language() -> None:
    rules = TextRules(max_length=5, required=("fr", "nl"))
    assert rules.check({"fr": " Gare ", "nl": "Stat"}, "title") == {"fr": "Gare", "nl": "Stat"}
    with using_language("en"), pytest.raises(Invalid) as caught:
        rules.check({"fr": "Gare", "nl": "Station"}, "title")
    assert caught.value.field == "title.nl"
    assert caught.value.reason == "The text can be at most 5 characters long (it has 7)."
    with using_language("en"), pytest.raises(Invalid) as caught:
        rules.check({"fr": "Gare"}, "title")
    assert (caught.value.field, caught.value.reason) == ("title", "The text is missing in Dutch.")


def test_text_rules_refuse_impossible_definitions() -> None:
    with pytest.raises(ValueError, match="max_length"):
        TextRules(max_length=0)
    with pytest.raises(ValueError, match="es"):
        TextRules(required=("fr", "es"))


def test_translated_text_describes_itself_for_forms() -> None:
    schema = NewsItem.model_json_schema()["properties"]
    assert schema["title"]["properties"]["nl"] == {"type": "string", "maxLength": 20}
    assert schema["title"]["required"] == ["fr"]
    assert schema["title"]["additionalProperties"] is False
    assert set(schema["body"]["properties"]) == {"fr", "nl", "de", "en"}
    assert "required" not in schema["body"]
