"""``perron modules new``: a new module package that installs, migrates and passes its tests.

The package is made from the templates in ``perron/scaffold/`` (Jinja with ``[[ ]]`` and
``[% %]`` as delimiters, so the module's own Jinja templates pass through untouched). It is a
distribution of its own (``perron-<name>``, package ``perron_<name>``) with the shape of the
news module, smaller: a manifest, one model and its first migration, a public page, an admin
page with a form, catalogs in French, Dutch, German and English, and tests in two communes.

Everything is checked before anything is written; if writing fails half-way, the folder is
removed again.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import importlib.metadata
import importlib.util
import json
import shutil
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import click
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from packaging.version import Version

from perron import __version__
from perron.cli.common import fail, out
from perron.i18n import LANGUAGES
from perron.modules.manifest import NAME, RESERVED_NAMES

MAX_NAME_LENGTH = 30
"""Shorter than the platform allows (41): the database names constraints after the module's
tables (``fk_<name>_items_tenant_id_communes``), and PostgreSQL stops at 63 characters."""
MAX_TITLE_LENGTH = 60
FORBIDDEN_IN_TITLES = '"\\{}<>%'
"""Characters a title may not hold: they would need escaping in code, templates or catalogs."""
TRANSLATED = ("fr", "nl", "de")
"""Languages whose catalogs the scaffold fills (English is the message ids themselves)."""


class ScaffoldError(Exception):
    """A module that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class NewModule:
    name: str
    titles: dict[str, str]
    directory: Path
    """Where the distribution's folder is made."""

    @property
    def package(self) -> str:
        return f"perron_{self.name}"

    @property
    def distribution(self) -> str:
        return f"perron-{self.name.replace('_', '-')}"

    @property
    def folder(self) -> Path:
        return self.directory / self.package

    @property
    def table(self) -> str:
        return f"{self.name}_items"


def scaffold_dir() -> Path:
    return Path(str(resources.files("perron") / "scaffold"))


def platform_range(version: str = __version__) -> str:
    """This Perron's minor series, as modules declare it: ``>=0.1,<0.2``."""
    release = Version(version).release
    major, minor = release[0], release[1] if len(release) > 1 else 0
    return f">={major}.{minor},<{major}.{minor + 1}"


# --- Checks ------------------------------------------------------------------------------------


def check_name(name: str) -> None:
    """The rules of a manifest's name, a little stricter, and nothing installed by that name."""
    if not NAME.match(name):
        raise ScaffoldError(
            f"{name!r} cannot name a module: use 2 to {MAX_NAME_LENGTH} lower-case letters, digits "
            "or '_', starting with a letter (it becomes the URL /<name> and the package perron_<name>)"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"{name!r} is {len(name)} characters long: keep it to {MAX_NAME_LENGTH} at most "
            "(the database names its constraints after the module's tables)"
        )
    if name.endswith("_") or "__" in name:
        raise ScaffoldError(f"{name!r} may not end with '_' or hold '__': write words joined by one '_'")
    if name in RESERVED_NAMES:
        raise ScaffoldError(f"{name!r} is reserved by the platform (the URL /{name} is its own)")
    from perron.modules.registry import registry

    registry.load_installed()
    if name in registry.modules or name in registry.broken:
        source = registry.distributions.get(name) or (
            registry.broken[name].source if name in registry.broken else ""
        )
        installed = f" ({source})" if source else ""
        raise ScaffoldError(f"a module named {name!r} is already installed{installed}: choose another name")
    package = f"perron_{name}"
    if importlib.util.find_spec(package) is not None:
        raise ScaffoldError(f"a Python package {package} can already be imported here: choose another name")
    distribution = f"perron-{name.replace('_', '-')}"
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return
    raise ScaffoldError(f"the package {distribution} is already installed here: choose another name")


