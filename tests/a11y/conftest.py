"""A real server and a real browser for the accessibility checks.

* ``demo_communes``: the communes of ``tenants/`` applied to the test database, as
  ``perron dev`` applies them (with their modules and demo content), and a staff account
  with the ``admin`` role in each, logged in: its session token opens the staff pages.
* ``live_server``: the test application served by uvicorn on a free loopback port, in this
  process (so the test's database and the server's are the same).
* ``browser``: Debian's Chromium driven by Playwright (no browser download); every
  ``*.localhost`` name resolves to the loopback address, as the demo domains need.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from perron.db.scope import platform_scope, tenant_scope
from perron.identity.actions import create_account
from perron.identity.models import AccountKind, Assurance
from perron.identity.sessions import open_session
from perron.modules.registry import registry
from perron.tenancy.definitions import apply_definitions, apply_modules, load_definitions
from perron.tenancy.models import Commune
from tests.conftest import CONSOLE_HOST, ROOT

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "infra" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP console.test 127.0.0.1",
    "--disable-gpu",
]


@dataclass
class DemoCommune:
    slug: str
    host: str
    languages: list[str]
    staff_token: str
    enabled_modules: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def demo_communes(database: Any, settings: Any) -> list[DemoCommune]:
    """The demo communes of ``tenants/``, each with a logged-in staff administrator."""
    try:
        from perron.media import MediaStore

        media: Any = MediaStore.for_settings(settings)
    except ImportError:  # logos need the media store; without it the communes have none
        media = None
    definitions = load_definitions(ROOT / "tenants", installed_modules=frozenset(registry.modules))
    with platform_scope("test: apply the demo communes"):
        async with database.transaction() as session:
            await apply_definitions(session, definitions, console_host=CONSOLE_HOST, media=media)
    communes: list[DemoCommune] = []
    for _path, tenant in definitions.tenants:
        with platform_scope("test: find a demo commune"):
            async with database.session() as session:
                commune = await session.scalar(select(Commune).where(Commune.slug == tenant.slug))
        with tenant_scope(commune.id):
            async with database.transaction() as session:
                await apply_modules(session, commune.id, tenant)  # as `perron dev` does
                account = await create_account(
                    session,
                    commune.id,
                    display_name="Camille Agent",
                    kind=AccountKind.STAFF,
                    email=f"camille@{tenant.slug}.example",
                    language=tenant.languages[0],
                    roles=["admin"],
                    assurance=Assurance.SUBSTANTIAL,
                )
                token = await open_session(session, account, Assurance.SUBSTANTIAL)
        communes.append(
            DemoCommune(
                slug=tenant.slug,
                host=tenant.domains[0],
                languages=list(tenant.languages),
                staff_token=token,
                enabled_modules=[name for name, spec in tenant.modules.items() if spec.enabled],
            )
        )
    return communes


@asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[int]:
    """``app`` on a real socket of 127.0.0.1 (its lifespan must already have run)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped the server
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_server(app: Any) -> AsyncIterator[int]:
    """The application on a real socket; its lifespan already ran in ``app_and_runtime``."""
    async with serving(app, _free_port()) as port:
        yield port


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    missing = [str(path) for path in (CHROMIUM, AXE) if not path.exists()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run infra/dev/bootstrap.sh --services (it installs Debian's "
            "chromium package and axe-core with `npm ci --prefix infra/a11y`)"
        )
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()
