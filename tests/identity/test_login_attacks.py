"""Logging in on a commune's site against a provider that lies: every attack is refused.

Perron's relying party talks over HTTP to :mod:`tests.identity.hostile_op`, an OpenID provider
that answers like Keycloak unless a test tells it to forge one thing. Each attack test checks
what the person sees (a 400 page saying why, in the commune's name), that nobody got logged in
(no session cookie; the site still offers the login link), the ``login.refused`` log line with
its reason, and first a control: the same flow without the attack logs in, so the test fails if
the flow itself is broken.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from perron.config import Settings
from perron.db.migrate import owner_engine
from perron.i18n import using_language
from perron.identity import jobs as identity_jobs
from perron.identity.actions import create_account
from perron.identity.login import FRESH_LOGIN_SECONDS, open_id_token, person_key
from perron.identity.models import Account, AccountKind, Assurance, WebSession
from perron.identity.oidc import ITSME_ACR_ADVANCED, ITSME_ACR_BASIC, Providers
from perron.identity.sessions import SESSION_COOKIE
from perron.territory import actions as territory
from perron.testing.harness import Harness, Tenant
from perron.web.login import LOGIN_COOKIE, describe
from tests.identity.conftest import LogLines
from tests.identity.hostile_op import AuthRequest, HostileOP

ALPHA_NAME = "Alphaville-sur-Mehaigne"
BRAVO_NAME = "Bravo-lez-Tests"
NRN_BODY = "850730123"
NRN = NRN_BODY + f"{97 - int(NRN_BODY) % 97:02d}"  # a valid national number (mod 97)


@pytest.fixture
async def communes(login_site: Harness, settings: Settings) -> tuple[Tenant, Tenant]:
    # Creating a commune queues the provisioning of its clients at Keycloak, which the
    # hostile provider does not play: these communes are made as if login were off.
    identity_jobs.configure(settings)
    try:
        return (
            await login_site.commune("alpha", names={"fr": ALPHA_NAME}),
            await login_site.commune("bravo", names={"fr": BRAVO_NAME}),
        )
    finally:
        identity_jobs.unconfigure(settings)


# -- the browser's side of a login ----------------------------------------------------------------


@dataclass
class Answer:
    """An authorization request as the provider recorded it, and its answer to the callback."""

    request: AuthRequest
    params: dict[str, str]


async def authorize(op: HostileOP, client: httpx.AsyncClient, path: str = "/login?method=email") -> Answer:
    """Open ``path`` on the site, follow it to the provider, and read where it sends back."""
    response = await client.get(path)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(op.url + "/realms/"), location
    async with httpx.AsyncClient() as browser:
        redirect = await browser.get(location)
    assert redirect.status_code == 302, redirect.text
    target = urlsplit(redirect.headers["location"])
    assert (
        f"{target.scheme}://{target.netloc}{target.path}"
        == f"{client.base_url}".rstrip("/") + "/login/callback"
    )
    params = dict(parse_qsl(target.query))
    return Answer(op.requests[-1], {key: params[key] for key in ("code", "state", "iss")})


async def callback(client: httpx.AsyncClient, params: dict[str, str]) -> httpx.Response:
    return await client.get("/login/callback", params=params)


async def log_in(
    op: HostileOP, client: httpx.AsyncClient, path: str = "/login?method=email"
) -> httpx.Response:
    """A complete login that must succeed."""
    response = await callback(client, (await authorize(op, client, path)).params)
    assert response.status_code == 303, response.text
    assert session_cookies(response), response.headers
    return response


async def me(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/_test/me")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def session_cookies(response: httpx.Response) -> list[str]:
    """``Set-Cookie`` headers giving the browser a session (not the ones deleting it)."""
    return [
        header
        for header in response.headers.get_list("set-cookie")
        if header.startswith(f"{SESSION_COOKIE}=")
        and not header.startswith(f"{SESSION_COOKIE}=;")
        and "max-age=0" not in header.lower()
    ]


def sentence(reason: str) -> str:
    with using_language("fr"):
        return describe(reason)


async def assert_logged_out(client: httpx.AsyncClient) -> None:
    assert (await me(client))["account"] is None
    home = await client.get("/")
    assert home.status_code == 200
    assert 'href="/login?next=' in home.text
    assert '"/logout"' not in home.text


async def assert_refused(
    response: httpx.Response,
    log_lines: LogLines,
    reason: str,
    client: httpx.AsyncClient,
    *,
    name: str = ALPHA_NAME,
    tenant: str = "alpha",
) -> None:
    """A clear page in the commune's name, nobody logged in, and the reason in the log."""
    assert response.status_code == 400, response.text
    text = html.unescape(response.text)
    assert sentence(reason) in text
    assert name in text
    assert not session_cookies(response)
    refusals = log_lines.events("login.refused")
    assert refusals, "no login.refused log line"
    assert refusals[-1]["reason"] == reason, refusals[-1]
    assert refusals[-1]["tenant"] == tenant
    assert refusals[-1]["level"] == "warning"
    await assert_logged_out(client)


