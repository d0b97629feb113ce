"""Tenant definition files: every problem is reported with its file and key."""

from pathlib import Path

import pytest

from perron.tenancy.definitions import DefinitionError, load_definitions

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
slug = "{slug}"
nis_code = "{nis}"
names = {{ fr = "Commune {slug}" }}
languages = ["fr"]
domains = ["{slug}.test"]
"""


def write(folder: Path, slug: str, text: str) -> Path:
    (folder / slug).mkdir(parents=True, exist_ok=True)
    path = folder / slug / "tenant.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(folder)
    return caught.value.problems


def test_the_demo_communes_load() -> None:
    definitions = load_definitions(ROOT / "tenants", installed_modules=frozenset({"news"}))
    assert {tenant.slug for _, tenant in definitions.tenants} == {"hannut", "la-louviere", "andenne"}
    assert {body.slug for body in definitions.intercommunales} == {"bep", "idea", "spi"}
    hannut = next(tenant for _, tenant in definitions.tenants if tenant.slug == "hannut")
    assert hannut.languages == ["fr", "nl"]
    assert hannut.domains[0] == "hannut.localhost"


def test_unknown_keys_and_wrong_types_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path, "hannut", GOOD.format(slug="hannut", nis="64034") + 'colour = "green"\nlanguages2 = 1\n'
    )
    write(
        tmp_path,
        "andenne",
        GOOD.format(slug="andenne", nis="92003").replace('languages = ["fr"]', 'languages = "fr"'),
    )
    found = problems(tmp_path)
    assert f"{path}: colour: unknown key (check its spelling)" in found
    assert f"{path}: languages2: unknown key (check its spelling)" in found
    assert any("andenne/tenant.toml: languages:" in problem for problem in found)


def test_nis_code_written_as_a_number_says_to_quote_it(tmp_path: Path) -> None:
    path = write(tmp_path, "hannut", GOOD.format(slug="hannut", nis="64034").replace('"64034"', "64034"))
    assert problems(tmp_path) == [f'{path}: nis_code: must be text: write it in quotes, "64034"']


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        (('nis_code = "64034"', 'nis_code = "6403"'), "nis_code", "exactly five digits"),
        (('domains = ["hannut.test"]', 'domains = ["hannut..test"]'), "domains", "not a valid host name"),
        (('domains = ["hannut.test"]', "domains = []"), "domains", "at least 1"),
        (('languages = ["fr"]', 'languages = ["fr", "it"]'), "languages", "'it' is not offered"),
        (('slug = "hannut"', 'slug = "Hannut"'), "slug", "not a valid slug"),
    ],
)
def test_malformed_values_are_named(tmp_path: Path, change: tuple[str, str], key: str, says: str) -> None:
    path = write(tmp_path, "hannut", GOOD.format(slug="hannut", nis="64034").replace(*change))
    found = problems(tmp_path)
    assert any(problem.startswith(f"{path}: {key}") and says in problem for problem in found), found


def test_broken_toml_missing_keys_and_folder_mismatch(tmp_path: Path) -> None:
    broken = write(tmp_path, "andenne", "slug = \n")
    missing = write(tmp_path, "hannut", 'slug = "hannut"\n')
    mismatch = write(tmp_path, "ciney", GOOD.format(slug="dinant", nis="91034"))
    found = problems(tmp_path)
    assert any(problem.startswith(f"{broken}: not valid TOML") for problem in found)
    assert f"{missing}: nis_code: required key is missing" in found
    assert f"{mismatch}: slug: 'dinant' differs from its folder name 'ciney'" in found


def test_collisions_between_files_are_found(tmp_path: Path) -> None:
    write(tmp_path, "hannut", GOOD.format(slug="hannut", nis="64034"))
    write(
        tmp_path, "andenne", GOOD.format(slug="andenne", nis="64034").replace("andenne.test", "hannut.test")
    )
    found = problems(tmp_path)
    assert any(problem.startswith("nis_code '64034' appears in several definitions") for problem in found)
    assert any(
        problem.startswith("domains 'hannut.test' appears in several definitions") for problem in found
    )


def test_names_must_cover_languages_and_modules_must_be_installed(tmp_path: Path) -> None:
    text = GOOD.format(slug="hannut", nis="64034").replace('languages = ["fr"]', 'languages = ["fr", "nl"]')
    path = write(tmp_path, "hannut", text)
    found = problems(tmp_path)
    assert any(problem.startswith(f"{path}:") and "missing for nl" in problem for problem in found)
    path = write(
        tmp_path, "hannut", GOOD.format(slug="hannut", nis="64034") + "[modules.mobility]\nenabled = true\n"
    )
    assert problems(tmp_path) == [f"{path}: modules.mobility: no module of that name is installed"]


def test_intercommunales_file_is_checked(tmp_path: Path) -> None:
    (tmp_path / "intercommunales.toml").write_text(
        '[[intercommunale]]\nslug = "BEP"\nnames = { fr = "BEP" }\n'
    )
    found = problems(tmp_path)
    assert any("intercommunale[0].slug" in problem and "not a valid slug" in problem for problem in found)


def test_a_module_that_is_not_installed_is_named() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(ROOT / "tenants", installed_modules=frozenset())
    assert any(
        "modules.news: no module of that name is installed" in problem for problem in caught.value.problems
    )
