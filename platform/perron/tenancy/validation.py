"""Rules for what identifies a commune: slug, NIS code, names and languages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from perron.errors import Invalid
from perron.i18n import gettext
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
            gettext(
                "%(value)s is not a valid slug: use 1 to 63 lower-case letters, digits and inner hyphens, "
                "such as 'la-louviere'"
            )
            % {"value": repr(value)},
        )
    if value in RESERVED_SLUGS:
        raise Invalid(field, gettext("%(value)s is reserved by the platform") % {"value": repr(value)})
    return value


def check_nis_code(value: object, field: str = "nis_code") -> str:
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not NIS_CODE.match(text):
        raise Invalid(
            field,
            gettext("%(value)s is not a NIS code: it has exactly five digits, such as 64034 for Hannut")
            % {"value": repr(value)},
        )
    return text


def check_languages(value: object, field: str = "languages") -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise Invalid(field, gettext("give a list of languages, such as ['fr', 'nl']"))
    languages = list(value)
    if not languages:
        raise Invalid(field, gettext("a commune's site needs at least one language"))
    for language in languages:
        if language not in LANGUAGES:
            raise Invalid(
                field,
                gettext("%(language)s is not offered; choose among %(choices)s")
                % {"language": repr(language), "choices": ", ".join(LANGUAGES)},
            )
    if len(set(languages)) != len(languages):
        raise Invalid(field, gettext("a language is listed twice"))
    return languages


def check_names(value: object, languages: list[str], field: str = "names") -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise Invalid(field, gettext("give a name per language, such as {'fr': 'Hannut', 'nl': 'Hannuit'}"))
    names: dict[str, str] = {}
    for language, name in value.items():
        if language not in LANGUAGES:
            raise Invalid(
                f"{field}.{language}",
                gettext("%(language)s is not a language Perron offers") % {"language": repr(language)},
            )
        if not isinstance(name, str) or not name.strip():
            raise Invalid(f"{field}.{language}", gettext("the name is empty"))
        if len(name) > MAX_NAME_LENGTH:
            raise Invalid(
                f"{field}.{language}",
                gettext("the name is longer than %(count)d characters") % {"count": MAX_NAME_LENGTH},
            )
        names[language] = name.strip()
    missing = [language for language in languages if language not in names]
    if missing:
        raise Invalid(
            field, gettext("a name is missing for %(languages)s") % {"languages": ", ".join(missing)}
        )
    return names


def check_domain(value: object, field: str = "domain") -> str:
    if not isinstance(value, str):
        raise Invalid(field, gettext("%(value)s is not a domain name") % {"value": repr(value)})
    try:
        return validate_site_domain(value)
    except InvalidHost as error:
        raise Invalid(field, str(error)) from None
