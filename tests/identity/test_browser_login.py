"""Logging in for real: Debian's Chromium, Perron on a socket, Keycloak with the itsme sandbox.

* A sandbox citizen of Hannut logs in through the itsme sandbox and sees their name; a
  module action declaring high assurance sends them through a step-up login (itsme
  "advanced": a second factor at the sandbox) and back to the action, done; they log out
  (here and at Keycloak). In La Louvière the same person is recognised (the same person key,
  the keyed HMAC of their national register number) without being a resident there; a
  logout at Keycloak ends that session too (back-channel logout). Deleting the account in
  both communes deletes the Keycloak identity too, once no commune uses it.
* A staff member logs in with a password and a second factor (set up at the first login,
  asked again at the next) and reaches their commune's administration, and only theirs.

The action is declared by a small module written here with the public SDK, the way a
consultation or a petition module would declare it: no module of the repository needs high
assurance yet.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Request, get
from litestar.response.base import ASGIResponse
from sqlalchemy import select

from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.identity import keycloak as kc
from perron.identity.actions import create_account
from perron.identity.models import Account, AccountKind, Assurance
from perron.identity.oidc import CITIZENS, STAFF
from perron.modules import activation
from perron.modules.manifest import Action, ModuleManifest
from perron.modules.registry import registry
from perron.modules.web import requires
from perron.tenancy.definitions import apply_definitions, apply_modules, load_definitions
from perron.tenancy.models import Commune
from perron.testing.database import reset_schema
from perron.testing.harness import run_jobs
from perron.testing.smtp import free_port
from perron.web.auth import current_user
from tests.a11y.conftest import CHROMIUM, CHROMIUM_ARGS, serving
from tests.conftest import CONSOLE_HOST, ROOT, base_settings
from tests.identity.conftest import totp

pytestmark = [pytest.mark.keycloak, pytest.mark.slow]

KEYCLOAK_URL = os.environ.get("PERRON_TEST_KEYCLOAK_URL", "http://127.0.0.1:58080").rstrip("/")
ADMIN_PASSWORD = os.environ.get("PERRON_TEST_KEYCLOAK_ADMIN_PASSWORD", "admin")
REQUIRED = os.environ.get("PERRON_TEST_KEYCLOAK_REQUIRED") == "1"
TIMEOUT_MS = 30_000


# The module whose action needs high assurance -------------------------------------------


@get("/sign", guards=[requires("petition", "sign")])
async def sign(request: Request[Any, Any, Any]) -> ASGIResponse:
    user = current_user(request)
    assert user is not None
    body = f"<!doctype html><title>Signed</title><h1>Signed by {user.display_name}</h1>"
    body += f"<p id='level'>assurance {int(user.assurance)}</p>"
    return ASGIResponse(body=body.encode(), media_type="text/html")


PETITION = ModuleManifest(
    name="petition",
    version="1.0.0",
    platform=">=0.1",
    titles={"fr": "Pétition", "nl": "Petitie", "de": "Petition", "en": "Petition"},
    actions=[Action("sign", Assurance.HIGH, description="Sign a petition (itsme advanced)")],
    routes=[sign],
)


def from_base32(secret: str) -> bytes:
    """A TOTP secret as Keycloak and the sandbox file show it (base32, maybe spaced, no padding)."""
    text = secret.replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


# The deployment under test ----------------------------------------------------------------


@dataclass
class Site:
    port: int
    settings: Any
    database: Database
    communes: dict[str, Any]
    runtime: Any

    def url(self, slug: str, path: str = "/") -> str:
        return f"http://{slug}.localhost:{self.port}{path}"

    async def accounts(self, slug: str) -> list[Account]:
        with tenant_scope(self.communes[slug]):
            async with self.database.session() as session:
                return list(await session.scalars(select(Account)))


async def _keycloak_answers() -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{KEYCLOAK_URL}/realms/master")).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    if not await _keycloak_answers():
        message = f"Keycloak does not answer at {KEYCLOAK_URL} (infra/keycloak/keycloak.sh start)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    if not await asyncio.to_thread(CHROMIUM.exists):
        pytest.fail("Debian's chromium is missing: run infra/dev/bootstrap.sh --services")
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan

    port = free_port()
    settings = base_settings(
        tmp_path,
        login_enabled=True,
        keycloak_url=KEYCLOAK_URL,
        keycloak_admin_password=ADMIN_PASSWORD,
        public_port=port,
        backchannel_base_url=f"http://127.0.0.1:{port}",
        itsme_sandbox=True,
        page_cache_size=0,
    )
    reset_schema(settings)
    registry.add(PETITION)
    database = Database(settings.database)
    communes: dict[str, Any] = {}
    definitions = load_definitions(ROOT / "tenants", installed_modules=frozenset(registry.modules))
    with platform_scope("test: the demo communes"):
        async with database.transaction() as session:
            await apply_definitions(session, definitions, console_host=CONSOLE_HOST)
            for commune in await session.scalars(select(Commune)):
                communes[commune.slug] = commune.id
    for _path, tenant in definitions.tenants:
        with tenant_scope(communes[tenant.slug]):
            async with database.transaction() as session:
                await apply_modules(session, communes[tenant.slug], tenant)
                if tenant.slug == "hannut":
                    await activation.enable(session, communes["hannut"], "petition")
    await kc.provision_realms(settings)
    for slug in ("hannut", "la-louviere"):
        with tenant_scope(communes[slug]):
            async with database.session() as session:
                login = await kc.commune_login(session, communes[slug])
        assert login is not None
        await kc.sync_commune_clients(settings, login, port=port)
    app, runtime = build(settings)
    stop = await _start_lifespan(app)
    try:
        async with serving(app, port):
            yield Site(port, settings, database, communes, runtime)
    finally:
        await stop()
        await database.dispose()
        registry.modules.pop(PETITION.name, None)


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def _keycloak_step(page: Any, *, username: str, password: str, otp_secret: str | None) -> None:
    """Answer whatever Keycloak's pages ask until the browser is back on a commune's site."""
    for _ in range(8):
        if ".localhost:" in page.url and "/realms/" not in page.url:
            return
        if await page.locator("input[name=password]").count():
            username_field = page.locator("input[name=username]")
            if await username_field.count() and await username_field.is_editable():
                await username_field.fill(username)
            await page.locator("input[name=password]").fill(password)
            await _submit(page)
        elif await page.locator("input[name=otp]").count():
            assert otp_secret is not None, "an OTP was asked for"
            await page.locator("input[name=otp]").fill(totp(from_base32(otp_secret)))
            await _submit(page)
        else:
            await page.wait_for_load_state("load")
            await asyncio.sleep(0.3)
            if "/realms/" in page.url and not await page.locator("input").count():
                raise AssertionError(f"stuck at {page.url}: {(await page.content())[:1500]}")
    raise AssertionError(f"never came back from Keycloak (at {page.url})")


async def _follow_login_link(page: Any) -> None:
    """The header's "Log in with itsme" link (in the menu, which is folded on small screens)."""
    href = await page.locator("a[href^='/login?next=']").first.get_attribute("href")
    await page.goto(page.url.rstrip("/") + href if href.startswith("/") else href)


