"""Fixtures of the login tests: a hostile OpenID provider, and a Perron whose login talks to it.

* ``hostile_op``: :class:`~tests.identity.hostile_op.HostileOP` on a free port of 127.0.0.1
  (one per test module, its plan and records reset before each test);
* ``login_site``: a :class:`~perron.testing.Harness` over a Perron built with
  ``login_enabled=True`` and ``keycloak_url`` pointing at the hostile provider, with two test
  routes: ``/_test/me`` (who the request is logged in as) and ``/_test/high`` (a page needing
  the high level of assurance);
* ``log_lines``: the JSON log lines written during the test;
* ``perron`` and ``two_tenants``: the harness over the suite's application (login off), and
  two communes in it, for the tests of accounts, residency, roles and staff pages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import io
import json
import struct
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar import Request, get

from perron.config import Settings
from perron.identity.models import Assurance
from perron.identity.oidc import client_secret
from perron.logging import configure_logging
from perron.testing.database import wipe
from perron.testing.harness import Harness, Tenant
from perron.web.auth import current_user, require_user
from tests.identity.hostile_op import HostileOP


@get("/_test/me")
async def who_am_i(request: Request[Any, Any, Any]) -> dict[str, Any]:
    user = current_user(request)
    if user is None:
        return {"account": None, "assurance": None, "resident": False}
    return {"account": str(user.account_id), "assurance": int(user.assurance), "resident": user.resident}


@get("/_test/high")
async def high_page(request: Request[Any, Any, Any]) -> dict[str, Any]:
    user = require_user(request, Assurance.HIGH)
    return {"account": str(user.account_id), "assurance": int(user.assurance)}


@pytest.fixture(scope="module")
def hostile_op(settings: Settings) -> Iterator[HostileOP]:
    op = HostileOP(lambda realm, client_id: client_secret(settings, realm, client_id)).start()
    yield op
    op.stop()


@pytest.fixture(scope="module")
async def login_app(settings: Settings, hostile_op: HostileOP) -> AsyncIterator[tuple[Any, Any]]:
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan

    login_settings = settings.model_copy(update={"login_enabled": True, "keycloak_url": hostile_op.url})
    app, runtime = build(login_settings)
    for route in (who_am_i, high_page):
        app.app.site_app.register(route)
    stop = await _start_lifespan(app)
    yield app, runtime
    await stop()


@pytest.fixture
async def login_site(
    login_app: tuple[Any, Any], hostile_op: HostileOP, settings: Settings
) -> AsyncIterator[Harness]:
    app, runtime = login_app
    hostile_op.reset()
    identity = runtime.identity
    harness = Harness(app, runtime)
    yield harness
    runtime.identity = identity  # a test may have cut Perron off from its provider
    await harness.close()
    await harness.quiesce()
    await asyncio.to_thread(wipe, settings)
    runtime.resolver.invalidate(None)


class LogLines:
    """The JSON log lines written while the fixture is active."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.stream.getvalue().splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                found.append(entry)
        return found


@pytest.fixture
def log_lines(settings: Settings) -> Iterator[LogLines]:
    lines = LogLines()
    configure_logging(settings.model_copy(update={"log_level": "INFO"}), stream=lines.stream)
    try:
        yield lines
    finally:
        configure_logging(settings.model_copy(update={"log_level": "WARNING"}))


@pytest.fixture
async def perron(app_and_runtime: tuple[Any, Any]) -> AsyncIterator[Harness]:
    harness = Harness(*app_and_runtime)
    yield harness
    await harness.close()
    await harness.quiesce()


@pytest.fixture
async def two_tenants(perron: Harness) -> tuple[Tenant, Tenant]:
    return await perron.commune("alpha"), await perron.commune("bravo", languages=["fr", "nl"])


def text(response: Any) -> str:
    """What a person reads on the page (the communes here speak French)."""
    return html.unescape(response.text)


def totp(secret: bytes, at: float | None = None) -> str:
    """RFC 6238 with SHA-1, 6 digits, 30-second steps."""
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"
