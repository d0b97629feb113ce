"""Rules for what identifies a commune: slug, NIS code, names and languages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from perron.errors import Invalid
from perron.tenancy.hosts import InvalidHost, validate_site_domain
from perron.tenancy.models import LANGUAGES

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
NIS_CODE = re.compile(r"^[1-9][0-9]{4}$")
RESERVED_SLUGS = frozenset({"admin", "api", "console", "static", "www", "perron", "platform", "localhost"})
MAX_NAME_LENGTH = 120


def check_slug(value: object, field: str = "slug") -> str:
    if not isinstance(value, str) or not SLUG.match(value):
        raise Invalid(
            field,
            f"{value!r} is not a valid slug: use 1 to 63 lower-case letters, digits and inner hyphens, "
            "such as 'la-louviere'",
        )
    if value in RESERVED_SLUGS:
        raise Invalid(field, f"{value!r} is reserved by the platform")
    return value


def check_nis_code(value: object, field: str = "nis_code") -> str:
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not NIS_CODE.match(text):
        raise Invalid(
            field, f"{value!r} is not a NIS code: it has exactly five digits, such as 64034 for Hannut"
        )
    return text


def check_languages(value: object, field: str = "languages") -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise Invalid(field, "give a list of languages, such as ['fr', 'nl']")
    languages = list(value)
    if not languages:
        raise Invalid(field, "a commune's site needs at least one language")
    for language in languages:
        if language not in LANGUAGES:
            raise Invalid(field, f"{language!r} is not offered; choose among {', '.join(LANGUAGES)}")
    if len(set(languages)) != len(languages):
        raise Invalid(field, "a language is listed twice")
    return languages


def check_names(value: object, languages: list[str], field: str = "names") -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise Invalid(field, "give a name per language, such as {'fr': 'Hannut', 'nl': 'Hannuit'}")
    names: dict[str, str] = {}
    for language, name in value.items():
        if language not in LANGUAGES:
            raise Invalid(f"{field}.{language}", f"{language!r} is not a language Perron offers")
        if not isinstance(name, str) or not name.strip():
            raise Invalid(f"{field}.{language}", "the name is empty")
        if len(name) > MAX_NAME_LENGTH:
            raise Invalid(f"{field}.{language}", f"the name is longer than {MAX_NAME_LENGTH} characters")
        names[language] = name.strip()
    missing = [language for language in languages if language not in names]
    if missing:
        raise Invalid(field, f"a name is missing for {', '.join(missing)}")
    return names


def check_domain(value: object, field: str = "domain") -> str:
    if not isinstance(value, str):
        raise Invalid(field, f"{value!r} is not a domain name")
    try:
        return validate_site_domain(value)
    except InvalidHost as error:
        raise Invalid(field, str(error)) from None
