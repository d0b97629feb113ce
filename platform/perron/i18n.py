"""Languages: which one a visitor gets, the translated strings, locale formatting, and
content written in several languages.

Catalogs are gettext ``.po`` files (``perron/locale/<lang>/LC_MESSAGES/perron.po``; modules
ship their own domain, ``<package>/locale/<lang>/LC_MESSAGES/<package>.po``). They are
compiled in memory with Babel when first used, so a checkout runs without a build step.
Message ids are English; the English catalog repeats them (``perron i18n update`` fills it)
so English wording can be polished without touching code, and an English message missing
from it still shows its id. ``perron i18n`` extracts, updates, compiles and checks catalogs.

Formatting (``format_date``, ``format_currency``...) follows the current language with
Belgian conventions (``fr`` → ``fr_BE``, ``nl`` → ``nl_BE``, ``de`` → ``de_BE``) and British
English for ``en`` (see ``LOCALES``); times are shown in Brussels time.

Content written by people in several languages (a commune's name, a news title) is a
mapping language → text: ``pick()`` chooses the text to show, and ``TranslatedText`` (with
``TextRules``) validates it in pydantic models and actions.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
import io
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from babel import dates as _dates
from babel import lists as _lists
from babel import numbers as _numbers
from babel.core import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from perron.errors import Invalid
from perron.tenancy.models import LANGUAGES

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_COOKIE",
    "LOCALES",
    "TIME_ZONE",
    "TextRules",
    "TranslatedText",
    "current_language",
    "format_currency",
    "format_date",
    "format_datetime",
    "format_list",
    "format_number",
    "format_percent",
    "format_relative",
    "format_time",
    "format_timedelta",
    "gettext",
    "language_name",
    "lazy",
    "locale_for",
    "negotiate",
    "ngettext",
    "pick",
    "pick_language",
    "register_catalogs",
    "set_language",
    "translations",
    "using_language",
]

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


# --- Locale formatting ---------------------------------------------------------------------

LOCALES: Mapping[str, str] = {"fr": "fr_BE", "nl": "nl_BE", "de": "de_BE", "en": "en_GB"}
"""The CLDR locale each language formats with. Belgian variants for the national languages;
British English for English, which writes day-month-year and a 24-hour clock like Belgium but
keeps English number punctuation (``en_BE`` would write 1.234,50, which English readers take
for one point two)."""

TIME_ZONE = ZoneInfo("Europe/Brussels")
"""Every commune is in Belgium: times are stored in UTC and shown in Brussels time."""

_WIDTHS = ("short", "medium", "long", "full")
Width = Literal["short", "medium", "long", "full"]
Number = int | float | Decimal


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(LOCALES.get(language, LOCALES[DEFAULT_LANGUAGE]))


def locale_for(language: str | None = None) -> Locale:
    """The Babel locale for a language (the current one by default); unknown → French."""
    return _locale(language or _language.get())


def _local(moment: dt.datetime) -> dt.datetime:
    """A moment in Brussels time; a naive datetime is taken as UTC (what the database stores)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(TIME_ZONE)


def format_date(
    value: dt.date | dt.datetime | None, format: Width | str = "long", *, language: str | None = None
) -> str:
    """``5 mars 2026`` / ``5 maart 2026`` / ``5. März 2026`` / ``5 March 2026``.

    ``format`` is a width (short, medium, long, full) or a CLDR pattern such as ``"EEEE d MMMM"``.
    A datetime is first brought to Brussels time, so 23:30 UTC in summer is the next day.
    ``None`` gives an empty string (never today's date).
    """
    if value is None:
        return ""
    day = _local(value).date() if isinstance(value, dt.datetime) else value
    return _dates.format_date(day, format, locale=locale_for(language))


def format_time(
    value: dt.time | dt.datetime | None, format: Width | str = "short", *, language: str | None = None
) -> str:
    """``14:30`` in Brussels time (a bare ``time`` is taken as already local)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = _local(value)
        return _dates.format_time(value, format, tzinfo=TIME_ZONE, locale=locale_for(language))
    return _dates.format_time(value, format, locale=locale_for(language))


def format_datetime(
    value: dt.datetime | None, format: Width | str = "long", *, language: str | None = None
) -> str:
    """``5 mars 2026, 15:30``: the date at the given width and the time to the minute, in
    Brussels time, joined the locale's way. Any other ``format`` is a CLDR pattern."""
    if value is None:
        return ""
    locale = locale_for(language)
    moment = _local(value)
    if format not in _WIDTHS:
        return _dates.format_datetime(moment, format, tzinfo=TIME_ZONE, locale=locale)
    joined = str(_dates.get_datetime_format(format, locale=locale)).replace("'", "")  # type: ignore[arg-type]
    time = _dates.format_time(moment, "short", tzinfo=TIME_ZONE, locale=locale)
    return joined.replace("{0}", time).replace(
        "{1}", _dates.format_date(moment.date(), format, locale=locale)
    )


