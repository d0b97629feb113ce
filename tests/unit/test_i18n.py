"""Visitors get their language; every platform string is translated in fr, nl and de."""

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from perron.i18n import gettext, negotiate, using_language

LOCALE = Path(__file__).resolve().parents[2] / "platform" / "perron" / "locale"


def test_explicit_choice_then_cookie_then_browser_then_commune_default() -> None:
    offered = ["fr", "nl"]
    assert negotiate(offered, requested="nl", cookie="fr", accept_language="fr") == "nl"
    assert negotiate(offered, requested=None, cookie="nl", accept_language="fr") == "nl"
    assert negotiate(offered, requested=None, cookie=None, accept_language="de-DE,nl;q=0.8,fr;q=0.5") == "nl"
    assert negotiate(offered, requested="de", cookie="en", accept_language="en") == "fr"
    assert negotiate(offered, requested=None, cookie=None, accept_language="garbage;;;q=x") == "fr"


def _source_messages() -> set[str]:
    """Every string marked for translation in the platform's code and templates."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    keywords = {**DEFAULT_KEYWORDS, "lazy": None}
    found = extract_from_dir(str(LOCALE.parent), method_map, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


@pytest.mark.parametrize("language", ["fr", "nl", "de"])
def test_every_platform_string_is_translated(language: str) -> None:
    catalog = read_po((LOCALE / language / "LC_MESSAGES" / "perron.po").open("rb"))
    translated = {message.id for message in catalog if message.id and message.string}
    assert sorted(_source_messages() - translated) == []


def test_strings_are_translated_per_language() -> None:
    with using_language("nl"):
        assert gettext("Skip to main content") == "Naar de hoofdinhoud"
    with using_language("de"):
        assert gettext("Skip to main content") == "Zum Hauptinhalt springen"
    with using_language("en"):
        assert gettext("Skip to main content") == "Skip to main content"
