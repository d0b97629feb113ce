"""Templates: looked up in the theme, then the modules, then the platform.

A theme package (``themes/<name>/templates``) may override any template; a module's
templates live under ``<module>/templates/<module>/``; the platform's under
``perron/web/templates/perron/``. Communes never supply templates, only data.

Each language has its own Jinja environment, and ``_("literal")`` is translated when the
template is compiled: a page then costs no translation work at all (seven newstyle
``gettext`` calls used to be half of the home page's rendering time). ``_()`` on anything
but a literal string still translates at render time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    Undefined,
    select_autoescape,
)
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup

from perron import __version__, i18n
from perron.i18n import language_name, translations, using_language
from perron.tenancy.models import LANGUAGES

_module_template_dirs: list[Path] = []


def register_template_dir(path: Path) -> None:
    """Add a module's template folder, consulted after the theme and before the platform."""
    if path not in _module_template_dirs:
        _module_template_dirs.append(path)


class CompileTimeTranslation(Extension):
    """Rewrite ``_("message", ...)`` into the environment's translation of the message.

    ``_("Skip to main content")`` becomes the literal ``"Aller au contenu principal"``
    (folded into the compiled template's text);
    ``_("Welcome to %(name)s", name=x)`` becomes ``_format("Bienvenue sur %(name)s", name=x)``,
    which only formats (escaping the arguments, as Jinja's newstyle gettext does).
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        catalog = translations(self.environment.perron_language)  # type: ignore[attr-defined]
        tokens = list(stream)
        index = 0
        while index < len(tokens):
            token = tokens[index]
            literal_call = (
                token.test("name:_")
                and index + 2 < len(tokens)
                and tokens[index + 1].type == "lparen"
                and tokens[index + 2].type == "string"
            )
            if not literal_call:
                yield token
                index += 1
                continue
            message = tokens[index + 2]
            translated = Token(message.lineno, "string", catalog.gettext(message.value))
            if index + 3 < len(tokens) and tokens[index + 3].type == "rparen":
                yield translated  # a bare literal: Jinja folds it into the template's text
                index += 4
            else:
                yield Token(token.lineno, "name", "_format")
                yield tokens[index + 1]
                yield translated
                index += 3


def _format(message: str, **variables: Any) -> Markup:
    """What ``_()`` on a literal becomes: the already translated message, formatted."""
    text = Markup(message)  # noqa: S704 - the platform's and modules' own catalogs, not user input
    return text % variables if variables else text


_FORMATTERS: tuple[Callable[..., str], ...] = (
    i18n.format_date,
    i18n.format_datetime,
    i18n.format_time,
    i18n.format_timedelta,
    i18n.format_relative,
    i18n.format_number,
    i18n.format_percent,
    i18n.format_currency,
    i18n.format_list,
)


def _formatter(function: Callable[..., str], language: str) -> Callable[..., str]:
    """``function`` in the environment's language; a missing value (None, undefined) shows
    nothing rather than an error or, for dates, today."""
    bound = partial(function, language=language)

    def format_value(value: Any, *args: Any, **kwargs: Any) -> str:
        return "" if value is None or isinstance(value, Undefined) else bound(value, *args, **kwargs)

    return format_value


def _content_helpers(language: str) -> dict[str, Callable[..., Any]]:
    """``title|pick(site.languages)``: the text for this language, else the fallbacks' (see
    ``perron.i18n.pick``); ``title|pick_language(site.languages)`` names the language shown."""

    def pick(values: Any, fallbacks: Sequence[str] = (), default: str = "") -> str:
        if values is None or isinstance(values, Undefined):
            return default
        return i18n.pick(values, language, fallbacks, default=default)

    def pick_language(values: Any, fallbacks: Sequence[str] = ()) -> str | None:
        if values is None or isinstance(values, Undefined):
            return None
        return i18n.pick_language(values, language, fallbacks)

    return {"pick": pick, "pick_language": pick_language}


class Templates:
    """The template environments of one process: one per language, same loaders."""

    def __init__(self, theme_dirs: Sequence[Path] = ()) -> None:
        loaders: list[BaseLoader] = [FileSystemLoader(str(path)) for path in theme_dirs if path.is_dir()]
        loaders += [FileSystemLoader(str(path)) for path in _module_template_dirs]
        loaders.append(PackageLoader("perron.web", "templates"))
        self.loader = ChoiceLoader(loaders)
        self._environments = {language: self._create(language) for language in LANGUAGES}

    def _create(self, language: str) -> Environment:
        environment = Environment(
            loader=self.loader,
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=[CompileTimeTranslation],
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        environment.perron_language = language  # type: ignore[attr-defined]
        catalog = translations(language)
        environment.globals.update(
            _=lambda message, **variables: _format(catalog.gettext(message), **variables),
            _format=_format,
            language_name=language_name,
            perron_version=__version__,
        )
        # Locale formatting and multilingual content, as filters (``when|format_date``) and
        # as functions (``format_currency(price, "EUR")``), always in this environment's language.
        helpers = {function.__name__: _formatter(function, language) for function in _FORMATTERS}
        helpers |= _content_helpers(language)
        environment.filters.update(helpers)
        environment.globals.update(helpers)
        return environment

    def environment(self, language: str) -> Environment:
        return self._environments.get(language) or self._environments[LANGUAGES[0]]

    def render(self, template: str, context: Mapping[str, Any], language: str) -> str:
        with using_language(language):
            return self.environment(language).get_template(template).render(context)


def theme_template_dirs(themes_dir: Path, theme: str = "default") -> list[Path]:
    return [themes_dir / theme / "templates"]