def format_timedelta(
    delta: dt.timedelta | None,
    *,
    granularity: Literal["year", "month", "week", "day", "hour", "minute", "second"] = "second",
    add_direction: bool = False,
    format: Literal["narrow", "short", "medium", "long"] = "long",
    language: str | None = None,
) -> str:
    """A duration in words, rounded to its largest unit: ``3 heures``, ``2 dagen``."""
    if delta is None:
        return ""
    return _dates.format_timedelta(
        delta,
        granularity=granularity,
        add_direction=add_direction,
        format=format,
        locale=locale_for(language),
    )


def format_relative(
    value: dt.datetime | None, *, now: dt.datetime | None = None, language: str | None = None
) -> str:
    """``il y a 3 heures``, ``over 2 dagen``: a moment relative to now (naive means UTC).

    The text ages: do not use it on pages served from the public page cache.
    """
    if value is None:
        return ""
    reference = _local(now) if now is not None else dt.datetime.now(TIME_ZONE)
    return format_timedelta(_local(value) - reference, add_direction=True, language=language)


def format_number(number: Number | None, digits: int | None = None, *, language: str | None = None) -> str:
    """``1 234,5`` (fr), ``1.234,5`` (nl, de), ``1,234.5`` (en). ``digits`` fixes the number
    of decimals (``format_number(2.5, 2)`` → ``2,50``); by default up to three are shown."""
    if number is None:
        return ""
    pattern = None if digits is None else "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return _numbers.format_decimal(number, pattern, locale=locale_for(language))


def format_percent(number: Number | None, digits: int = 0, *, language: str | None = None) -> str:
    """``0.25`` → ``25 %`` (fr, de) or ``25%`` (nl, en); ``digits`` decimals after the number."""
    if number is None:
        return ""
    locale = locale_for(language)
    pattern = locale.percent_formats[None].pattern
    if digits > 0:
        pattern = pattern.replace("#,##0", "#,##0." + "0" * digits, 1)
    return _numbers.format_percent(number, pattern, locale=locale)


def format_currency(amount: Number | None, currency: str = "EUR", *, language: str | None = None) -> str:
    """``1 234,50 €`` (fr), ``€ 1.234,50`` (nl), ``1.234,50 €`` (de), ``€1,234.50`` (en)."""
    if amount is None:
        return ""
    return _numbers.format_currency(amount, currency, locale=locale_for(language))


def format_list(
    items: Iterable[str] | None,
    style: Literal["standard", "or"] = "standard",
    *,
    language: str | None = None,
) -> str:
    """``fr, nl et de`` / ``fr, nl en de``; ``style="or"`` for alternatives."""
    if items is None:
        return ""
    return _lists.format_list([str(item) for item in items], style=style, locale=locale_for(language))


# --- Content written in several languages ---------------------------------------------------


def pick_language(
    values: Mapping[str, str] | None, language: str | None = None, fallbacks: Sequence[str] = ()
) -> str | None:
    """The language whose text ``pick()`` shows, or None when there is no text at all.

    Useful for a ``lang`` attribute: a Dutch title shown on a French page must say so.
    """
    if not values:
        return None
    wanted = language or _language.get()
    for candidate in (wanted, *fallbacks, DEFAULT_LANGUAGE, *LANGUAGES, *values):
        text = values.get(candidate)
        if isinstance(text, str) and text.strip():
            return candidate
    return None


def pick(
    values: Mapping[str, str] | None,
    language: str | None = None,
    fallbacks: Sequence[str] = (),
    *,
    default: str = "",
) -> str:
    """The text to show from a mapping language → text.

    Order: the requested language (the current one by default), then ``fallbacks`` in order
    (pass the commune's languages, its first being its default), then French, then the other
    languages Perron offers (fr, nl, de, en), then any other key in the mapping's order.
    Empty and blank texts are skipped; ``default`` when nothing is left.
    """
    chosen = pick_language(values, language, fallbacks)
    return values[chosen] if values is not None and chosen is not None else default


_DEFAULT_MAX_LENGTH = 10_000
_ALLOWED_CONTROLS = frozenset("\t\n")