def parse_titles(values: Iterable[str], name: str) -> dict[str, str]:
    """``LANG=TITLE`` options; a language left out gets the English title, else the name."""
    given: dict[str, str] = {}
    for value in values:
        language, separator, raw = value.partition("=")
        language = language.strip()
        if not separator:
            raise ScaffoldError(f"--title {value!r}: write it as LANG=TITLE, such as fr=Stationnement")
        if language not in LANGUAGES:
            raise ScaffoldError(f"--title {value!r}: {language!r} is not one of {', '.join(LANGUAGES)}")
        if language in given:
            raise ScaffoldError(f"--title: the {language} title is given twice")
        title = " ".join(unicodedata.normalize("NFC", raw).split())
        if not title:
            raise ScaffoldError(f"--title {value!r}: the {language} title is empty")
        if len(title) > MAX_TITLE_LENGTH:
            raise ScaffoldError(
                f"--title: the {language} title has {len(title)} characters; keep it to {MAX_TITLE_LENGTH}"
            )
        bad = sorted({c for c in title if c in FORBIDDEN_IN_TITLES or unicodedata.category(c)[0] == "C"})
        if bad:
            shown = " ".join(repr(c) for c in bad)
            raise ScaffoldError(f"--title: the {language} title may not contain {shown}")
        given[language] = title
    fallback = given.get("en") or name.replace("_", " ").capitalize()
    return {language: given.get(language, fallback) for language in LANGUAGES}


def in_perron_workspace(folder: Path) -> Path | None:
    """The Perron checkout whose uv workspace ``folder`` would join (``modules/*``), if any.

    A member of that workspace must take Perron from the workspace, or ``uv lock`` refuses it.
    """
    folder = folder.resolve()
    for root in folder.parents:
        pyproject = root / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None
        workspace = data.get("tool", {}).get("uv", {}).get("workspace")
        if workspace is None:
            continue
        if data.get("project", {}).get("name") != "perron":
            return None
        relative = PurePosixPath(folder.relative_to(root).as_posix())
        member = _matches(relative, workspace.get("members")) and not _matches(
            relative, workspace.get("exclude")
        )
        return root if member else None
    return None


def _matches(relative: PurePosixPath, patterns: Any) -> bool:
    """Whether a folder is one of the workspace's glob patterns (``modules/*``)."""
    return any(
        isinstance(pattern, str)
        and len(PurePosixPath(pattern).parts) == len(relative.parts)
        and fnmatch.fnmatchcase(str(relative), pattern)
        for pattern in patterns or []
    )


# --- Rendering ---------------------------------------------------------------------------------


def _literal(value: str) -> str:
    """A double-quoted string literal, valid in Python, TOML and Jinja."""
    return json.dumps(value, ensure_ascii=False)


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(scaffold_dir())),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - writes source files, not HTML pages
    )
    environment.filters.update(py=_literal, toml=_literal, jinja=_literal)
    return environment


def _files(module: NewModule, today: dt.date) -> list[tuple[str, Path]]:
    """(template, file written) pairs, relative to the scaffold and to the module's folder."""
    package = Path(module.package)
    return [
        ("pyproject.toml.jinja", Path("pyproject.toml")),
        ("README.md.jinja", Path("README.md")),
        ("gitignore.jinja", Path(".gitignore")),
        ("package/__init__.py.jinja", package / "__init__.py"),
        ("package/models.py.jinja", package / "models.py"),
        ("package/service.py.jinja", package / "service.py"),
        ("package/views.py.jinja", package / "views.py"),
        ("package/admin.py.jinja", package / "admin.py"),
        ("package/templates/list.html.jinja", package / "templates" / module.name / "list.html"),
        ("package/templates/admin.html.jinja", package / "templates" / module.name / "admin.html"),
        (
            "package/migrations/initial.py.jinja",
            package / "migrations" / f"{today:%Y%m%d}_{module.name}_0001_initial.py",
        ),
        ("tests/test_module.py.jinja", Path("tests") / f"test_{module.name}.py"),
    ]


