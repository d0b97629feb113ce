"""Languages: which one a visitor gets, and the translated strings.

Catalogs are gettext ``.po`` files (``perron/locale/<lang>/LC_MESSAGES/perron.po``; modules
ship their own domain). They are compiled in memory with Babel when first used, so a
checkout runs without a build step. Message ids are English.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from pathlib import Path

from babel.core import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from perron.tenancy.models import LANGUAGES

DEFAULT_LANGUAGE = "fr"
LANGUAGE_COOKIE = "perron_lang"

_language: ContextVar[str] = ContextVar("perron_language", default=DEFAULT_LANGUAGE)
_catalog_dirs: list[tuple[str, Path]] = []


def register_catalogs(domain: str, directory: Path) -> None:
    """Add a module's catalogs (``<directory>/<lang>/LC_MESSAGES/<domain>.po``)."""
    if (domain, directory) not in _catalog_dirs:
        _catalog_dirs.append((domain, directory))
        translations.cache_clear()


def _platform_dir() -> Path:
    return Path(str(resources.files("perron") / "locale"))


def _load_po(path: Path, language: str) -> _gettext.GNUTranslations | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """Every catalog for a language, the platform's first; English is the message ids."""
    merged: _gettext.NullTranslations = _gettext.NullTranslations()
    for domain, directory in [("perron", _platform_dir()), *_catalog_dirs]:
        loaded = _load_po(directory / language / "LC_MESSAGES" / f"{domain}.po", language)
        if loaded is not None:
            if isinstance(merged, _gettext.GNUTranslations):
                merged.add_fallback(loaded)
            else:
                merged = loaded
    return merged


def current_language() -> str:
    return _language.get()


@contextmanager
def using_language(language: str) -> Iterator[str]:
    token = _language.set(language)
    try:
        yield language
    finally:
        _language.reset(token)


def set_language(language: str) -> None:
    """Set the language for the rest of the current request's task."""
    _language.set(language)


def gettext(message: str) -> str:
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translations(_language.get()).ngettext(singular, plural, count)


def lazy(message: str) -> str:
    """Mark a string for extraction where it is declared; translate it where it is shown."""
    return message


_ = gettext


def negotiate(
    offered: Iterable[str], *, requested: str | None, cookie: str | None, accept_language: str | None
) -> str:
    """The language to answer in: an explicit request, then the visitor's remembered
    choice, then their browser's preference, then the commune's first language."""
    choices = [language for language in offered if language in LANGUAGES] or [DEFAULT_LANGUAGE]
    for candidate in (requested, cookie):
        if candidate in choices:
            return candidate
    for candidate in _parse_accept_language(accept_language or ""):
        if candidate in choices:
            return candidate
    return choices[0]


def _parse_accept_language(header: str) -> list[str]:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, index, tag.split("-")[0]))
    return [tag for _, _, tag in sorted(weighted)]


@cache
def language_name(language: str) -> str:
    """A language's name in itself ("Nederlands"), for language switchers."""
    try:
        name = Locale.parse(language).get_display_name(language) or language
    except (UnknownLocaleError, ValueError):
        return language
    return name[:1].upper() + name[1:]
