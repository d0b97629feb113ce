"""``perron i18n``: catalogs of the platform and of a module, from the strings in the code to
translations a page shows; ``check`` fails when French is incomplete (this is what fails CI)."""

from __future__ import annotations

import gettext as stdlib_gettext
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from click.testing import CliRunner, Result

import perron.i18n
from perron.cli import main

Run = Callable[..., Result]


@pytest.fixture
def run() -> Run:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["i18n", *args], catch_exceptions=False)

    return invoke


def test_platform_catalogs_are_complete_in_the_national_languages(run: Run) -> None:
    result = run("check", "--require", "nl", "--require", "de")
    assert result.exit_code == 0, result.output
    assert "complete in fr, nl, de" in result.output


MODULE_CODE = """\
from perron.i18n import gettext as _, lazy, ngettext

TITLE = lazy("Repair café")


def describe(count: int) -> str:
    # Translators: shown on the module's card on the home page
    return ngettext("%(count)s repair", "%(count)s repairs", count) % {"count": count}


def greet() -> str:
    return _("Welcome to the workshop")
"""

MODULE_TEMPLATE = """\
<h1>{{ _("Bring your broken things") }}</h1>
<p>{{ _("Open on %(day)s", day=day) }}</p>
"""

FRENCH = {
    "Repair café": "Repair café",
    "Welcome to the workshop": "Bienvenue à l'atelier",
    "Bring your broken things": "Apportez vos objets cassés",
    "Open on %(day)s": "Ouvert le %(day)s",
    "%(count)s repair": ("%(count)s réparation", "%(count)s réparations"),
}


@pytest.fixture
def module(tmp_path: Path) -> Path:
    package = tmp_path / "perron_repair"
    (package / "templates" / "perron_repair").mkdir(parents=True)
    (package / "__init__.py").write_text(MODULE_CODE)
    (package / "templates" / "perron_repair" / "index.html").write_text(MODULE_TEMPLATE)
    return package


def po_path(package: Path, language: str) -> Path:
    return package / "locale" / language / "LC_MESSAGES" / f"{package.name}.po"


def translate(package: Path, language: str, texts: dict[str, str | tuple[str, str]]) -> None:
    """What a translator does: fill msgstr and clear the fuzzy flag."""
    path = po_path(package, language)
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    for message in catalog:
        key = message.id if isinstance(message.id, str) else message.id[0]
        if message.id and key in texts:
            message.string = texts[key]
            message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog, width=0, no_location=True, sort_output=True)


def test_a_module_goes_from_code_to_translated_catalogs(run: Run, module: Path) -> None:
    extracted = run("extract", "--module", str(module))
    assert extracted.exit_code == 0, extracted.output
    template = module / "locale" / "perron_repair.pot"
    assert "5 messages from module perron_repair (5 new, 0 removed)" in extracted.output
    pot = template.read_text()
    for text in ["Repair café", "Welcome to the workshop", "Bring your broken things", "Open on %(day)s"]:
        assert f'msgid "{text}"' in pot
    assert 'msgid_plural "%(count)s repairs"' in pot
    assert "#. Translators: shown on the module's card on the home page" in pot

    again = run("extract", "--module", str(module))
    assert "is up to date" in again.output
    assert template.read_text() == pot  # not rewritten for a new date alone

    updated = run("update", "--module", str(module))
    assert updated.exit_code == 0, updated.output
    for language in ("fr", "nl", "de", "en"):
        assert po_path(module, language).exists()
        assert f"{language}: created" in updated.output
    assert "fr: created" in updated.output and "(5 to translate" in updated.output
    english = po_path(module, "en").read_text()
    assert 'msgid "Welcome to the workshop"\nmsgstr "Welcome to the workshop"' in english
    assert 'msgstr[1] "%(count)s repairs"' in english

    missing = run("check", "--module", str(module))
    assert missing.exit_code == 1
    assert "fr (" in missing.output and "5 errors" in missing.output
    assert "error: not translated: 'Welcome to the workshop'  (__init__.py:12)" in missing.output
    assert "templates/perron_repair/index.html:1" in missing.output
    assert "translation problem(s) in fr for module perron_repair" in missing.output

    translate(module, "fr", FRENCH)
    complete = run("check", "--module", str(module))
    assert complete.exit_code == 0, complete.output
    assert "warning: not translated: 'Welcome to the workshop'" in complete.output  # nl and de
    assert "complete in fr, en" in complete.output

    assert run("check", "--module", str(module), "--require", "nl").exit_code == 1
    assert run("check", "--module", str(module), "--strict").exit_code == 1