def render(module: NewModule, *, now: dt.datetime | None = None) -> dict[Path, str]:
    """Every source file of the new module (catalogs excepted), by path in its folder."""
    now = now or dt.datetime.now(dt.UTC)
    environment = _environment()
    context = {
        "name": module.name,
        "package": module.package,
        "distribution": module.distribution,
        "table": module.table,
        "titles": module.titles,
        "description": f"{module.titles['en']}: a Perron module (staff add items, everyone reads them)",
        "platform_range": platform_range(),
        "platform_requirement": f"perron{platform_range()}",
        "workspace_source": in_perron_workspace(module.folder) is not None,
        "created": now.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return {
        target: environment.get_template(template).render(context)
        for template, target in _files(module, now.date())
    }


def translations() -> dict[str, dict[str, str]]:
    """The scaffold's fixed strings in French, Dutch and German, by English message id."""
    with (scaffold_dir() / "messages.toml").open("rb") as handle:
        return tomllib.load(handle)


def write_catalogs(module: NewModule) -> None:
    """Extract the module's strings and write its catalogs, translated: the scaffold's fixed
    strings from ``messages.toml``, the module's title from ``--title``."""
    from perron.cli import i18n

    project = i18n.module_project(module.folder / module.package)
    i18n.write_template(project)
    i18n.update_catalogs(project, LANGUAGES, drop_obsolete=True)
    known = translations()
    for language in TRANSLATED:
        path = project.catalog_path(language)
        catalog = i18n.read_catalog(path, language)
        for message in catalog:
            if not message.id:
                continue
            if message.id == module.titles["en"]:
                message.string = module.titles[language]
            elif isinstance(message.id, str) and language in known.get(message.id, {}):
                message.string = known[message.id][language]
            else:
                raise ScaffoldError(f"the scaffold has no {language} translation of {message.id!r}")
        path.write_bytes(i18n._po_bytes(catalog))


def generate(module: NewModule, *, now: dt.datetime | None = None) -> list[Path]:
    """Write the module's folder; returns the files written, relative to it."""
    if module.folder.exists():
        raise ScaffoldError(f"{module.folder} already exists: nothing was written")
    files = render(module, now=now)
    module.folder.mkdir(parents=True)
    try:
        for path, content in files.items():
            target = module.folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        write_catalogs(module)
    except BaseException:
        shutil.rmtree(module.folder, ignore_errors=True)
        raise
    return sorted(path.relative_to(module.folder) for path in module.folder.rglob("*") if path.is_file())


# --- Command -----------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@click.command("new")
@click.argument("name")
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("modules"),
    show_default=True,
    help="Folder in which the module's own folder (perron_<name>) is made.",
)
@click.option(
    "--title",
    "titles",
    multiple=True,
    metavar="LANG=TITLE",
    help="The module's title in a language (fr, nl, de, en); repeat for each. Default: the name.",
)
def new(name: str, directory: Path, titles: tuple[str, ...]) -> None:
    """Make a new module package: it installs, migrates and passes its tests as it is."""
    try:
        check_name(name)
        module = NewModule(name, parse_titles(titles, name), directory)
        if directory.exists() and not directory.is_dir():
            raise ScaffoldError(f"{directory} is a file, not a folder")
        written = generate(module)
    except ScaffoldError as error:
        fail(str(error))
    except OSError as error:
        fail(f"could not write the module: {error}")
    folder = _shown(module.folder)
    out.print(f"Created module {name} in {folder} (distribution {module.distribution}):", markup=False)
    for path in written:
        out.print(f"  {path.as_posix()}", markup=False)
    workspace = in_perron_workspace(module.folder)
    if workspace is not None:
        out.print(
            f"It is a member of Perron's uv workspace ({_shown(workspace)}): run `uv lock` before the next "
            "`uv sync --frozen`.",
            markup=False,
        )
    out.print("Next:", markup=False)
    for step in (
        f"cd {folder}",
        "uv pip install -e .",
        "perron db upgrade",
        "pytest",
    ):
        out.print(f"  {step}", markup=False)
