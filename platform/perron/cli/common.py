"""Helpers shared by the ``perron`` commands."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from rich.console import Console

from perron.config import Settings
from perron.db.scope import IsolationError
from perron.errors import PerronError

P = ParamSpec("P")
R = TypeVar("R")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def settings_from(ctx: click.Context) -> Settings:
    settings: Settings = ctx.ensure_object(dict)["settings"]
    return settings


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]Error:[/] {message}", markup=True)
    sys.exit(code)


def run_async(fn: Callable[P, Awaitable[R]]) -> Callable[P, R]:
    """Run an async command; a refused input is reported in words, not as a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asyncio.run(fn(*args, **kwargs))  # type: ignore[arg-type]
        except PerronError as error:
            fail(error.message)
        except IsolationError as error:
            fail(f"refused: {error}")

    return wrapper


def parse_pairs(values: tuple[str, ...], option: str) -> dict[str, Any]:
    """``--name fr=Hannut --name nl=Hannuit`` -> ``{"fr": "Hannut", "nl": "Hannuit"}``."""
    pairs: dict[str, Any] = {}
    for value in values:
        key, separator, text = value.partition("=")
        if not separator or not key:
            raise click.BadParameter(
                f"{value!r}: write it as language=text, such as fr=Hannut", param_hint=option
            )
        pairs[key.strip()] = text
    return pairs
