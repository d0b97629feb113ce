"""pytest plugin for module authors (registered as ``perron`` through ``pytest11``).

Fixtures:

* ``perron``: a :class:`~perron.testing.Harness` over a running Perron (one per test
  session, every table emptied after each test);
* ``two_tenants``: communes ``alpha`` (French) and ``bravo`` (French and Dutch), answering
  at ``alpha.test`` and ``bravo.test``: what a module's isolation test needs;
* ``perron_smtp``: a real SMTP server (aiosmtpd) receiving the platform's e-mail during the
  test (``perron_smtp.to("ann@example.org")``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from perron.config import Settings, load_settings
from perron.testing.database import reset_schema, wipe
from perron.testing.harness import Harness, Tenant
from perron.testing.smtp import SMTPServer, mail_settings


def _settings(data_dir: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "console_host": "console.test",
        "log_format": "json",
        "log_level": "WARNING",
        "login_enabled": False,
    }
    if os.environ.get("PERRON_TEST_DATABASE_URL"):
        values["database_url"] = os.environ["PERRON_TEST_DATABASE_URL"]
        values["database_owner_url"] = os.environ.get("PERRON_TEST_DATABASE_OWNER_URL")
    return load_settings(**values)


@pytest.fixture(scope="session")
def perron_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from perron.logging import configure_logging

    settings = _settings(tmp_path_factory.mktemp("perron"))
    configure_logging(settings)
    reset_schema(settings)
    return settings


@pytest.fixture(scope="session")
async def perron_app(perron_settings: Settings) -> AsyncIterator[tuple[Any, Any]]:
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan

    app, runtime = build(perron_settings)
    stop = await _start_lifespan(app)
    yield app, runtime
    await stop()


@pytest.fixture
async def perron(perron_app: tuple[Any, Any], perron_settings: Settings) -> AsyncIterator[Harness]:
    app, runtime = perron_app
    harness = Harness(app, runtime)
    yield harness
    await harness.close()
    await harness.quiesce()
    # In a thread: the application's background tasks share this loop and must be able to
    # finish the transactions the wipe waits for.
    await asyncio.to_thread(wipe, perron_settings)
    runtime.resolver.invalidate(None)


@pytest.fixture
async def two_tenants(perron: Harness) -> tuple[Tenant, Tenant]:
    return await perron.commune("alpha"), await perron.commune("bravo", languages=["fr", "nl"])


@pytest.fixture
def perron_smtp(perron: Harness) -> Iterator[SMTPServer]:
    from perron import mail

    server = SMTPServer().start()
    previous = mail.configure(mail_settings(perron.runtime.settings, server.port), perron.runtime.templates)
    try:
        yield server
    finally:
        mail.restore(previous)
        server.stop()
