"""``perron i18n``: the gettext catalogs of the platform or of a module package.

The platform keeps ``perron/locale/perron.pot`` and ``perron/locale/<lang>/LC_MESSAGES/perron.po``;
a module package keeps the same layout under its own folder, named after its domain (the
package name): ``<package>/locale/<lang>/LC_MESSAGES/<package>.po``.

- ``extract`` reads the marked strings of the Python code (``_``, ``gettext``, ``ngettext``,
  ``lazy``...) and the Jinja templates (``_("...")``) into the ``.pot`` template;
- ``update`` merges the template into each language's catalog, creating missing ones; new
  strings arrive untranslated, changed ones as fuzzy suggestions to review, and the English
  catalog repeats its message ids (which are English);
- ``compile`` writes ``.mo`` files, for deployments that want them: Perron itself compiles
  the ``.po`` files in memory;
- ``check`` compares the catalogs with the strings in the code and fails when French (the
  default language) lacks one, has one awaiting review, or when any translation breaks a
  placeholder; other languages are warnings unless required.

What is read comes from ``<package>/locale/babel.cfg`` when the package has one (Babel's
mapping format), else every ``.py`` file and every ``templates/**.html``.

Catalogs are written sorted, without source locations and without line wrapping, so that a
change shows up as the lines of the messages it touches. A comment starting with
``Translators:`` just above a marked string reaches the translators.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import click
from babel.messages.catalog import Catalog, Message, TranslationError
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po, write_po
from jinja2 import TemplateSyntaxError

import perron
from perron.cli.common import fail, out
from perron.i18n import DEFAULT_LANGUAGE, LANGUAGES

KEYWORDS: dict[str, Any] = {**DEFAULT_KEYWORDS, "lazy": None}
COMMENT_TAGS = ("Translators:",)
SOURCE_LANGUAGE = "en"
"""The language of the message ids: its catalog is filled with the ids themselves."""

_DEFAULT_MAPPING = """\
[python: **.py]
[jinja2: **/templates/**.html]
silent = false
"""
_WRITE_OPTIONS: dict[str, Any] = {"width": 0, "no_location": True, "sort_output": True}

MessageId = str | tuple[str, ...] | list[str]
Severity = Literal["error", "warning"]


class CatalogError(Exception):
    """A catalog or source that cannot be read; the message says which and where."""


@dataclass(frozen=True)
class Project:
    """The catalogs of one package: the platform's (domain ``perron``) or a module's."""

    package: Path
    domain: str
    is_platform: bool = False

    @property
    def label(self) -> str:
        return "the platform" if self.is_platform else f"module {self.domain}"

    @property
    def locale_dir(self) -> Path:
        return self.package / "locale"

    @property
    def theme_dirs(self) -> list[Path]:
        """The platform's catalog also translates the first-party themes (``themes/`` of the
        source tree): their templates use the platform's strings and add their own."""
        if not self.is_platform:
            return []
        themes = self.package.parent.parent / "themes"
        return sorted(path for path in themes.iterdir() if path.is_dir()) if themes.is_dir() else []

    @property
    def template(self) -> Path:
        return self.locale_dir / f"{self.domain}.pot"

    def catalog_path(self, language: str) -> Path:
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.domain}.po"

    def compiled_path(self, language: str) -> Path:
        return self.catalog_path(language).with_suffix(".mo")

    def command(self, name: str) -> str:
        """How to run a ``perron i18n`` command on this project, for hints."""
        return f"perron i18n {name}" + ("" if self.is_platform else f" --module {self.package}")


def platform_project() -> Project:
    return Project(Path(perron.__file__).resolve().parent, "perron", is_platform=True)


def module_project(path: Path) -> Project:
    """A module package's folder (the one holding its ``__init__.py``)."""
    package = path.resolve()
    if not package.is_dir():
        raise CatalogError(f"{path} is not a folder")
    if not (package / "__init__.py").is_file():
        raise CatalogError(
            f"{path} is not a Python package (it has no __init__.py): give the package's own folder, "
            "such as modules/perron_news/perron_news"
        )
    if not package.name.isidentifier():
        raise CatalogError(
            f"{package.name!r} is not a valid package name, so it cannot name a catalog domain"
        )
    if package.name == "perron":
        return platform_project()
    return Project(package, package.name)


# --- Reading and writing ----------------------------------------------------------------------


MethodMap = tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]


def _mapping(project: Project) -> MethodMap:
    """The package's ``locale/babel.cfg`` if it has one, else Python files and templates."""
    config = project.locale_dir / "babel.cfg"
    if config.is_file():
        with config.open(encoding="utf-8") as handle:
            return cast(MethodMap, parse_mapping_cfg(handle, str(config)))  # type: ignore[no-untyped-call]
    return cast(MethodMap, parse_mapping_cfg(io.StringIO(_DEFAULT_MAPPING)))  # type: ignore[no-untyped-call]


def extract(project: Project) -> Catalog:
    """Every string marked for translation in the package, with where it was found."""
    method_map, options_map = _mapping(project)
    catalog = Catalog(
        project="Perron" if project.is_platform else project.domain,
        version=perron.__version__ if project.is_platform else None,
        copyright_holder="Perron developers",
        charset="utf-8",
    )
    current = ""

    def note(filename: str, method: str, options: dict[str, Any]) -> None:
        nonlocal current
        current = filename

    theme_map, theme_options = cast(
        MethodMap,
        parse_mapping_cfg(io.StringIO("[jinja2: templates/**.html]\nsilent = false\n")),  # type: ignore[no-untyped-call]
    )
    sources = [(project.package, "", method_map, options_map)] + [
        (theme, f"themes/{theme.name}/", theme_map, theme_options) for theme in project.theme_dirs
    ]
    try:
        for folder, prefix, folder_map, folder_options in sources:
            for filename, lineno, message, comments, context in extract_from_dir(
                str(folder),
                folder_map,
                folder_options,
                keywords=KEYWORDS,
                comment_tags=COMMENT_TAGS,
                callback=note,
                strip_comment_tags=False,
            ):
                catalog.add(
                    message, None, [(prefix + filename, lineno)], auto_comments=comments, context=context
                )
    except TemplateSyntaxError as error:
        raise CatalogError(
            f"{current}, line {error.lineno}: the template does not parse: {error.message}"
        ) from None
    except SyntaxError as error:
        raise CatalogError(f"{current}, line {error.lineno}: the code does not parse: {error.msg}") from None
    return catalog


def read_catalog(path: Path, language: str | None = None) -> Catalog:
    try:
        with path.open("rb") as handle:
            return read_po(handle, locale=language, abort_invalid=True)
    except PoFileError as error:
        raise CatalogError(f"{path}: {error}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise CatalogError(f"{path}: cannot be read as a catalog: {error}") from None


def _po_bytes(catalog: Catalog, *, ignore_obsolete: bool = False) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, ignore_obsolete=ignore_obsolete, **_WRITE_OPTIONS)
    return buffer.getvalue()


def _signature(catalog: Catalog) -> set[tuple[Any, ...]]:
    """What a template says to translators, ignoring its dates."""
    return {
        (_hashable(message.id), message.context, tuple(message.auto_comments))
        for message in catalog
        if message.id
    }


def _hashable(message_id: MessageId) -> str | tuple[str, ...]:
    return message_id if isinstance(message_id, str) else tuple(message_id)


def _ids(catalog: Catalog) -> set[tuple[str, str | None]]:
    return {(_singular(message.id), message.context) for message in catalog if message.id}


def _singular(message_id: MessageId) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _is_translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return bool(strings) and all(strings)


def _where(message: Message) -> str:
    return ", ".join(f"{filename}:{lineno}" for filename, lineno in message.locations[:3])


def _shown(message_id: MessageId, limit: int = 100) -> str:
    text = _singular(message_id)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# --- Commands' work -------------------------------------------------------------------------


@dataclass
class Extracted:
    messages: int
    added: int
    removed: int
    written: bool


def write_template(project: Project) -> Extracted:
    """Extract into the ``.pot``; it is left untouched when its messages did not change."""
    catalog = extract(project)
    new_ids = _ids(catalog)
    old_ids: set[tuple[str, str | None]] = set()
    if project.template.exists():
        previous = read_catalog(project.template)
        old_ids = _ids(previous)
        if _signature(previous) == _signature(catalog):
            return Extracted(len(new_ids), 0, 0, written=False)
    project.locale_dir.mkdir(parents=True, exist_ok=True)
    project.template.write_bytes(_po_bytes(catalog))
    return Extracted(len(new_ids), len(new_ids - old_ids), len(old_ids - new_ids), written=True)


@dataclass
class Updated:
    language: str
    path: Path
    created: bool
    untranslated: int
    fuzzy: int
    obsolete: int
    written: bool


def _fill_source_language(catalog: Catalog) -> None:
    """English: an untranslated or fuzzy entry takes its message id, which is English."""
    for message in catalog:
        if not message.id or (_is_translated(message) and not message.fuzzy):
            continue
        message.string = tuple(message.id) if isinstance(message.id, (list, tuple)) else message.id
        message.flags.discard("fuzzy")
        message.previous_id = []


def update_catalogs(project: Project, languages: Sequence[str], *, drop_obsolete: bool) -> list[Updated]:
    if not project.template.exists():
        raise CatalogError(
            f"there is no template at {project.template}: run `{project.command('extract')}` first"
        )
    template = read_catalog(project.template)
    stale = _ids(template) ^ _ids(extract(project))
    if stale:
        raise CatalogError(
            f"{project.template} does not match the code ({len(stale)} messages differ): "
            f"run `{project.command('extract')}` first, so no translation is set aside by mistake"
        )
    results = []
    for language in languages:
        path = project.catalog_path(language)
        created = not path.exists()
        if created:
            catalog = Catalog(
                locale=language,
                domain=project.domain,
                project=template.project,
                version=template.version,
                copyright_holder="Perron developers",
                last_translator="Perron developers",
                language_team=language,
                charset="utf-8",
                fuzzy=False,
            )
            before = b""
        else:
            catalog = read_catalog(path, language)
            before = path.read_bytes()
        catalog.update(template)
        if language == SOURCE_LANGUAGE:
            _fill_source_language(catalog)
        content = _po_bytes(catalog, ignore_obsolete=drop_obsolete)
        changed = content != before
        if changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        messages = [message for message in catalog if message.id]
        results.append(
            Updated(
                language,
                path,
                created,
                untranslated=sum(1 for message in messages if not _is_translated(message)),
                fuzzy=sum(1 for message in messages if message.fuzzy and _is_translated(message)),
                obsolete=0 if drop_obsolete else len(catalog.obsolete),
                written=changed,
            )
        )
    return results


def _format_errors(
    catalog: Catalog, wanted: set[tuple[str, str | None]] | None = None
) -> Iterator[tuple[Message, str]]:
    """Translations whose placeholders do not fit their message (they would fail on display)."""
    for message, errors in catalog.check():
        if wanted is not None and (_singular(message.id), message.context) not in wanted:
            continue
        for error in errors:
            yield message, str(error) if isinstance(error, TranslationError) else repr(error)


@dataclass
class Problem:
    severity: Severity
    kind: str
    message: str
    where: str = ""


@dataclass
class LanguageReport:
    language: str
    path: Path
    required: bool
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for problem in self.problems if problem.severity == "error")


@dataclass
class CheckReport:
    messages: int
    languages: list[LanguageReport]
    template_note: str | None

    @property
    def errors(self) -> int:
        return sum(report.errors for report in self.languages)


def check_catalogs(project: Project, required: Iterable[str] = ()) -> CheckReport:
    """Compare every language's catalog with the strings marked in the code.

    French is always required; ``required`` adds languages whose gaps are errors too. A
    broken placeholder or an unreadable catalog is an error in any language.
    """
    source = extract(project)
    wanted = _ids(source)
    must = {DEFAULT_LANGUAGE, *required}
    reports = []
    for language in LANGUAGES:
        path = project.catalog_path(language)
        report = LanguageReport(language, path, required=language in must)
        reports.append(report)
        gap: Severity = "error" if report.required else "warning"
        if not path.exists():
            report.problems.append(
                Problem(gap, "no catalog", f"{path} is missing", f"run `{project.command('update')}`")
            )
            continue
        try:
            catalog = read_catalog(path, language)
        except CatalogError as error:
            report.problems.append(Problem("error", "unreadable", str(error)))
            continue
        for message in sorted(source, key=lambda item: _singular(item.id)):
            if not message.id:
                continue
            entry = catalog.get(message.id, message.context)
            where = _where(message)
            if entry is None:
                report.problems.append(Problem(gap, "not in catalog", _shown(message.id), where))
            elif entry.fuzzy:
                report.problems.append(Problem(gap, "fuzzy, to review", _shown(message.id), where))
            elif not _is_translated(entry):
                report.problems.append(Problem(gap, "not translated", _shown(message.id), where))
        for entry, mismatch in _format_errors(catalog, wanted):
            report.problems.append(Problem("error", "placeholders", f"{_shown(entry.id)}: {mismatch}"))
    return CheckReport(len(wanted), reports, _template_note(project, wanted))


def _template_note(project: Project, wanted: set[tuple[str, str | None]]) -> str | None:
    if not project.template.exists():
        return f"{project.template} is missing: run `{project.command('extract')}`"
    try:
        listed = _ids(read_catalog(project.template))
    except CatalogError as error:
        return str(error)
    if listed == wanted:
        return None
    added, removed = len(wanted - listed), len(listed - wanted)
    return (
        f"{project.template.name} is out of date ({added} new and {removed} removed messages): "
        f"run `{project.command('extract')}` then `{project.command('update')}`"
    )


@dataclass
class Compiled:
    language: str
    path: Path
    translated: int
    total: int
    refused: list[str]


def compile_catalogs(project: Project, languages: Sequence[str]) -> list[Compiled]:
    results = []
    for language in languages:
        source = project.catalog_path(language)
        if not source.exists():
            continue
        catalog = read_catalog(source, language)
        messages = [message for message in catalog if message.id]
        refused = [f"{_shown(message.id)}: {error}" for message, error in _format_errors(catalog)]
        target = project.compiled_path(language)
        if not refused:
            buffer = io.BytesIO()
            write_mo(buffer, catalog, use_fuzzy=False)
            target.write_bytes(buffer.getvalue())
        translated = sum(1 for message in messages if _is_translated(message) and not message.fuzzy)
        results.append(Compiled(language, target, translated, len(messages), refused))
    return results


# --- Commands ---------------------------------------------------------------------------------

_module_option = click.option(
    "--module",
    "module",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A module package's folder (the one with its __init__.py); the platform by default.",
)
_language_option = click.option(
    "-l",
    "--language",
    "languages",
    multiple=True,
    type=click.Choice(LANGUAGES),
    help="Only this language (repeat for several); all by default.",
)


def _project(module: Path | None) -> Project:
    try:
        return platform_project() if module is None else module_project(module)
    except CatalogError as error:
        fail(str(error))


def _say(text: str) -> None:
    out.print(text, markup=False)


@click.group("i18n")
def i18n() -> None:
    """Translation catalogs: extract, update, compile and check them."""


@i18n.command("extract")
@_module_option
def extract_command(module: Path | None) -> None:
    """Gather the strings marked for translation into the catalog template (.pot)."""
    project = _project(module)
    try:
        result = write_template(project)
    except CatalogError as error:
        fail(str(error))
    if not result.written:
        _say(f"{project.template} is up to date: {result.messages} messages from {project.label}.")
        return
    _say(
        f"Wrote {project.template}: {result.messages} messages from {project.label} "
        f"({result.added} new, {result.removed} removed)."
    )
    _say(f"Next: `{project.command('update')}` to bring the changes into each language.")


@i18n.command("update")
@_module_option
@_language_option
@click.option("--drop-obsolete", is_flag=True, help="Remove translations of messages no longer in the code.")
def update_command(module: Path | None, languages: tuple[str, ...], drop_obsolete: bool) -> None:
    """Merge the template into each language's catalog, creating missing ones."""
    project = _project(module)
    try:
        results = update_catalogs(project, languages or LANGUAGES, drop_obsolete=drop_obsolete)
    except CatalogError as error:
        fail(str(error))
    for result in results:
        state = "created" if result.created else ("updated" if result.written else "unchanged")
        details = [f"{result.untranslated} to translate", f"{result.fuzzy} fuzzy to review"]
        if result.obsolete:
            details.append(f"{result.obsolete} obsolete kept")
        _say(f"{result.language}: {state} {result.path} ({', '.join(details)})")


@i18n.command("compile")
@_module_option
@_language_option
def compile_command(module: Path | None, languages: tuple[str, ...]) -> None:
    """Write .mo files beside the catalogs (Perron itself reads the .po files)."""
    project = _project(module)
    try:
        results = compile_catalogs(project, languages or LANGUAGES)
    except CatalogError as error:
        fail(str(error))
    if not results:
        fail(f"{project.label} has no catalog to compile: run `{project.command('update')}` first")
    refused = 0
    for result in results:
        if result.refused:
            refused += 1
            _say(f"{result.language}: not compiled, placeholders do not match:")
            for line in result.refused:
                _say(f"  {line}")
        else:
            _say(f"{result.language}: wrote {result.path} ({result.translated} of {result.total} translated)")
    if refused:
        fail(f"{refused} catalog(s) not compiled: fix the translations above")


@i18n.command("check")
@_module_option
@click.option(
    "--require",
    "required",
    multiple=True,
    type=click.Choice(LANGUAGES),
    help="Also fail on gaps in this language (repeat for several); French is always required.",
)
@click.option("--strict", is_flag=True, help="Fail on gaps in every language.")
def check_command(module: Path | None, required: tuple[str, ...], strict: bool) -> None:
    """Fail when a string in the code lacks its French translation (or a required one)."""
    project = _project(module)
    try:
        report = check_catalogs(project, LANGUAGES if strict else required)
    except CatalogError as error:
        fail(str(error))
    complete = []
    for language in report.languages:
        if not language.problems:
            complete.append(language.language)
            continue
        kind = "error" if language.errors else "warning"
        count = len(language.problems)
        _say(f"{language.language} ({language.path}): {count} {kind}{'' if count == 1 else 's'}")
        for problem in language.problems:
            where = f"  ({problem.where})" if problem.where else ""
            _say(f"  {problem.severity}: {problem.kind}: {problem.message}{where}")
    if report.template_note:
        _say(f"warning: {report.template_note}")
    if report.errors:
        languages = ", ".join(language.language for language in report.languages if language.errors)
        fail(f"{report.errors} translation problem(s) in {languages} for {project.label}")
    done = ", ".join(complete) if complete else "no language"
    _say(f"Checked {report.messages} messages of {project.label}: complete in {done}.")