def itsme(acr: str = ITSME_ACR_BASIC, *, nrn: str = NRN, postcode: str = "4280") -> dict[str, Any]:
    """The claims of a login through itsme (as Keycloak's ``perron`` client scope adds them)."""
    return {
        "perron_idp": "itsme",
        "perron_itsme_acr": acr,
        "perron_nrn": nrn,
        "perron_address": {
            "street_address": "Rue de la Station 12",
            "postal_code": postcode,
            "locality": "Hannut",
            "country": "BE",
        },
        "perron_birthdate": "1985-07-30",
        "email": "ann.peeters@example.org",
        "email_verified": True,
    }


async def account_of(site: Harness, tenant: Tenant, subject: str) -> Account:
    async with site.transaction(tenant) as session:
        account = await session.scalar(select(Account).where(Account.subject == subject))
    assert account is not None
    return account


async def session_count(site: Harness, tenant: Tenant) -> int:
    async with site.transaction(tenant) as session:
        return len((await session.scalars(select(WebSession.id))).all())


# -- a login that works (the control of every attack) ----------------------------------------------


async def test_a_login_lands_on_next_with_a_new_host_only_httponly_lax_cookie(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    attacker = await login_site.citizen(alpha, assurance=Assurance.LOW)
    browser = login_site.client(alpha)
    # Session fixation: the attacker planted their own (valid) session cookie in the browser.
    browser.cookies.set(SESSION_COOKIE, attacker.token, domain=alpha.host)
    assert (await me(browser))["account"] == str(attacker.id)

    answer = await authorize(hostile_op, browser, "/login?method=email&next=/news%3Fpage%3D2")
    assert browser.cookies.get(LOGIN_COOKIE)
    response = await callback(browser, answer.params)

    assert response.status_code == 303
    assert response.headers["location"] == "/news?page=2"
    [header] = session_cookies(response)
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert not any(part.startswith("domain=") for part in attributes)
    token = header.split(";")[0].split("=", 1)[1]
    assert token != attacker.token
    account = await account_of(login_site, alpha, "citizen-ann")
    assert (await me(browser)) == {
        "account": str(account.id),
        "assurance": int(Assurance.LOW),
        "resident": False,
    }
    assert account.email == "ann.peeters@example.org"
    # The planted session is gone: its holder is logged in as nobody, certainly not as Ann.
    planted = login_site.client(alpha, person=attacker)
    assert (await me(planted))["account"] is None
    assert [line["assurance"] for line in log_lines.events("login.completed")] == [int(Assurance.LOW)]
    assert log_lines.events("login.refused") == []


async def test_email_login_asks_no_itsme_and_an_unverified_address_is_refused(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    control = login_site.client(alpha)
    answer = await authorize(hostile_op, control, "/login?method=email")
    assert answer.request.get("kc_idp_hint") is None and answer.request.get("acr_values") is None
    assert answer.request.get("code_challenge_method") == "S256"
    assert (await callback(control, answer.params)).status_code == 303
    assert (await me(control))["assurance"] == int(Assurance.LOW)

    hostile_op.plan.subject = "citizen-new"
    hostile_op.plan.claims = {"email": "new@example.org", "email_verified": False}
    browser = login_site.client(alpha)
    response = await callback(browser, (await authorize(hostile_op, browser)).params)
    await assert_refused(response, log_lines, "unverified_email", browser)


# -- the state, the code, the browser --------------------------------------------------------------


async def test_tampered_state_is_refused(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    browser = login_site.client(alpha)
    answer = await authorize(hostile_op, browser)
    state = answer.params["state"]
    tampered = state[:-1] + ("A" if state[-1] != "A" else "B")
    response = await callback(browser, answer.params | {"state": tampered})
    await assert_refused(response, log_lines, "unknown_state", browser)
    assert hostile_op.token_calls == []  # the code was not even exchanged
    # Control: the untouched answer of the same login goes through.
    assert (await callback(browser, answer.params)).status_code == 303
    assert (await me(browser))["account"] is not None


async def test_replayed_callback_is_refused_even_with_the_login_cookie(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    victim = login_site.client(alpha)
    answer = await authorize(hostile_op, victim)
    browser_binding = victim.cookies.get(LOGIN_COOKIE)
    assert browser_binding
    assert (await callback(victim, answer.params)).status_code == 303  # control
    assert (await me(victim))["account"] is not None

    # Someone who copied the whole callback URL and the login cookie plays it again.
    attacker = login_site.client(alpha)
    attacker.cookies.set(LOGIN_COOKIE, browser_binding, domain=alpha.host, path="/login")
    response = await callback(attacker, answer.params)
    await assert_refused(response, log_lines, "unknown_state", attacker)
    assert len(hostile_op.token_calls) == 1  # the replay never reached the token endpoint
    assert await session_count(login_site, alpha) == 1


async def test_replayed_code_with_a_new_state_is_refused_by_the_provider(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    victim = login_site.client(alpha)
    used = await authorize(hostile_op, victim)
    assert (await callback(victim, used.params)).status_code == 303  # control

    attacker = login_site.client(alpha)
    own = await authorize(hostile_op, attacker)  # a login of their own, for a fresh state
    response = await callback(attacker, own.params | {"code": used.params["code"]})
    await assert_refused(response, log_lines, "code_refused", attacker)
    assert hostile_op.token_calls[-1].code == used.params["code"]
    assert hostile_op.token_calls[-1].error == "invalid_grant"


async def test_a_stolen_unused_code_fails_pkce_in_another_login(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    await log_in(hostile_op, login_site.client(alpha))  # control
    victim = login_site.client(alpha)
    stolen = await authorize(hostile_op, victim)  # the victim has not come back yet

    attacker = login_site.client(alpha)
    own = await authorize(hostile_op, attacker)
    response = await callback(attacker, own.params | {"code": stolen.params["code"]})
    await assert_refused(response, log_lines, "code_refused", attacker)
    assert hostile_op.token_calls[-1].code == stolen.params["code"]
    assert hostile_op.token_calls[-1].error == "invalid_grant"  # wrong PKCE verifier


@pytest.mark.parametrize("cookie", ["none", "its-own"], ids=["no-login-cookie", "another-login-cookie"])
async def test_login_finished_in_another_browser_is_refused(
    login_site: Harness,
    communes: tuple[Tenant, Tenant],
    hostile_op: HostileOP,
    log_lines: LogLines,
    cookie: str,
) -> None:
    alpha, _ = communes
    await log_in(hostile_op, login_site.client(alpha))  # control
    started = await authorize(hostile_op, login_site.client(alpha))
    other = login_site.client(alpha)
    if cookie == "its-own":
        await authorize(hostile_op, other)
        assert other.cookies.get(LOGIN_COOKIE)
    response = await callback(other, started.params)
    await assert_refused(response, log_lines, "other_browser", other)
    assert len(hostile_op.token_calls) == 1  # only the control's code was exchanged


# -- the authorization response's issuer (mix-up, RFC 9207) ----------------------------------------


@pytest.mark.parametrize(
    "issuer",
    ["staff-realm", "https://evil.example/realms/citizens", None],
    ids=["another-realm", "another-provider", "missing"],
)
async def test_wrong_or_missing_iss_parameter_is_refused_before_the_code_is_sent(
    login_site: Harness,
    communes: tuple[Tenant, Tenant],
    hostile_op: HostileOP,
    log_lines: LogLines,
    issuer: str | None,
) -> None:
    alpha, _ = communes
    control = login_site.client(alpha)
    good = await authorize(hostile_op, control)
    assert good.params["iss"] == hostile_op.issuer("citizens")
    assert (await callback(control, good.params)).status_code == 303

    browser = login_site.client(alpha)
    answer = await authorize(hostile_op, browser)
    params = dict(answer.params)
    if issuer is None:
        del params["iss"]
    else:
        params["iss"] = hostile_op.issuer("staff") if issuer == "staff-realm" else issuer
    response = await callback(browser, params)
    await assert_refused(response, log_lines, "wrong_issuer", browser)
    assert [call.code for call in hostile_op.token_calls] == [good.params["code"]]


# -- forged ID tokens --------------------------------------------------------------------------------

Forgery = Callable[[HostileOP], dict[str, Any]]

FORGERIES = [
    pytest.param(lambda op: {"nonce": "the-nonce-of-another-login"}, "wrong_nonce", id="wrong-nonce"),
    pytest.param(
        lambda op: {"issuer": "https://evil.example/realms/citizens"}, "wrong_issuer", id="wrong-issuer"
    ),
    pytest.param(lambda op: {"issuer": op.issuer("staff")}, "wrong_issuer", id="issuer-of-another-realm"),
    pytest.param(lambda op: {"signing": "none"}, "bad_algorithm", id="alg-none-unsigned"),
    pytest.param(lambda op: {"signing": "hs256_public"}, "bad_algorithm", id="hs256-keyed-with-public-key"),
    pytest.param(lambda op: {"signing": "foreign"}, "unknown_key", id="key-not-in-jwks"),
    pytest.param(
        lambda op: {"signing": "foreign_same_kid"}, "bad_signature", id="other-key-claiming-realm-kid"
    ),
    pytest.param(lambda op: {"issued_ago": 3600, "expires_in": 300}, "expired_token", id="expired"),
    pytest.param(
        lambda op: {"audience": "commune-bravo"}, "wrong_audience", id="for-another-communes-client"
    ),
    pytest.param(
        lambda op: {"audience": ["commune-alpha", "commune-bravo"], "azp": "commune-bravo"},
        "wrong_audience",
        id="obtained-by-another-communes-client",
    ),
    pytest.param(
        lambda op: {"issued_ago": -3600, "expires_in": 7200}, "bad_issue_time", id="issued-in-future"
    ),
    pytest.param(lambda op: {"drop": ("sub",)}, "no_subject", id="missing-sub"),
    pytest.param(lambda op: {"drop": ("auth_time",)}, "bad_auth_time", id="missing-auth-time"),
]


@pytest.mark.parametrize(("forgery", "reason"), FORGERIES)
async def test_forged_id_token_is_refused(
    login_site: Harness,
    communes: tuple[Tenant, Tenant],
    hostile_op: HostileOP,
    log_lines: LogLines,
    forgery: Forgery,
    reason: str,
) -> None:
    alpha, _ = communes
    await log_in(hostile_op, login_site.client(alpha))  # control: the same flow, honest token
    for name, value in forgery(hostile_op).items():
        setattr(hostile_op.plan, name, value)
    browser = login_site.client(alpha)
    response = await callback(browser, (await authorize(hostile_op, browser)).params)
    await assert_refused(response, log_lines, reason, browser)
    assert hostile_op.token_calls[-1].error is None  # the provider did hand out the forged token
    assert await session_count(login_site, alpha) == 1


# -- where the person goes after the login -------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "/\r\nLocation: https://evil.example/",
    ],
    ids=["absolute-url", "scheme-relative", "backslash", "scheme-no-slashes", "line-break"],
)
async def test_next_leading_off_the_site_is_refused_at_login(
    login_site: Harness,
    communes: tuple[Tenant, Tenant],
    hostile_op: HostileOP,
    log_lines: LogLines,
    target: str,
) -> None:
    alpha, _ = communes
    control = await log_in(
        hostile_op, login_site.client(alpha), "/login?" + urlencode({"next": "/news?page=2"})
    )
    assert control.headers["location"] == "/news?page=2"
    asked = len(hostile_op.requests)

    browser = login_site.client(alpha)
    response = await browser.get("/login?" + urlencode({"next": target}))
    await assert_refused(response, log_lines, "foreign_redirect", browser)
    assert len(hostile_op.requests) == asked  # never sent to the provider
    assert browser.cookies.get(LOGIN_COOKIE) is None


# -- itsme: the account, its level, residency, the person key --------------------------------------


async def test_itsme_login_creates_the_account_with_level_residency_and_person_key(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, settings: Settings
) -> None:
    alpha, bravo = communes
    async with login_site.transaction(alpha) as session:
        await territory.create_street(session, alpha.id, names={"fr": "Rue de la Station"}, postcode="4280")

    hostile_op.plan.claims = itsme(ITSME_ACR_BASIC, postcode="4280")
    in_alpha = login_site.client(alpha)
    answer = await authorize(hostile_op, in_alpha, "/login?next=/")
    assert answer.request.get("kc_idp_hint") == "itsme"
    # itsme's basic level is its default: only the high level is asked for by name.
    assert answer.request.get("acr_values") is None
    assert answer.request.get("prompt") is None and answer.request.get("max_age") is None
    assert (await callback(in_alpha, answer.params)).status_code == 303
    assert (await me(in_alpha))["assurance"] == int(Assurance.SUBSTANTIAL)
    assert (await me(in_alpha))["resident"] is True
    # The national number came from the userinfo endpoint, not in the ID token Perron keeps.
    assert "perron_nrn" not in hostile_op.id_tokens[0] and hostile_op.userinfo_calls == 1

    # In bravo (no street with that postcode), through itsme's advanced level; this time the
    # provider also puts the number in the ID token (a realm set up the old way).
    hostile_op.plan.claims = itsme(ITSME_ACR_ADVANCED, postcode="4280")
    hostile_op.plan.userinfo_only = ()
    in_bravo = login_site.client(bravo)
    await log_in(hostile_op, in_bravo, "/login?level=3&next=/")
    assert hostile_op.requests[-1].get("acr_values") == ITSME_ACR_ADVANCED
    assert (await me(in_bravo))["assurance"] == int(Assurance.HIGH)
    assert (await me(in_bravo))["resident"] is False

    alpha_account = await account_of(login_site, alpha, "citizen-ann")
    bravo_account = await account_of(login_site, bravo, "citizen-ann")
    assert alpha_account.assurance == int(Assurance.SUBSTANTIAL)
    assert bravo_account.assurance == int(Assurance.HIGH)
    assert alpha_account.residency_method == "itsme" and alpha_account.residency_verified_at is not None
    assert bravo_account.residency_verified_at is None
    assert alpha_account.postcode == "4280" and alpha_account.street == "Rue de la Station"
    assert alpha_account.birth_year == 1985
    expected = person_key(settings, NRN)
    assert alpha_account.person_key == bravo_account.person_key == expected
    assert NRN not in expected

    assert hostile_op.id_tokens[1]["perron_nrn"] == NRN
    for secret in (NRN, "1985-07-30"):  # the full birth date too: Perron keeps only the year
        found = await asyncio.to_thread(places_holding, owner_engine(settings), secret)
        assert found == [], f"{secret} is stored in {found}"
    # The ID token kept for logging out at the provider is kept sealed, and still opens.
    async with login_site.transaction(alpha) as session:
        [kept] = (await session.scalars(select(WebSession.id_token))).all()
    assert kept is not None and kept != hostile_op.raw_id_tokens[0]
    assert open_id_token(settings, kept) == hostile_op.raw_id_tokens[0]


def places_holding(engine: Engine, needle: str) -> list[str]:
    """Every column of every table holding ``needle``, in clear or inside a token's base64
    (values read raw, as the database holds them)."""
    found = []
    try:
        with engine.connect() as connection:
            for table in inspect(engine).get_table_names():
                result = connection.exec_driver_sql(f'SELECT * FROM "{table}"')
                columns = list(result.keys())
                for row in result:
                    for column, value in zip(columns, row, strict=True):
                        if isinstance(value, bytes | memoryview):
                            value = bytes(value).decode("utf-8", "replace")
                        if value is not None and any(needle in text for text in readings(str(value))):
                            found.append(f"{table}.{column}")
    finally:
        engine.dispose()
    return sorted(set(found))


def readings(text: str) -> list[str]:
    """The text, and what its base64url-looking pieces decode to (a JWT's payload, say)."""
    found = [text]
    for piece in text.replace(".", " ").replace('"', " ").split():
        if len(piece) >= 16:
            try:
                found.append(
                    base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)).decode("utf-8", "replace")
                )
            except (binascii.Error, ValueError):
                continue
    return found


async def test_userinfo_about_someone_else_is_refused(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    hostile_op.plan.claims = itsme(ITSME_ACR_BASIC)
    await log_in(hostile_op, login_site.client(alpha), "/login?next=/")  # control
    hostile_op.plan.userinfo_subject = "citizen-someone-else"
    browser = login_site.client(alpha)
    response = await callback(browser, (await authorize(hostile_op, browser, "/login?next=/")).params)
    await assert_refused(response, log_lines, "userinfo_error", browser)
    assert hostile_op.userinfo_calls == 2
    assert await session_count(login_site, alpha) == 1


# -- step-up to a higher level ------------------------------------------------------------------------


async def test_a_page_needing_high_sends_a_substantial_citizen_to_a_fresh_advanced_login(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP
) -> None:
    alpha, _ = communes
    hostile_op.plan.claims = itsme(ITSME_ACR_BASIC)
    browser = login_site.client(alpha)
    await log_in(hostile_op, browser, "/login?next=/")
    assert (await me(browser))["assurance"] == int(Assurance.SUBSTANTIAL)

    response = await browser.get("/_test/high")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?" + urlencode({"level": 3, "next": "/_test/high"})
    answer = await authorize(hostile_op, browser, response.headers["location"])
    assert answer.request.get("acr_values") == ITSME_ACR_ADVANCED
    assert answer.request.get("prompt") == "login"
    assert answer.request.get("max_age") == str(FRESH_LOGIN_SECONDS)
    assert answer.request.get("kc_idp_hint") == "itsme"

    hostile_op.plan.claims = itsme(ITSME_ACR_ADVANCED)
    done = await callback(browser, answer.params)
    assert done.status_code == 303 and done.headers["location"] == "/_test/high"
    page = await browser.get("/_test/high")
    assert page.status_code == 200 and page.json()["assurance"] == int(Assurance.HIGH)
    assert await session_count(login_site, alpha) == 1  # the substantial session was replaced


async def test_step_up_answered_with_an_old_login_is_refused(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    hostile_op.plan.claims = itsme(ITSME_ACR_BASIC)
    browser = login_site.client(alpha)
    await log_in(hostile_op, browser, "/login?next=/")
    step_up = "/login?" + urlencode({"level": 3, "next": "/_test/high"})

    # The provider answers a fresh-login request with the login of ten minutes ago.
    hostile_op.plan.claims = itsme(ITSME_ACR_ADVANCED)
    hostile_op.plan.auth_time_ago = 600
    answer = await authorize(hostile_op, browser, step_up)
    assert answer.request.get("max_age") == str(FRESH_LOGIN_SECONDS)
    response = await callback(browser, answer.params)
    assert response.status_code == 400
    assert sentence("stale_login") in html.unescape(response.text) and ALPHA_NAME in html.unescape(
        response.text
    )
    assert not session_cookies(response)
    assert log_lines.events("login.refused")[-1]["reason"] == "stale_login"
    assert (await me(browser))["assurance"] == int(Assurance.SUBSTANTIAL)  # still not high
    assert (await browser.get("/_test/high")).status_code == 303

    # Control: a fresh login at the advanced level is accepted.
    hostile_op.plan.auth_time_ago = 0
    await log_in(hostile_op, browser, step_up)
    assert (await me(browser))["assurance"] == int(Assurance.HIGH)


# -- staff -----------------------------------------------------------------------------------------


async def test_staff_of_another_commune_cannot_log_in_to_this_ones_administration(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, bravo = communes
    member = await login_site.staff(bravo)
    async with login_site.transaction(bravo) as session:
        account = await session.get(Account, (bravo.id, member.id))
        assert account is not None
        account.subject = "staff-bob"
    hostile_op.plan.subject = "staff-bob"
    hostile_op.plan.claims = {"email": "bob@example.org", "email_verified": True}

    in_bravo = login_site.client(bravo)
    answer = await authorize(hostile_op, in_bravo, "/login/staff?next=/admin")
    assert answer.request.realm == "staff"
    done = await callback(in_bravo, answer.params)
    assert done.status_code == 303 and done.headers["location"] == "/admin"  # control
    assert (await me(in_bravo))["account"] == str(member.id)

    in_alpha = login_site.client(alpha)
    response = await callback(in_alpha, (await authorize(hostile_op, in_alpha, "/login/staff")).params)
    await assert_refused(response, log_lines, "not_staff_here", in_alpha)
    async with login_site.transaction(alpha) as session:
        assert (await session.scalars(select(Account).where(Account.kind == AccountKind.STAFF))).all() == []


# -- back-channel logout -----------------------------------------------------------------------------


async def backchannel(site: Harness, token: str) -> httpx.Response:
    # Keycloak reaches the deployment by an internal address: any host answers.
    return await site.client("perron.internal:8000").post(
        "/_oidc/backchannel-logout", data={"logout_token": token}
    )


async def two_logged_in(
    site: Harness, op: HostileOP, tenant: Tenant
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    ann, bob = site.client(tenant), site.client(tenant)
    await log_in(op, ann)
    op.plan.subject = "citizen-bob"
    op.plan.claims = {"email": "bob@example.org", "email_verified": True}
    await log_in(op, bob)
    return ann, bob


async def test_backchannel_logout_ends_exactly_the_named_session(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    ann, bob = await two_logged_in(login_site, hostile_op, alpha)
    ann_sid, bob_sid = (claims["sid"] for claims in hostile_op.id_tokens)
    assert ann_sid != bob_sid

    response = await backchannel(
        login_site, hostile_op.logout_token("citizens", "commune-alpha", sid=ann_sid)
    )
    assert response.status_code == 200
    await assert_logged_out(ann)
    assert (await me(bob))["account"] is not None
    assert log_lines.events("logout.backchannel")[-1]["sessions"] == 1

    # By subject (no sid): every session of that person in the commune.
    response = await backchannel(
        login_site, hostile_op.logout_token("citizens", "commune-alpha", sub="citizen-bob")
    )
    assert response.status_code == 200
    await assert_logged_out(bob)


async def test_backchannel_logout_for_another_communes_client_ends_nothing_here(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP
) -> None:
    alpha, _ = communes
    ann, _bob = await two_logged_in(login_site, hostile_op, alpha)
    ann_sid = hostile_op.id_tokens[0]["sid"]
    # A real token of bravo's client, naming alpha's session: bravo has no such session.
    response = await backchannel(
        login_site, hostile_op.logout_token("citizens", "commune-bravo", sid=ann_sid)
    )
    assert response.status_code == 200
    assert (await me(ann))["account"] is not None
    assert await session_count(login_site, alpha) == 2


BAD_LOGOUT_TOKENS = [
    pytest.param({"signing": "foreign_same_kid"}, "bad_signature", id="forged-signature"),
    pytest.param({"signing": "none"}, "bad_algorithm", id="unsigned"),
    pytest.param({"client_id": "commune-ghost"}, None, id="unknown-commune-client"),
    pytest.param({"issuer": "https://evil.example/realms/citizens"}, "wrong_issuer", id="unknown-issuer"),
    pytest.param({"nonce": True}, "not_logout_token", id="with-nonce"),
    pytest.param({"events": False}, "not_logout_token", id="without-events"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_LOGOUT_TOKENS)
async def test_bad_backchannel_logout_token_is_refused_and_ends_nothing(
    login_site: Harness,
    communes: tuple[Tenant, Tenant],
    hostile_op: HostileOP,
    log_lines: LogLines,
    change: dict[str, Any],
    reason: str | None,
) -> None:
    alpha, _ = communes
    ann, bob = await two_logged_in(login_site, hostile_op, alpha)
    ann_sid = hostile_op.id_tokens[0]["sid"]
    options = {"client_id": "commune-alpha", "sid": ann_sid} | change
    client_id = options.pop("client_id")
    response = await backchannel(login_site, hostile_op.logout_token("citizens", client_id, **options))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}
    assert (await me(ann))["account"] is not None and (await me(bob))["account"] is not None
    if reason is None:
        assert log_lines.events("logout.backchannel_unknown_client")[-1]["client"] == client_id
    else:
        assert log_lines.events("logout.backchannel_refused")[-1]["reason"] == reason
    # Control: the same token, honestly made, ends Ann's session.
    good = await backchannel(login_site, hostile_op.logout_token("citizens", "commune-alpha", sid=ann_sid))
    assert good.status_code == 200
    assert (await me(ann))["account"] is None and (await me(bob))["account"] is not None


# -- logging out, and Keycloak down ------------------------------------------------------------------


async def test_logout_ends_the_session_here_then_at_the_provider(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP
) -> None:
    alpha, _ = communes
    browser = login_site.client(alpha)
    await log_in(hostile_op, browser)
    response = await login_site.post_form(browser, "/", "/logout", {})
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        hostile_op.issuer("citizens") + "/protocol/openid-connect/logout"
    )
    query = dict(parse_qsl(target.query))
    assert query["id_token_hint"] == hostile_op.raw_id_tokens[-1]
    assert query["post_logout_redirect_uri"] == "http://alpha.test/"
    assert query["client_id"] == "commune-alpha"
    await assert_logged_out(browser)


def closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def test_keycloak_down_login_says_try_again_and_the_site_and_sessions_keep_working(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, log_lines: LogLines
) -> None:
    alpha, _ = communes
    runtime = login_site.runtime
    with_keycloak = login_site.client(alpha)
    await log_in(hostile_op, with_keycloak)  # control: login works while the provider is up
    paper = await login_site.citizen(alpha, assurance=Assurance.LOW)
    with_paper = login_site.client(alpha, person=paper)
    midway = login_site.client(alpha)
    halfway = await authorize(hostile_op, midway)

    down = runtime.settings.model_copy(update={"keycloak_url": f"http://127.0.0.1:{closed_port()}"})
    runtime.identity = Providers(down)  # the fixture puts the working providers back

    visitor = login_site.client(alpha)
    response = await visitor.get("/login?next=/")
    assert response.status_code == 503
    text = html.unescape(response.text)
    with using_language("fr"):
        from perron.i18n import gettext

        try_again = gettext(
            "The login service cannot be reached at the moment. Please try again in a few minutes."
        )
    assert try_again in text and ALPHA_NAME in text and "/branding.css" in text
    assert not session_cookies(response)
    assert log_lines.events("login.keycloak_unavailable")

    # A login begun before the outage cannot finish: the same page, nobody logged in.
    finished = await callback(midway, halfway.params)
    assert finished.status_code == 503 and try_again in html.unescape(finished.text)
    assert (await me(midway))["account"] is None

    assert (await visitor.get("/")).status_code == 200
    assert (await visitor.get("/branding.css")).status_code == 200
    for browser in (with_keycloak, with_paper):
        assert (await me(browser))["account"] is not None
        assert 'href="/logout"' in (await browser.get("/")).text

    # Logging out still logs out here (Keycloak will be told by its own session expiry).
    response = await login_site.post_form(with_keycloak, "/", "/logout", {})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert not session_cookies(response)
    await assert_logged_out(with_keycloak)
    assert log_lines.events("logout.keycloak_unavailable")


async def test_a_person_registered_at_the_town_hall_keeps_their_account_at_their_first_itsme_login(
    login_site: Harness, communes: tuple[Tenant, Tenant], hostile_op: HostileOP, settings: Settings
) -> None:
    """Staff registered Ann on paper (no smartphone then); her first itsme login takes that
    account over (same name, birth year and postcode) instead of making a second one. A
    namesake born another year is left alone."""
    alpha, _ = communes
    async with login_site.transaction(alpha) as session:
        paper = await create_account(
            session, alpha.id, display_name="PEETERS Ann", birth_year=1985, postcode="4280", resident=True
        )
        namesake = await create_account(
            session, alpha.id, display_name="Ann Peeters", birth_year=1990, postcode="4280"
        )
    hostile_op.plan.claims = itsme(ITSME_ACR_BASIC, postcode="4280")
    client = login_site.client(alpha)
    await log_in(hostile_op, client, "/login?next=/")
    linked = await account_of(login_site, alpha, "citizen-ann")
    assert linked.id == paper.id
    assert linked.person_key == person_key(settings, NRN)
    assert linked.residency_method == "town_hall"  # what the town hall verified stays
    async with login_site.transaction(alpha) as session:
        accounts = (await session.scalars(select(Account).where(Account.kind == AccountKind.CITIZEN))).all()
        assert {account.id for account in accounts} == {paper.id, namesake.id}
        assert next(account for account in accounts if account.id == namesake.id).subject is None
