"""Templates: looked up in the theme, then the modules, then the platform.

A theme package (``themes/<name>/templates``) may override any template; a module's
templates live under ``<module>/templates/<module>/``; the platform's under
``perron/web/templates/perron/``. Communes never supply templates, only data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape

from perron import __version__
from perron.i18n import current_language, gettext, language_name, ngettext

_module_template_dirs: list[Path] = []


def register_template_dir(path: Path) -> None:
    """Add a module's template folder, consulted after the theme and before the platform."""
    if path not in _module_template_dirs:
        _module_template_dirs.append(path)


def create_environment(theme_dirs: Sequence[Path] = ()) -> Environment:
    loaders: list[Any] = [FileSystemLoader(str(path)) for path in theme_dirs if path.is_dir()]
    loaders += [FileSystemLoader(str(path)) for path in _module_template_dirs]
    loaders.append(PackageLoader("perron.web", "templates"))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.globals.update(
        language_name=language_name,
        current_language=current_language,
        perron_version=__version__,
    )
    return environment


def theme_template_dirs(themes_dir: Path, theme: str = "default") -> list[Path]:
    return [themes_dir / theme / "templates"]


def render(environment: Environment, template: str, context: Mapping[str, Any]) -> str:
    return environment.get_template(template).render(context)
