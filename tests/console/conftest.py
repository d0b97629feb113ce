"""Fixtures of the console tests: the harness over the suite's application (login off: people
are logged in to the console directly), and two intercommunales with a member commune each."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from perron.testing.harness import ConsolePerson, Harness, Tenant


@pytest.fixture
async def perron(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    yield harness
    await harness.close()
    await harness.quiesce()


@dataclass
class Bodies:
    """BEP with its member Ciney, Idelux with its member Arlon, and an administrator each."""

    bep_admin: ConsolePerson
    idelux_admin: ConsolePerson
    operator: ConsolePerson
    ciney: Tenant
    arlon: Tenant


@pytest.fixture
async def bodies(perron: Harness) -> Bodies:
    await perron.intercommunale("bep", names={"fr": "BEP Namur"})
    await perron.intercommunale("idelux", names={"fr": "Idelux"})
    ciney = await perron.commune("ciney", intercommunale="bep")
    arlon = await perron.commune("arlon", intercommunale="idelux")
    return Bodies(
        await perron.console_person(intercommunales=["bep"], name="Béatrice BEP", language="en"),
        await perron.console_person(intercommunales=["idelux"], name="Ivan Idelux", language="en"),
        await perron.console_person(operator=True, name="Olga Operator", language="en"),
        ciney,
        arlon,
    )


def text(response: httpx.Response) -> str:
    """What a person reads on the page, tags removed, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


async def submit(
    perron: Harness, client: httpx.AsyncClient, page: str, action: str, data: dict[str, Any], **options: Any
) -> httpx.Response:
    """Open ``page`` (for its form token), then post ``data`` to ``action``, as a browser does."""
    return await perron.post_form(client, page, action, data, **options)


def console(perron: Harness, person: ConsolePerson | None = None) -> httpx.AsyncClient:
    """The console as ``person`` sees it, in English (the messages the tests read)."""
    return perron.console_client(person, headers={"accept-language": "en"})
