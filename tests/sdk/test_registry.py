"""Loading modules: a broken or incompatible one is reported and skipped, never fatal."""

from __future__ import annotations

import importlib.metadata

import pytest

from perron.modules.registry import ENTRY_POINT_GROUP, Registry


def entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch):
    """Make the environment's ``perron.modules`` entry points the given ones."""

    def install(*points: importlib.metadata.EntryPoint) -> Registry:
        monkeypatch.setattr(
            importlib.metadata,
            "entry_points",
            lambda group=None: [p for p in points if p.group == group],
        )
        registry = Registry()
        registry.load_installed()
        return registry

    return install


def test_a_broken_module_is_reported_and_the_others_load(installed) -> None:
    registry = installed(
        entry_point("ghost", "perron_ghost_module_that_does_not_exist:manifest"),
        entry_point("sample", "tests.sdk.sample_modules:good"),
    )
    assert set(registry.modules) == {"sample"}
    assert "failed to load" in registry.broken["ghost"].reason
    assert "ModuleNotFoundError" in registry.broken["ghost"].reason


def test_an_incompatible_module_is_refused_naming_both_versions(installed) -> None:
    registry = installed(entry_point("future", "tests.sdk.sample_modules:future"))
    assert not registry.modules
    assert (
        registry.broken["future"].reason == "module future 2.0.0 needs Perron >=9.0, but this is Perron 0.1.0"
    )


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("untitled", "titles must include French"),
        ("not_a_manifest", "not a perron.sdk.ModuleManifest"),
        ("needs_config", "every setting needs a default (missing: needed)"),
    ],
)
def test_a_malformed_manifest_is_refused_with_the_reason(installed, attribute: str, expected: str) -> None:
    registry = installed(entry_point(attribute, f"tests.sdk.sample_modules:{attribute}"))
    assert not registry.modules
    (broken,) = registry.broken.values()
    assert expected in broken.reason


def test_two_packages_claiming_one_name_keep_the_first(installed) -> None:
    registry = installed(
        entry_point("sample", "tests.sdk.sample_modules:good"),
        entry_point("sample-again", "tests.sdk.sample_modules:impostor"),
    )
    assert registry.modules["sample"].version == "1.2.3"
    assert "already provides a module named 'sample'" in registry.broken["sample"].reason
