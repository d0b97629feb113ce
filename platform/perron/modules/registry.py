"""Installed modules: found through entry points, checked, wired into the platform.

Loading never lets one module take the platform down: a module whose entry point fails to
import, whose manifest is malformed, or which declares itself incompatible with this
Perron version is reported (log, ``perron modules list``) and skipped; the others load.
"""

from __future__ import annotations

import importlib.metadata
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ValidationError

from perron import __version__, signals
from perron.db import migrate
from perron.i18n import register_catalogs
from perron.jobs.registry import JOBS
from perron.logging import get_logger
from perron.modules.manifest import NAME, RESERVED_NAMES, ModuleManifest
from perron.tenancy.models import LANGUAGES
from perron.tenancy.settings import NAMESPACES
from perron.web.templating import register_template_dir

log = get_logger("perron.modules")

ENTRY_POINT_GROUP = "perron.modules"


class EmptySettings(BaseModel):
    """Settings of a module that declares none."""


@dataclass(frozen=True)
class BrokenModule:
    name: str
    source: str
    reason: str


@dataclass
class Registry:
    modules: dict[str, ModuleManifest] = field(default_factory=dict)
    broken: dict[str, BrokenModule] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)
    """Module name -> the distribution that installed it."""
    loaded: bool = False

    def get(self, name: str) -> ModuleManifest | None:
        return self.modules.get(name)

    def settings_schema(self, name: str) -> type[BaseModel]:
        manifest = self.modules[name]
        return manifest.settings or EmptySettings

    def ordered(self, names: Iterable[str] | None = None) -> list[ModuleManifest]:
        """Modules in a stable order (by name), optionally only those named."""
        wanted = None if names is None else set(names)
        return [m for key, m in sorted(self.modules.items()) if wanted is None or key in wanted]

    def add(self, manifest: Any, *, source: str = "code", distribution: str = "") -> ModuleManifest | None:
        """Check a manifest and wire it in; a refused one is recorded in ``broken``."""
        name = getattr(manifest, "name", None) or source
        problems = check(manifest)
        if not problems and manifest.name in self.modules and self.modules[manifest.name] is not manifest:
            problems = [f"another installed package already provides a module named {manifest.name!r}"]
        if problems:
            reason = "; ".join(problems)
            self.broken[str(name)] = BrokenModule(str(name), source, reason)
            log.error("module.refused", module=name, source=source, reason=reason)
            return None
        if manifest.name in self.modules:
            return manifest  # type: ignore[no-any-return]
        _wire(manifest)
        self.modules[manifest.name] = manifest
        self.distributions[manifest.name] = distribution
        self.broken.pop(manifest.name, None)
        log.info("module.loaded", module=manifest.name, version=manifest.version)
        return manifest  # type: ignore[no-any-return]

    def load_installed(self) -> None:
        """Load every module installed in the environment (once per process)."""
        if self.loaded:
            return
        self.loaded = True
        for entry_point in sorted(
            importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
        ):
            source = f"{entry_point.name} = {entry_point.value}"
            distribution = entry_point.dist.name if entry_point.dist else ""
            try:
                loaded = entry_point.load()
                manifest = loaded() if callable(loaded) and not isinstance(loaded, ModuleManifest) else loaded
            except Exception as error:
                reason = f"its package failed to load: {type(error).__name__}: {error}"
                self.broken[entry_point.name] = BrokenModule(entry_point.name, source, reason)
                log.error(
                    "module.broken",
                    module=entry_point.name,
                    source=source,
                    reason=reason,
                    trace="".join(traceback.format_exception(error)[-3:]),
                )
                continue
            self.add(manifest, source=source, distribution=distribution)


def check(manifest: Any) -> list[str]:
    """What is wrong with a manifest, in words a module author can act on."""
    if not isinstance(manifest, ModuleManifest):
        return [f"the entry point gives {type(manifest).__name__}, not a perron.sdk.ModuleManifest"]
    problems: list[str] = []
    if not isinstance(manifest.name, str) or not NAME.match(manifest.name):
        problems.append(
            f"name {manifest.name!r} must be 2-41 lower-case letters, digits or '_', starting with a letter"
        )
    elif manifest.name in RESERVED_NAMES:
        problems.append(f"name {manifest.name!r} is reserved by the platform")
    try:
        Version(manifest.version)
    except (InvalidVersion, TypeError):
        problems.append(f"version {manifest.version!r} is not a version number (PEP 440)")
    try:
        wanted = SpecifierSet(manifest.platform)
    except (InvalidSpecifier, TypeError):
        problems.append(f"platform {manifest.platform!r} is not a version range such as '>=0.1,<0.2'")
    else:
        if Version(__version__) not in wanted:
            problems.append(
                f"module {manifest.name} {manifest.version} needs Perron {manifest.platform}, "
                f"but this is Perron {__version__}"
            )
    if not manifest.titles or "fr" not in manifest.titles:
        problems.append("titles must include French ('fr')")
    unknown = sorted(set(manifest.titles) - set(LANGUAGES))
    if unknown:
        problems.append(f"titles in unknown languages: {', '.join(unknown)}")
    declared_settings: Any = manifest.settings  # third-party code: check what it really gave
    if declared_settings is not None:
        if not (isinstance(declared_settings, type) and issubclass(declared_settings, BaseModel)):
            problems.append("settings must be a pydantic model class")
        else:
            try:
                declared_settings()
            except ValidationError as error:
                missing = ", ".join(str(e["loc"][0]) for e in error.errors())
                problems.append(f"every setting needs a default (missing: {missing})")
    names = [action.name for action in manifest.actions]
    if len(names) != len(set(names)):
        problems.append("two actions have the same name")
    for label, folder in (
        ("templates", manifest.templates),
        ("static", manifest.static),
        ("locale", manifest.locale),
        ("migrations", manifest.migrations),
    ):
        if folder is not None and not Path(folder).is_dir():
            problems.append(f"{label} folder {folder} does not exist")
    if manifest.locale is not None and not manifest.locale_domain:
        problems.append("locale needs locale_domain (the catalogs' file name)")
    for fn in manifest.jobs:
        job_name = getattr(fn, "job_name", None)
        if job_name not in JOBS:
            problems.append(f"job {getattr(fn, '__qualname__', fn)!r} is not declared with @perron.jobs.job")
        elif JOBS[job_name].module not in (None, manifest.name):
            problems.append(f"job {job_name!r} belongs to module {JOBS[job_name].module!r}")
    for receiver in manifest.receivers:
        signal: Any = receiver.signal
        if not isinstance(signal, signals.Signal):
            problems.append(f"receiver {receiver.handler!r} listens to something that is not a signal")
    widget_names = [widget.name for widget in manifest.widgets]
    if len(widget_names) != len(set(widget_names)):
        problems.append("two widgets have the same name")
    return problems


def _wire(manifest: ModuleManifest) -> None:
    NAMESPACES[manifest.namespace] = manifest.settings or EmptySettings
    if manifest.templates is not None:
        register_template_dir(Path(manifest.templates))
    if manifest.locale is not None and manifest.locale_domain:
        register_catalogs(manifest.locale_domain, Path(manifest.locale))
    if manifest.migrations is not None:
        migrate.add_version_location(Path(manifest.migrations))
    for fn in manifest.jobs:
        spec = JOBS[fn.job_name]  # type: ignore[attr-defined]
        if spec.module is None:
            JOBS[spec.name] = replace(spec, module=manifest.name)
    for receiver in manifest.receivers:
        receiver.signal.connect(receiver.handler, module=manifest.name)


registry = Registry()