@dataclass(frozen=True)
class TextRules:
    """Constraints on a ``TranslatedText``, given as ``Annotated`` metadata::

        title: Annotated[TranslatedText, TextRules(max_length=120, required=("fr",))]

    ``max_length`` counts characters per language, after trimming; ``required`` names languages
    that must have a text. Without ``TextRules`` a ``TranslatedText`` allows 10,000 characters
    and requires no particular language (but always at least one text).
    """

    max_length: int = _DEFAULT_MAX_LENGTH
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, not {self.max_length}")
        required = tuple(self.required)
        unknown = [language for language in required if language not in LANGUAGES]
        if unknown:
            raise ValueError(f"required languages {unknown} are not among {', '.join(LANGUAGES)}")
        object.__setattr__(self, "required", required)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return _translated_schema(self)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.json_schema()

    def json_schema(self) -> JsonSchemaValue:
        """An object with one optional string per language: what a form renders."""
        result: JsonSchemaValue = {
            "type": "object",
            "properties": {
                language: {"type": "string", "maxLength": self.max_length} for language in LANGUAGES
            },
            "additionalProperties": False,
            "minProperties": 1,
        }
        if self.required:
            result["required"] = list(self.required)
        return result

    def check(self, value: object, field: str = "text") -> TranslatedText:
        """Validate outside pydantic (in an action): ``Invalid("title.nl", ...)`` on refusal."""
        try:
            return _adapter(self).validate_python(value)
        except ValidationError as error:
            first = error.errors()[0]
            where = [str(part) for part in first["loc"] if part != "[key]"]
            raise Invalid(".".join([field, *where]), first["msg"]) from None


class TranslatedText(dict[str, str]):
    """A text per language (``{"fr": "Bienvenue", "nl": "Welkom"}``), as modules store titles
    and descriptions. As a pydantic field it accepts only the languages Perron offers, trims
    each text (Unicode NFC, Windows line ends made ``\\n``), drops empty ones, refuses control
    characters and texts longer than the rules allow, and requires at least one text. Its
    languages come out in the order fr, nl, de, en. Narrow it with ``TextRules``.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return _translated_schema(TextRules())

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return TextRules().json_schema()

    def pick(self, language: str | None = None, fallbacks: Sequence[str] = ()) -> str:
        """The text to show; see ``pick()`` for the fallback order."""
        return pick(self, language, fallbacks)

    def pick_language(self, language: str | None = None, fallbacks: Sequence[str] = ()) -> str | None:
        return pick_language(self, language, fallbacks)


def _require_mapping(value: object) -> object:
    if not isinstance(value, Mapping):
        raise PydanticCustomError(
            "translated_text_type",
            gettext("Give one text per language, keyed by language code (fr, nl, de, en)."),
        )
    return value


def _check_language(value: object) -> str:
    if not isinstance(value, str) or value not in LANGUAGES:
        shown = str(value)[:20]
        raise PydanticCustomError(
            "translated_text_language",
            gettext("'%(code)s' is not a language Perron offers (fr, nl, de, en).") % {"code": shown},
        )
    return value


def _clean_text(max_length: int, value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "translated_text_string", gettext("Each language's text must be text, not a number or a list.")
        )
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    for character in text:
        if unicodedata.category(character) == "Cc" and character not in _ALLOWED_CONTROLS:
            raise PydanticCustomError(
                "translated_text_control",
                gettext("The text contains an invisible control character (%(code)s); remove it.")
                % {"code": f"U+{ord(character):04X}"},
            )
    if len(text) > max_length:
        raise PydanticCustomError(
            "translated_text_too_long",
            ngettext(
                "The text can be at most %(limit)s character long (it has %(length)s).",
                "The text can be at most %(limit)s characters long (it has %(length)s).",
                max_length,
            )
            % {"limit": format_number(max_length), "length": format_number(len(text))},
        )
    return text


def _complete(rules: TextRules, values: dict[str, str]) -> TranslatedText:
    texts = TranslatedText({language: values[language] for language in LANGUAGES if values.get(language)})
    if not texts:
        raise PydanticCustomError(
            "translated_text_empty", gettext("Write the text in at least one language.")
        )
    missing = [language for language in rules.required if language not in texts]
    if missing:
        names = locale_for().languages
        raise PydanticCustomError(
            "translated_text_missing",
            gettext("The text is missing in %(languages)s.")
            % {"languages": format_list([names.get(language, language) for language in missing])},
        )
    return texts


def _translated_schema(rules: TextRules) -> core_schema.CoreSchema:
    clean: Callable[[object], str] = partial(_clean_text, rules.max_length)
    mapping = core_schema.dict_schema(
        keys_schema=core_schema.no_info_plain_validator_function(_check_language),
        values_schema=core_schema.no_info_plain_validator_function(clean),
    )
    return core_schema.no_info_before_validator_function(
        _require_mapping, core_schema.no_info_after_validator_function(partial(_complete, rules), mapping)
    )


@cache
def _adapter(rules: TextRules) -> TypeAdapter[TranslatedText]:
    adapter: TypeAdapter[TranslatedText] = TypeAdapter(Annotated[TranslatedText, rules])
    return adapter
