"""What identifies a commune is checked before anything is stored."""

import pytest

from perron.errors import Invalid
from perron.tenancy.validation import check_languages, check_names, check_nis_code, check_slug


@pytest.mark.parametrize("slug", ["hannut", "la-louviere", "a", "x1"])
def test_good_slugs(slug: str) -> None:
    assert check_slug(slug) == slug


@pytest.mark.parametrize(
    "slug", ["", "Hannut", "la louviere", "-hannut", "hannut-", "é", "a" * 64, "console", 12]
)
def test_bad_slugs_are_refused(slug: object) -> None:
    with pytest.raises(Invalid) as caught:
        check_slug(slug)
    assert caught.value.field == "slug"


@pytest.mark.parametrize("code", ["64034", 64034, "92003"])
def test_nis_codes_have_five_digits(code: object) -> None:
    assert check_nis_code(code) == str(code)


@pytest.mark.parametrize("code", ["6403", "640345", "6403a", "04034", "", None, 6403])
def test_bad_nis_codes_are_refused_with_an_example(code: object) -> None:
    with pytest.raises(Invalid, match="exactly five digits"):
        check_nis_code(code)


def test_languages_and_names() -> None:
    assert check_languages(["fr", "nl"]) == ["fr", "nl"]
    for bad, message in (
        (["fr", "fr"], "twice"),
        (["it"], "not offered"),
        ([], "at least one"),
        ("fr", "list"),
    ):
        with pytest.raises(Invalid, match=message):
            check_languages(bad)
    assert check_names({"fr": " Hannut ", "nl": "Hannuit"}, ["fr", "nl"]) == {"fr": "Hannut", "nl": "Hannuit"}
    with pytest.raises(Invalid, match="missing for nl"):
        check_names({"fr": "Hannut"}, ["fr", "nl"])
    with pytest.raises(Invalid, match="empty"):
        check_names({"fr": "  "}, ["fr"])