async def _log_out(page: Any, url: str) -> None:
    """The log-out page's button (the header's is in the folded menu on small screens)."""
    await page.goto(url)
    home = url.removesuffix("logout")
    await page.locator("main form[action='/logout'] button").click()
    await page.wait_for_url(lambda current: current.split("?")[0] == home, timeout=TIMEOUT_MS)


async def _submit(page: Any) -> None:
    async with page.expect_navigation(timeout=TIMEOUT_MS):
        await page.locator("input[type=submit], button[type=submit]").first.click()


def _resident_of(postcode: str) -> dict[str, Any]:
    return next(p for p in kc.sandbox_citizens() if p["address"]["postal_code"] == postcode)


async def test_a_citizen_logs_in_with_itsme_steps_up_logs_out_and_is_the_same_person_elsewhere(
    site: Site, chromium: Any
) -> None:
    person = _resident_of("4280")  # lives in Hannut
    name = f"{person['given_name']} {person['family_name']}"
    context = await chromium.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    # Log in on Hannut's site: straight to the itsme sandbox, then back, by name.
    await page.goto(site.url("hannut"))
    await _follow_login_link(page)
    assert "/realms/itsme-sandbox/" in page.url, page.url  # kc_idp_hint: no detour via a choice page
    await _keycloak_step(page, username=person["username"], password=person["password"], otp_secret=None)
    assert page.url.startswith(site.url("hannut")), page.url
    assert name in await page.content()
    [hannut_account] = await site.accounts("hannut")
    assert hannut_account.assurance == Assurance.SUBSTANTIAL
    assert hannut_account.is_resident and hannut_account.residency_method == "itsme"
    assert hannut_account.person_key and person["national_number"] not in repr(vars(hannut_account))

    # A high-assurance action: a step-up login (the sandbox asks the second factor), then
    # back to the action itself, done.
    await page.goto(site.url("hannut", "/petition/sign"))
    await _keycloak_step(
        page, username=person["username"], password=person["password"], otp_secret=person["otp_secret"]
    )
    assert page.url == site.url("hannut", "/petition/sign"), page.url
    assert await page.locator("h1").inner_text() == f"Signed by {name}"
    assert await page.locator("#level").inner_text() == f"assurance {int(Assurance.HIGH)}"

    # Log out: here, then at Keycloak, and back home, logged out.
    await _log_out(page, site.url("hannut", "/logout"))
    await page.wait_for_url(re.compile(r"hannut\.localhost"))
    assert name not in await page.content()
    assert await page.locator("a[href^='/login?next=']").count()
    await page.goto(site.url("hannut", "/petition/sign"))
    assert "/realms/" in page.url, page.url  # the session is gone: a new login is needed

    # La Louvière: the same person (same key), known there, but not a resident.
    await page.goto(site.url("la-louviere"))
    await _follow_login_link(page)
    await _keycloak_step(page, username=person["username"], password=person["password"], otp_secret=None)
    assert page.url.startswith(site.url("la-louviere")), page.url
    assert name in await page.content()
    [louviere_account] = await site.accounts("la-louviere")
    assert louviere_account.person_key == hannut_account.person_key
    assert louviere_account.id != hannut_account.id
    assert not louviere_account.is_resident

    # A logout at Keycloak (here: the person's sessions ended by an administrator) reaches
    # Perron by the back channel: the next page is anonymous.
    assert louviere_account.subject
    await kc.logout_user(site.settings, CITIZENS, louviere_account.subject)
    await page.goto(site.url("la-louviere"))
    assert name not in await page.content()
    assert await page.locator("a[href^='/login?next=']").count()

    # Deleting the account: in La Louvière first (the login stays: Hannut still uses it),
    # then in Hannut (no commune uses it any more: Keycloak's account goes too).
    subject = louviere_account.subject
    for slug, login_kept in (("la-louviere", True), ("hannut", False)):
        await page.goto(site.url(slug))
        await _follow_login_link(page)
        await _keycloak_step(page, username=person["username"], password=person["password"], otp_secret=None)
        await page.goto(site.url(slug, "/account/delete"))
        await page.locator("#field-understood").check()
        async with page.expect_navigation():
            await page.locator("main form[action='/account/delete'] button[type=submit]").click()
        assert await site.accounts(slug) == []
        await run_jobs(site.runtime)
        assert (await kc.find_user(site.settings, CITIZENS, subject) is not None) is login_kept, slug
    await context.close()


