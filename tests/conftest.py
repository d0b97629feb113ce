"""Shared fixtures: a migrated database (SQLite or PostgreSQL), the running application,
clients bound to a commune's host, and communes made in one call.

``PERRON_TEST_BACKEND`` picks the database (``sqlite`` by default; ``postgres`` needs
``PERRON_TEST_DATABASE_URL`` for the application role and ``PERRON_TEST_DATABASE_OWNER_URL``
for the schema owner). ``infra/dev/test.sh`` runs the suite once with each.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

for _variable in [
    name for name in os.environ if name.startswith("PERRON_") and not name.startswith("PERRON_TEST_")
]:
    del os.environ[_variable]

from perron.config import Settings, load_settings  # noqa: E402
from perron.db.engine import Database  # noqa: E402
from perron.db.guard import LOCKS  # noqa: E402
from perron.db.scope import no_scope, platform_scope  # noqa: E402
from perron.logging import configure_logging  # noqa: E402
from perron.tenancy import actions  # noqa: E402
from perron.tenancy.models import Commune, CommuneStatus  # noqa: E402
from perron.testing.database import reset_schema, wipe  # noqa: E402

BACKEND = os.environ.get("PERRON_TEST_BACKEND", "sqlite")
POSTGRES = BACKEND == "postgres"
REDIS_URL = os.environ.get("PERRON_TEST_REDIS_URL")
CONSOLE_HOST = "console.test"
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and not POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass)"))
        if "redis" in item.keywords and not REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs PERRON_TEST_REDIS_URL"))


def base_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "console_host": CONSOLE_HOST,
        "tenants_dir": ROOT / "tenants",
        "themes_dir": ROOT / "themes",
        "log_format": "json",
        "login_enabled": False,
    }
    if POSTGRES:
        values["database_url"] = os.environ["PERRON_TEST_DATABASE_URL"]
        values["database_owner_url"] = os.environ["PERRON_TEST_DATABASE_OWNER_URL"]
    return load_settings(**(values | overrides))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a ``perron`` process needs to use the same deployment as the tests."""
    env = {
        "PERRON_ENV": settings.env,
        "PERRON_DATA_DIR": str(settings.data_dir),
        "PERRON_CONSOLE_HOST": settings.console_host,
        "PERRON_TENANTS_DIR": str(settings.tenants_dir),
        "PERRON_THEMES_DIR": str(settings.themes_dir),
        "PERRON_DATABASE_URL": settings.database.render_as_string(hide_password=False),
        "PERRON_LOGIN_ENABLED": "true" if settings.login_enabled else "false",
        "PERRON_KEYCLOAK_URL": settings.keycloak_url,
    }
    if settings.database_owner_url:
        env["PERRON_DATABASE_OWNER_URL"] = settings.database_owner.render_as_string(hide_password=False)
    if settings.redis_url:
        env["PERRON_REDIS_URL"] = settings.redis_url
    return env


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = base_settings(tmp_path_factory.mktemp("perron"))
    configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    reset_schema(settings)
    return settings


@pytest.fixture(autouse=True)
async def _clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After each test: empty tables, forget caches, switch every lock back on.

    The wipe runs in a thread: the application's background tasks share this event loop
    and must be able to finish the transactions the wipe waits for."""
    yield
    LOCKS.orm = LOCKS.rls = LOCKS.service = True
    if "settings" in request.fixturenames:
        await asyncio.to_thread(wipe, request.getfixturevalue("settings"))
    if "app_and_runtime" in request.fixturenames:
        request.getfixturevalue("app_and_runtime")[1].resolver.invalidate(None)


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app_and_runtime(settings: Settings) -> AsyncIterator[tuple[Any, Any]]:
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan
    from perron.web.templating import register_template_dir
    from tests.probe import PROBE_ROUTES, TEMPLATES

    register_template_dir(TEMPLATES)
    app, runtime = build(settings)
    for route in PROBE_ROUTES:
        app.app.site_app.register(route)
    stop = await _start_lifespan(app)
    yield app, runtime
    await stop()


@pytest.fixture
def app(app_and_runtime: tuple[Any, Any]) -> Any:
    return app_and_runtime[0]


@pytest.fixture
def runtime(app_and_runtime: tuple[Any, Any]) -> Any:
    return app_and_runtime[1]


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def client_for(app: Any) -> AsyncIterator[ClientFactory]:
    """``client_for("hannut.test")``: an HTTP client whose requests carry that Host."""
    clients: list[httpx.AsyncClient] = []

    def make(host: str, scheme: str = "http", **options: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=options.pop("client_address", ("127.0.0.1", 50000)))
        client = httpx.AsyncClient(transport=transport, base_url=f"{scheme}://{host}", **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


MakeCommune = Callable[..., Awaitable[Commune]]


@pytest.fixture
def make_commune(database: Database, settings: Settings) -> MakeCommune:
    """``await make_commune("hannut")``: a commune answering at ``hannut.test``."""
    counter = iter(range(10000, 99999, 7))

    async def make(
        slug: str,
        *,
        languages: list[str] | None = None,
        names: dict[str, str] | None = None,
        domains: list[str] | None = None,
        status: CommuneStatus = CommuneStatus.ACTIVE,
        intercommunale: str | None = None,
        nis_code: str | None = None,
    ) -> Commune:
        languages = languages or ["fr"]
        with no_scope(), platform_scope("test fixture: create a commune"):
            async with database.transaction() as session:
                commune = await actions.create_commune(
                    session,
                    slug=slug,
                    nis_code=nis_code or str(next(counter)),
                    names=names or {language: slug.replace("-", " ").title() for language in languages},
                    languages=languages,
                    domains=domains or [f"{slug}.test"],
                    console_host=settings.console_host,
                    intercommunale=intercommunale,
                    status=CommuneStatus.ACTIVE if status is not CommuneStatus.PROVISIONING else status,
                )
                if status in (CommuneStatus.SUSPENDED, CommuneStatus.ARCHIVED):
                    await actions.set_status(session, commune, status)
        return commune

    return make


@pytest.fixture
async def two_communes(make_commune: MakeCommune) -> tuple[Commune, Commune]:
    """Two active communes, ``alpha`` (at alpha.test) and ``bravo`` (at bravo.test)."""
    return await make_commune("alpha"), await make_commune("bravo")