def test_a_changed_string_waits_for_review_and_keeps_its_old_translation(run: Run, module: Path) -> None:
    run("extract", "--module", str(module))
    run("update", "--module", str(module))
    translate(module, "fr", FRENCH)
    assert run("check", "--module", str(module)).exit_code == 0

    source = module / "__init__.py"
    source.write_text(source.read_text().replace("Welcome to the workshop", "Welcome to our workshop"))
    stale = run("check", "--module", str(module))
    assert stale.exit_code == 1
    assert "error: not in catalog: 'Welcome to our workshop'" in stale.output
    assert "perron_repair.pot is out of date (1 new and 1 removed messages)" in stale.output

    refused = run("update", "--module", str(module))
    assert refused.exit_code == 1
    assert "does not match the code" in refused.output

    run("extract", "--module", str(module))
    updated = run("update", "--module", str(module))
    assert "fr: updated" in updated.output and "1 fuzzy to review" in updated.output
    french = po_path(module, "fr").read_text()
    assert '#, fuzzy\nmsgid "Welcome to our workshop"\nmsgstr "Bienvenue à l\'atelier"' in french
    fuzzy = run("check", "--module", str(module))
    assert fuzzy.exit_code == 1
    assert "error: fuzzy, to review: 'Welcome to our workshop'" in fuzzy.output
    # English follows its message ids by itself.
    assert 'msgid "Welcome to our workshop"\nmsgstr "Welcome to our workshop"' in (
        po_path(module, "en").read_text()
    )

    translate(module, "fr", {"Welcome to our workshop": "Bienvenue dans notre atelier"})
    assert run("check", "--module", str(module)).exit_code == 0


def test_a_broken_placeholder_fails_in_any_language_and_is_not_compiled(run: Run, module: Path) -> None:
    run("extract", "--module", str(module))
    run("update", "--module", str(module))
    translate(module, "fr", FRENCH)
    translate(module, "nl", {"Open on %(day)s": "Open op %(dag)s"})

    checked = run("check", "--module", str(module))
    assert checked.exit_code == 1
    assert "error: placeholders: 'Open on %(day)s'" in checked.output
    assert "in nl for module perron_repair" in checked.output

    compiled = run("compile", "--module", str(module))
    assert compiled.exit_code == 1
    assert "nl: not compiled, placeholders do not match" in compiled.output
    assert not po_path(module, "nl").with_suffix(".mo").exists()
    assert po_path(module, "fr").with_suffix(".mo").exists()


def test_compiled_and_in_memory_catalogs_give_the_same_translations(
    run: Run, module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("extract", "--module", str(module))
    run("update", "--module", str(module))
    translate(module, "fr", FRENCH)

    compiled = run("compile", "--module", str(module), "-l", "fr")
    assert compiled.exit_code == 0, compiled.output
    assert "fr: wrote" in compiled.output and "(5 of 5 translated)" in compiled.output
    with po_path(module, "fr").with_suffix(".mo").open("rb") as handle:
        mo = stdlib_gettext.GNUTranslations(handle)
    assert mo.gettext("Welcome to the workshop") == "Bienvenue à l'atelier"
    assert mo.ngettext("%(count)s repair", "%(count)s repairs", 3) == "%(count)s réparations"

    monkeypatch.setattr(perron.i18n, "_catalog_dirs", [])
    perron.i18n.register_catalogs(module.name, module / "locale")
    try:
        with perron.i18n.using_language("fr"):
            assert perron.i18n.gettext("Welcome to the workshop") == "Bienvenue à l'atelier"
            assert perron.i18n.gettext("Skip to main content") == "Aller au contenu principal"
    finally:
        perron.i18n.translations.cache_clear()


def test_update_and_check_need_a_template_first(run: Run, module: Path) -> None:
    update = run("update", "--module", str(module))
    assert update.exit_code == 1
    assert "run `perron i18n extract --module" in update.output
    check = run("check", "--module", str(module))
    assert check.exit_code == 1
    assert "no catalog:" in check.output
    assert not (module / "locale").exists()


def test_a_damaged_catalog_is_reported_not_skipped(run: Run, module: Path) -> None:
    run("extract", "--module", str(module))
    run("update", "--module", str(module))
    translate(module, "fr", FRENCH)
    german = po_path(module, "de")
    german.write_text(german.read_text() + "\n<<<<<<< HEAD\n")  # a merge left half done
    result = run("check", "--module", str(module))
    assert result.exit_code == 1
    assert "error: unreadable:" in result.output and "perron_repair.po" in result.output
    assert "in de for module perron_repair" in result.output


def test_refuses_a_folder_that_is_not_a_package(run: Run, tmp_path: Path) -> None:
    (tmp_path / "loose").mkdir()
    result = run("extract", "--module", str(tmp_path / "loose"))
    assert result.exit_code == 1
    assert "is not a Python package (it has no __init__.py)" in result.output
    assert not (tmp_path / "loose" / "locale").exists()


def test_a_template_that_does_not_parse_is_named(run: Run, module: Path) -> None:
    broken = module / "templates" / "perron_repair" / "broken.html"
    broken.write_text(
        textwrap.dedent("""\
        <p>{{ _("Fine") }}</p>
        {% if %}
    """)
    )
    result = run("extract", "--module", str(module))
    assert result.exit_code == 1
    assert "templates/perron_repair/broken.html, line 2: the template does not parse" in result.output
    assert not (module / "locale").exists()