async def test_staff_log_in_with_a_password_and_a_second_factor_and_reach_only_their_commune(
    site: Site, chromium: Any
) -> None:
    email = f"agent-{os.getpid()}-{int(time.time())}@hannut.example"
    password = "Correct-Horse-27"
    user_id = await kc.create_staff_user(site.settings, email, "Dominique", "Agent", "fr")
    admin = kc.admin(site.settings, STAFF)
    try:
        await admin.a_set_user_password(user_id, password, temporary=False)
        await admin.a_update_user(user_id, {"requiredActions": ["CONFIGURE_TOTP"]})
        with tenant_scope(site.communes["hannut"]):
            async with site.database.transaction() as session:
                await create_account(
                    session,
                    site.communes["hannut"],
                    display_name="Dominique Agent",
                    kind=AccountKind.STAFF,
                    subject=user_id,
                    email=email,
                    roles=["admin"],
                )
        context = await chromium.new_context()
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)

        # First login: the password, then the second factor is set up (required).
        secret = await first_staff_login(page, site.url("hannut", "/admin"), email, password)
        assert page.url == site.url("hannut", "/admin"), page.url
        assert "Dominique Agent" in await page.content()

        # The next login asks for both: log out, log in again.
        await _log_out(page, site.url("hannut", "/logout"))
        await page.goto(site.url("hannut", "/admin"))
        await page.locator("input[name=username]").fill(email)
        await page.locator("input[name=password]").fill(password)
        await _submit(page)
        assert await page.locator("input[name=otp]").count(), "the second factor was not asked"
        await page.locator("input[name=otp]").fill(totp(from_base32(secret), time.time() + 30))
        await _submit(page)
        assert page.url == site.url("hannut", "/admin"), page.url

        # Another commune's administration stays closed, Keycloak's session notwithstanding.
        await page.goto(site.url("la-louviere", "/admin"))
        assert page.url.startswith(site.url("la-louviere", "/login/callback")), page.url
        assert "does not give access" in await page.content() or "ne donne pas accès" in await page.content()
        cookies = {(c["domain"], c["name"]) for c in await context.cookies()}
        assert ("hannut.localhost", "perron_session") in cookies
        assert ("la-louviere.localhost", "perron_session") not in cookies
        assert [a.kind for a in await site.accounts("la-louviere")] == []
        await context.close()
    finally:
        await kc.delete_user(site.settings, STAFF, user_id)


async def first_staff_login(page: Any, url: str, email: str, password: str) -> str:
    """Open ``url``, which sends to the staff realm: the password, then the one-time code set
    up as the first login requires. Returns the code's secret (for the next logins)."""
    await page.goto(url)
    assert "/realms/staff/" in page.url, page.url
    await page.locator("input[name=username]").fill(email)
    await page.locator("input[name=password]").fill(password)
    await _submit(page)
    secret = await _totp_secret_from_setup_page(page)
    await page.locator("input[name=totp]").fill(totp(from_base32(secret)))
    label = page.locator("input[name=userLabel]")
    if await label.count():
        await label.fill("phone")
    await _submit(page)
    return secret


async def _totp_secret_from_setup_page(page: Any) -> str:
    """The key Keycloak's OTP set-up page shows under "Unable to scan?"."""
    manual = page.locator("a#mode-manual, a[href*='mode=manual']")
    if await manual.count():
        async with page.expect_navigation():
            await manual.first.click()
    text = await page.locator("#kc-totp-secret-key").inner_text()
    return text.replace(" ", "").strip()
