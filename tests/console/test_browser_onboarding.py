"""The whole onboarding in a real browser (Debian's Chromium), against the real Keycloak:

an administrator of BEP logs in to the console with their staff login (password, then the
one-time code they set up), onboards a new commune through the wizard (its logo uploaded, its
colours chosen, the news module switched on), watches the provisioning until it is done (the
page follows it by itself), and the commune's branded site answers on its own address with the
news module; its login client exists at Keycloak. An administrator of another intercommunale
sees nothing of it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from perron.console.auth import CONSOLE_COOKIE
from perron.db.engine import Database
from perron.db.scope import platform_scope
from perron.identity import keycloak as kc
from perron.identity import roles
from perron.identity.oidc import CITIZENS, STAFF
from perron.tenancy.actions import get_intercommunale
from perron.tenancy.definitions import DefinitionSet, apply_definitions, load_definitions
from perron.tenancy.models import Commune, CommuneStatus
from perron.testing.database import reset_schema
from perron.testing.harness import Harness
from perron.testing.smtp import free_port
from tests.a11y.conftest import CHROMIUM, CHROMIUM_ARGS, serving
from tests.conftest import ROOT, base_settings
from tests.console.test_wizard import png
from tests.identity.test_browser_login import (
    ADMIN_PASSWORD,
    KEYCLOAK_URL,
    TIMEOUT_MS,
    _keycloak_answers,
    first_staff_login,
)

pytestmark = [pytest.mark.keycloak, pytest.mark.slow]

REQUIRED = os.environ.get("PERRON_TEST_KEYCLOAK_REQUIRED") == "1"
CONSOLE = "console.localhost"


@dataclass
class Deployment:
    port: int
    settings: Any
    database: Database
    runtime: Any
    app: Any

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    if not await _keycloak_answers():
        message = f"Keycloak does not answer at {KEYCLOAK_URL} (infra/keycloak/keycloak.sh start)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run infra/dev/bootstrap.sh --services")
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan

    port = free_port()
    settings = base_settings(
        tmp_path,
        console_host=CONSOLE,
        login_enabled=True,
        keycloak_url=KEYCLOAK_URL,
        keycloak_admin_password=ADMIN_PASSWORD,
        public_port=port,
        backchannel_base_url=f"http://127.0.0.1:{port}",
        page_cache_size=0,
    )
    reset_schema(settings)
    database = Database(settings.database)
    definitions = load_definitions(ROOT / "tenants", installed_modules=frozenset({"news"}))
    with platform_scope("test: the demo intercommunales"):
        async with database.transaction() as session:
            await apply_definitions(session, DefinitionSet(definitions.intercommunales), console_host=CONSOLE)
    await kc.provision_realms(settings)
    await kc.ensure_console_client(settings, CONSOLE, port)
    app, runtime = build(settings)
    stop = await _start_lifespan(app)
    try:
        async with serving(app, port):
            yield Deployment(port, settings, database, runtime, app)
    finally:
        await stop()
        await database.dispose()


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def test_an_intercommunale_admin_onboards_a_commune_in_the_browser(
    deployment: Deployment, chromium: Any, tmp_path: Path
) -> None:
    stamp = f"{os.getpid()}{int(time.time()) % 100000}"
    email, password = f"bea-{stamp}@bep.example", "Correct-Horse-27"
    slug, host = f"gesves{stamp}", f"gesves{stamp}.localhost"
    user_id = await kc.create_staff_user(deployment.settings, email, "Béatrice", "Bep", "en")
    admin = kc.admin(deployment.settings, STAFF)
    await admin.a_set_user_password(user_id, password, temporary=False)
    await admin.a_update_user(user_id, {"requiredActions": ["CONFIGURE_TOTP"]})
    with platform_scope("test: BEP's administrator"):
        async with deployment.database.transaction() as session:
            bep = await get_intercommunale(session, "bep")
            await roles.grant_intercommunale_admin(session, bep.id, email, "Béatrice Bep")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png("#0a5c36", (300, 100)))
    context = await chromium.new_context(locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        # Logging in: the staff realm asks for the password, then sets up the one-time code.
        await first_staff_login(page, deployment.url(CONSOLE, "/onboardings"), email, password)
        assert page.url == deployment.url(CONSOLE, "/onboardings"), page.url

        # The wizard.
        await page.select_option("#field-intercommunale", "bep")
        await page.get_by_role("button", name="Start the onboarding").click()
        await page.wait_for_url(re.compile(r"/step/commune$"))
        await page.check("#field-language-fr")
        await page.fill("#field-name\\.fr", "Gesves")
        await page.fill("#field-nis_code", str(92000 + int(stamp) % 999).zfill(5)[-5:])
        await page.fill("#field-slug", slug)
        await page.get_by_role("button", name="Save and continue").click()
        await page.wait_for_url(re.compile(r"/step/addresses$"))
        await page.fill("#field-primary_domain", host)
        await page.get_by_role("button", name="Save and continue").click()
        await page.wait_for_url(re.compile(r"/step/branding$"))
        await page.fill("#field-primary_color", "#0a5c36")
        await page.fill("#field-accent_color", "#0a5c36")
        await page.set_input_files("#field-logo", str(logo))
        await page.get_by_role("button", name="Save and continue").click()
        await page.wait_for_url(re.compile(r"/step/modules$"))
        await page.check("#field-module-news")
        await page.get_by_role("button", name="Save and continue").click()
        await page.wait_for_url(re.compile(r"/step/admins$"))
        await page.fill("#field-admin1\\.name", "Gaëlle Gesves")
        await page.fill("#field-admin1\\.email", f"gaelle-{stamp}@gesves.example")
        await page.get_by_role("button", name="Save and continue").click()
        await page.wait_for_url(re.compile(r"/step/review$"))
        assert host in await page.content()
        await page.get_by_role("button", name="Create the commune").click()

        # The progress page follows the provisioning by itself, to the end.
        await page.wait_for_url(re.compile(r"/onboardings/[0-9a-f-]+$"))
        await page.get_by_text("The commune is on board.").wait_for(timeout=120_000)
        assert "Login for citizens and staff (Keycloak) — done" in await page.locator("main").inner_text()

        # The commune's site, branded, on its own address, with the news.
        await page.get_by_role("link", name="Open the site of Gesves").click()
        await page.wait_for_url(deployment.url(host))
        assert "Gesves" in await page.title() or "Gesves" in await page.content()
        assert await page.locator("img[src^='/logo']").count() >= 1
        css = await page.goto(deployment.url(host, "/branding.css"))
        assert css is not None and "#0a5c36" in await css.text()
        news = await page.goto(deployment.url(host, "/news"))
        assert news is not None and news.status == 200
        with platform_scope("test: look"):
            async with deployment.database.session() as session:
                commune = await session.scalar(select(Commune).where(Commune.slug == slug))
        assert commune is not None and commune.status is CommuneStatus.ACTIVE
        async with kc.connected(deployment.settings, CITIZENS) as citizens:
            clients = await citizens.a_get_clients()
        client = next(item for item in clients if item["clientId"] == f"commune-{slug}")
        assert any(uri.startswith(deployment.url(host)) for uri in client["redirectUris"])

        # An administrator of another intercommunale sees nothing of it.
        other = await Harness(deployment.app, deployment.runtime).console_person(
            intercommunales=["idea"], language="en"
        )
        spy = await chromium.new_context()
        await spy.add_cookies(
            [{"name": CONSOLE_COOKIE, "value": other.token, "url": deployment.url(CONSOLE)}]
        )
        spy_page = await spy.new_page()
        await spy_page.goto(deployment.url(CONSOLE, "/communes"))
        assert "Gesves" not in await spy_page.content()
        response = await spy_page.goto(deployment.url(CONSOLE, f"/communes/{slug}"))
        assert response is not None and response.status == 404
        await spy.close()
    finally:
        await context.close()
        await kc.delete_user(deployment.settings, STAFF, user_id)
        for realm in (CITIZENS, STAFF):
            async with kc.connected(deployment.settings, realm) as connection:
                for item in await connection.a_get_clients():
                    if item["clientId"] == f"commune-{slug}":
                        await connection.a_delete_client(item["id"])
        async with kc.connected(deployment.settings, STAFF) as connection:
            for person in await connection.a_get_users(
                {"email": f"gaelle-{stamp}@gesves.example", "exact": True}
            ):
                await connection.a_delete_user(person["id"])
