"""Logging in to the platform console: Keycloak's staff realm (here a hostile provider written
for the tests), the console's own client, and Perron's platform roles deciding who gets in."""

from __future__ import annotations

from sqlalchemy import select

from perron.config import Settings
from perron.console.auth import CONSOLE_COOKIE
from perron.db.scope import platform_scope
from perron.identity import jobs as identity_jobs
from perron.identity import roles
from perron.identity.keycloak import CONSOLE_CLIENT
from perron.identity.models import PlatformRole
from perron.testing.harness import Harness
from tests.identity.conftest import LogLines
from tests.identity.hostile_op import HostileOP
from tests.identity.test_login_attacks import authorize, callback

CONSOLE = "console.test"


async def grant(site: Harness, email: str, body: str | None = None) -> None:
    with platform_scope("test: a platform role"):
        async with site.database.transaction() as session:
            if body is None:
                await roles.grant_operator(session, email, "Olga Operator")
            else:
                from perron.tenancy.actions import get_intercommunale

                found = await get_intercommunale(session, body)
                await roles.grant_intercommunale_admin(session, found.id, email, "Béa BEP")


def staff_login(op: HostileOP, email: str, subject: str) -> None:
    op.plan.subject = subject
    op.plan.claims = {"email": email, "email_verified": True, "name": "Béa BEP"}


async def test_an_intercommunale_admin_logs_in_and_sees_their_communes(
    login_site: Harness, hostile_op: HostileOP, log_lines: LogLines, settings: Settings
) -> None:
    await login_site.intercommunale("bep")
    # Made as if login were off: the hostile provider does not play Keycloak's admin API.
    identity_jobs.configure(settings)
    try:
        await login_site.commune("ciney", intercommunale="bep")
        await login_site.commune("arlon")
    finally:
        identity_jobs.unconfigure(settings)
    await grant(login_site, "bea@bep.example", "bep")
    staff_login(hostile_op, "Bea@BEP.example", "staff-bea")
    browser = login_site.client(CONSOLE, headers={"accept-language": "en"})
    answer = await authorize(hostile_op, browser, "/login?next=/communes")
    assert hostile_op.requests[-1].realm == "staff"
    assert hostile_op.requests[-1].get("client_id") == CONSOLE_CLIENT
    response = await callback(browser, answer.params)
    assert response.status_code == 303 and response.headers["location"] == "/communes"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(CONSOLE_COOKIE + "="))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes
    assert not any(part.startswith("domain=") for part in attributes)
    page = await browser.get("/communes")
    assert page.status_code == 200 and "Ciney" in page.text and "Arlon" not in page.text
    with platform_scope("test: look"):
        async with login_site.database.session() as session:
            role = await session.scalar(select(PlatformRole).where(PlatformRole.email == "bea@bep.example"))
    assert role is not None and role.subject == "staff-bea"  # bound at the first login
    # The same callback again is refused (the attempt was used).
    replay = await callback(login_site.client(CONSOLE), answer.params)
    assert replay.status_code == 400
    assert log_lines.events("console.login")


async def test_a_login_without_a_console_role_is_refused(
    login_site: Harness, hostile_op: HostileOP, log_lines: LogLines
) -> None:
    staff_login(hostile_op, "clerk@ciney.example", "staff-clerk")
    browser = login_site.client(CONSOLE, headers={"accept-language": "en"})
    response = await callback(browser, (await authorize(hostile_op, browser, "/login")).params)
    assert response.status_code == 400
    assert "does not give access to the console" in response.text
    assert CONSOLE_COOKIE not in browser.cookies
    assert [line["reason"] for line in log_lines.events("console.login_refused")] == ["no_console_role"]
    # And a role granted to another address does not open it either.
    await grant(login_site, "someone.else@perron.example")
    response = await callback(browser, (await authorize(hostile_op, browser, "/login")).params)
    assert response.status_code == 400


async def test_a_login_started_in_another_browser_or_leading_elsewhere_is_refused(
    login_site: Harness, hostile_op: HostileOP
) -> None:
    await grant(login_site, "olga@perron.example")
    staff_login(hostile_op, "olga@perron.example", "staff-olga")
    victim = login_site.client(CONSOLE)
    answer = await authorize(hostile_op, login_site.client(CONSOLE), "/login")
    assert (await callback(victim, answer.params)).status_code == 400  # no login cookie here
    assert (await login_site.client(CONSOLE).get("/login?next=//evil.example/")).status_code == 400
    assert hostile_op.token_calls == []


async def test_logout_ends_the_console_session_here_and_at_keycloak(
    login_site: Harness, hostile_op: HostileOP
) -> None:
    await grant(login_site, "olga@perron.example")
    staff_login(hostile_op, "olga@perron.example", "staff-olga")
    browser = login_site.client(CONSOLE)
    assert (
        await callback(browser, (await authorize(hostile_op, browser, "/login")).params)
    ).status_code == 303
    assert (await browser.get("/communes")).status_code == 200
    token = await login_site.form_token(browser, "/logout")
    out = await browser.post("/logout", data={"_csrf_token": token})
    assert out.status_code == 303 and out.headers["location"].startswith(hostile_op.issuer("staff"))
    assert "client_id=perron-console" in out.headers["location"]
    assert (await browser.get("/communes")).headers["location"] == "/login?next=%2Fcommunes"


async def test_a_backchannel_logout_ends_the_console_session(
    login_site: Harness, hostile_op: HostileOP
) -> None:
    await grant(login_site, "olga@perron.example")
    staff_login(hostile_op, "olga@perron.example", "staff-olga")
    browser = login_site.client(CONSOLE)
    assert (
        await callback(browser, (await authorize(hostile_op, browser, "/login")).params)
    ).status_code == 303
    sid = hostile_op.id_tokens[-1]["sid"]
    other = login_site.client("127.0.0.1")
    logout = await other.post(
        "/_oidc/backchannel-logout",
        data={"logout_token": hostile_op.logout_token("staff", CONSOLE_CLIENT, sid=sid)},
    )
    assert logout.status_code == 200
    # Logged out: the page sends the browser to log in again.
    again = await browser.get("/communes")
    assert again.status_code == 303 and again.headers["location"] == "/login?next=%2Fcommunes"
