"""Keycloak provisioning, proven against a running Keycloak.

The realms are provisioned twice (the second time changes nothing), then people log in the
way a browser would, without one: an HTTP client follows Keycloak's redirects and fills in its
HTML forms, down to the code exchange at the citizens realm's token endpoint. The callback of
the throwaway commune ``kc-test`` (``test-commune.localhost:8765``) is never called: its URL is
read from Keycloak's ``Location`` header.

Keycloak: ``PERRON_TEST_KEYCLOAK_URL`` (default ``http://127.0.0.1:58080``), admin password
``PERRON_TEST_KEYCLOAK_ADMIN_PASSWORD`` (default ``admin``). Unreachable, the Keycloak tests
are skipped, or fail when ``PERRON_TEST_KEYCLOAK_REQUIRED=1``.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import email.message
import hashlib
import json
import os
import secrets
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import httpx
import pytest
from click.testing import CliRunner
from jwcrypto import jwe, jwk, jws
from pydantic import SecretStr

from perron.cli import main
from perron.config import Settings, load_settings
from perron.errors import Conflict, Invalid, NotFound
from perron.identity import keycloak as kc
from perron.identity.keycloak import SANDBOX, CommuneLogin, KeycloakRefused, KeycloakUnavailable
from perron.identity.oidc import CITIZENS, ITSME_ACR_ADVANCED, ITSME_ACR_BASIC, STAFF
from perron.tenancy.models import CommuneStatus
from perron.testing.smtp import SMTPServer, free_port
from tests.conftest import ROOT, settings_env
from tests.identity.conftest import totp

pytestmark = pytest.mark.keycloak  # against the real Keycloak: once, in the SQLite pass

KEYCLOAK_URL = os.environ.get("PERRON_TEST_KEYCLOAK_URL", "http://127.0.0.1:58080").rstrip("/")
ADMIN_PASSWORD = os.environ.get("PERRON_TEST_KEYCLOAK_ADMIN_PASSWORD", "admin")
REQUIRED = os.environ.get("PERRON_TEST_KEYCLOAK_REQUIRED") == "1"

PORT = 8765
HOST = "test-commune.localhost"
CALLBACK = f"http://{HOST}:{PORT}/login/callback"
COMMUNE = CommuneLogin(
    slug="kc-test",
    names={"fr": "Commune de test", "nl": "Testgemeente"},
    languages=["fr", "nl"],
    hosts=[HOST],
    palette={"primary_color": "#0b5e3c", "primary_text_color": "#ffffff", "accent_color": "#0b6b45"},
    logo_path="/logo?v=abc123",
)
CLIENT = COMMUNE.client_id
PEOPLE = {person["username"]: person for person in kc.sandbox_citizens()}
TODAY = dt.date(2026, 11, 22)


# A browser without a browser ----------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page (action and named inputs) and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.links: list[str] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._open = {"action": values.get("action") or "", "id": values.get("id"), "inputs": {}}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and values.get("name"):
            self._open["inputs"][values["name"]] = values.get("value") or ""
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


@dataclass
class Page:
    """Where the browser stopped: a page of Keycloak, or the commune's callback URL."""

    url: str
    response: httpx.Response | None = None

    @property
    def is_callback(self) -> bool:
        return self.response is None

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlparse(self.url).query).items()}

    def parsed(self) -> _Forms:
        assert self.response is not None, f"stopped at the callback {self.url}"
        parser = _Forms()
        parser.feed(self.response.text)
        return parser

    def form_with(self, field: str) -> dict[str, Any] | None:
        return next((form for form in self.parsed().forms if field in form["inputs"]), None)


class Browser:
    """Follows redirects and submits forms, keeping cookies like a browser does: Keycloak's
    cookies are ``Secure``, which browsers honour on http://127.0.0.1 (a secure context) but
    Python's cookie jar does not, so the jar is told that loopback http counts as secure."""

    def __init__(self) -> None:
        self.jar = CookieJar(policy=DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
        self.http = httpx.AsyncClient(timeout=30)

    async def close(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        outgoing = urllib.request.Request(url)
        self.jar.add_cookie_header(outgoing)
        headers = {"Cookie": outgoing.get_header("Cookie")} if outgoing.has_header("Cookie") else {}
        response = await self.http.request(method, url, headers=headers, **options)
        received = email.message.Message()
        for value in response.headers.get_list("set-cookie"):
            received["Set-Cookie"] = value
        self.jar.extract_cookies(_Headers(received), outgoing)  # type: ignore[arg-type]
        return response

    async def _land(self, url: str, response: httpx.Response) -> Page:
        while response.status_code in (301, 302, 303):
            url = urljoin(url, response.headers["location"])
            if url.startswith(CALLBACK):
                return Page(url)
            response = await self.request("GET", url)
        return Page(url, response)

    async def visit(self, url: str) -> Page:
        if url.startswith(CALLBACK):
            return Page(url)
        return await self._land(url, await self.request("GET", url))

    async def submit(self, page: Page, form: dict[str, Any] | None, **values: str) -> Page:
        assert form is not None, (
            f"no such form on {page.url}: {page.response.text[:3000] if page.response else ''}"
        )
        action = urljoin(page.url, form["action"])
        return await self._land(action, await self.request("POST", action, data={**form["inputs"], **values}))


class _Headers:
    def __init__(self, message: email.message.Message) -> None:
        self._message = message

    def info(self) -> email.message.Message:
        return self._message


@dataclass
class Attempt:
    page: Page
    verifier: str
    nonce: str
    state: str


async def authorize(browser: Browser, realm: str, client_id: str = CLIENT, **extra: str) -> Attempt:
    """Start a login the way Perron does: code flow, PKCE S256, state and nonce."""
    verifier, nonce, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    url = f"{KEYCLOAK_URL}/realms/{realm}/protocol/openid-connect/auth?{urlencode(params)}"
    return Attempt(await browser.visit(url), verifier, nonce, state)


async def sandbox_login(browser: Browser, page: Page, username: str, *, otp: bool) -> Page:
    """Log in at the itsme sandbox: password, then (level 2) the person's one-time code."""
    assert page.url.startswith(f"{KEYCLOAK_URL}/realms/{SANDBOX}/"), f"not at the sandbox: {page.url}"
    person = PEOPLE[username]
    page = await browser.submit(
        page, page.form_with("password"), username=username, password=person["password"]
    )
    otp_form = None if page.is_callback else page.form_with("otp")
    if otp:
        assert otp_form is not None, "the sandbox did not ask for the one-time code"
        page = await browser.submit(page, otp_form, otp=totp(base64.b32decode(person["otp_secret"])))
    else:
        assert otp_form is None, "the sandbox asked for a one-time code at level 1"
    return page


async def exchange(settings: Settings, realm: str, attempt: Attempt, page: Page) -> dict[str, Any]:
    """The code exchange at the realm's token endpoint, with the client's derived secret."""
    assert page.is_callback, f"expected the callback, stopped at {page.url}"
    assert page.query["state"] == attempt.state
    assert page.query["iss"] == f"{KEYCLOAK_URL}/realms/{realm}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{KEYCLOAK_URL}/realms/{realm}/protocol/openid-connect/token",
            data={
                "grant_type": "authorization_code",
                "code": page.query["code"],
                "redirect_uri": CALLBACK,
                "code_verifier": attempt.verifier,
            },
            auth=(CLIENT, kc.client_secret(settings, realm, CLIENT)),
        )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def id_claims(realm: str, tokens: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """The ID token's claims, after checking its signature against the realm's keys, plus the
    national number from the userinfo (where alone it travels)."""
    async with httpx.AsyncClient(timeout=30) as http:
        keys = jwk.JWKSet.from_json(
            (await http.get(f"{KEYCLOAK_URL}/realms/{realm}/protocol/openid-connect/certs")).text
        )
    token = jws.JWS()
    token.deserialize(tokens["id_token"])
    header = token.jose_header
    assert header["alg"] == "RS256"
    token.verify(keys.get_key(header["kid"]), alg="RS256")
    claims: dict[str, Any] = json.loads(token.payload)
    assert claims["iss"] == f"{KEYCLOAK_URL}/realms/{realm}"
    assert claims["aud"] == CLIENT
    assert claims["nonce"] == attempt.nonce
    # The national number travels in the userinfo only: Perron keeps the ID token.
    assert "perron_nrn" not in claims
    async with httpx.AsyncClient(timeout=30) as http:
        info = await http.get(
            f"{KEYCLOAK_URL}/realms/{realm}/protocol/openid-connect/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert info.status_code == 200, info.text
    if "perron_nrn" in info.json():
        claims["perron_nrn"] = info.json()["perron_nrn"]
    return claims


async def itsme_login(
    settings: Settings, browser: Browser, username: str, acr: str, **extra: str
) -> dict[str, Any]:
    attempt = await authorize(browser, CITIZENS, kc_idp_hint="itsme", acr_values=acr, **extra)
    page = await sandbox_login(browser, attempt.page, username, otp=acr == ITSME_ACR_ADVANCED)
    return await id_claims(CITIZENS, await exchange(settings, CITIZENS, attempt, page), attempt)


# Fixtures -----------------------------------------------------------------------------


async def _reachable() -> bool:
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            response = await http.get(f"{KEYCLOAK_URL}/realms/master/.well-known/openid-configuration")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@pytest.fixture(scope="module")
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def kc_settings(tmp_path_factory: pytest.TempPathFactory, smtp: SMTPServer) -> Settings:
    if not await _reachable():
        message = f"Keycloak is not reachable at {KEYCLOAK_URL} (set PERRON_TEST_KEYCLOAK_URL)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return load_settings(
        env="test",
        data_dir=tmp_path_factory.mktemp("keycloak"),
        keycloak_url=KEYCLOAK_URL,
        keycloak_admin_password=ADMIN_PASSWORD,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        mail_from_address="no-reply@perron.test",
    )


@pytest.fixture(scope="module")
async def provisioned(kc_settings: Settings) -> Settings:
    """The realms and the test commune's clients, provisioned once (the first time)."""
    await kc.provision_realms(kc_settings)
    await kc.sync_commune_clients(kc_settings, COMMUNE, port=PORT)
    return kc_settings


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    opened = Browser()
    yield opened
    await opened.close()


async def _create_user(
    settings: Settings, realm: str, address: str, first: str, last: str, password: str, **extra: Any
) -> str:
    """A user with a verified e-mail address and a password, made by the admin."""
    async with kc.connected(settings, realm) as admin:
        user_id: str = await admin.a_create_user(
            {
                "username": address,
                "email": address,
                "emailVerified": True,
                "firstName": first,
                "lastName": last,
                "enabled": True,
                "credentials": [{"type": "password", "value": password, "temporary": False}],
                **extra,
            }
        )
    return user_id


async def _forget_citizen(settings: Settings, email: str) -> None:
    """Delete the citizens-realm account of ``email`` (left by an earlier run)."""
    async with kc.connected(settings, CITIZENS) as admin:
        for user in await admin.a_get_users({"email": email, "exact": True}):
            await admin.a_delete_user(user["id"])


# What does not need Keycloak ----------------------------------------------------------


def test_client_secret_is_the_one_the_relying_party_uses(tmp_path: Path) -> None:
    from perron.identity import oidc

    settings = load_settings(env="test", data_dir=tmp_path)
    secret = kc.client_secret(settings, CITIZENS, "commune-hannut")
    assert secret == oidc.client_secret(settings, CITIZENS, "commune-hannut")
    assert secret != kc.client_secret(settings, STAFF, "commune-hannut")
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32


def _nrn_is_valid(number: str, birthdate: str) -> bool:
    if len(number) != 11 or not number.isdigit():
        return False
    base = int(("2" if birthdate >= "2000" else "") + number[:9])
    return (
        97 - base % 97 == int(number[9:]) and number[:6] == birthdate[2:4] + birthdate[5:7] + birthdate[8:10]
    )


def test_sandbox_citizens_are_valid_and_live_in_the_demo_communes() -> None:
    streets: dict[str, set[tuple[str, str]]] = {}
    for folder in (ROOT / "tenants").iterdir():
        path = folder / "territory" / "streets.csv"
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                streets[folder.name] = {
                    (row["fr"], row["postcode"]) for row in csv.DictReader(handle, delimiter=";")
                }
    places: dict[str, int] = {}
    ages = []
    for person in PEOPLE.values():
        assert _nrn_is_valid(person["national_number"], person["birthdate"]), person["username"]
        assert len(base64.b32decode(person["otp_secret"])) >= 16
        assert person["locale"] in {"fr", "nl", "de"}
        address = person["address"]
        home = next(
            (slug for slug, known in streets.items() if (address["street"], address["postal_code"]) in known),
            None,
        )
        places[home or "elsewhere"] = places.get(home or "elsewhere", 0) + 1
        born = dt.date.fromisoformat(person["birthdate"])
        ages.append(TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day)))
    assert len(PEOPLE) >= 6
    assert (
        places.get("la-louviere", 0) >= 2 and places.get("hannut", 0) >= 2 and places.get("andenne", 0) >= 1
    )
    assert places.get("elsewhere", 0) >= 1
    assert min(ages) < 18 and max(ages) > 80
    assert not _nrn_is_valid("85041708456", "1985-04-17")


async def test_unreachable_keycloak_says_try_again_later(tmp_path: Path) -> None:
    settings = load_settings(
        env="test",
        data_dir=tmp_path,
        keycloak_url=f"http://127.0.0.1:{free_port()}",
        keycloak_admin_password="x",
    )
    with pytest.raises(KeycloakUnavailable) as refused:
        await kc.find_user(settings, CITIZENS, "someone")
    assert refused.value.status_code == 503
    assert "cannot be reached" in refused.value.message


async def test_keycloak_that_never_answers_times_out_as_unavailable(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings = load_settings(
            env="test",
            data_dir=tmp_path,
            keycloak_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            keycloak_admin_password="x",
            keycloak_timeout_seconds=1,
        )
        with pytest.raises(KeycloakUnavailable):
            await kc.delete_user(settings, STAFF, "someone")


async def test_only_the_account_realms_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(env="test", data_dir=tmp_path, keycloak_admin_password="x")
    for call in (kc.find_user, kc.delete_user, kc.logout_user):
        with pytest.raises(Invalid):
            await call(settings, "master", "someone")
        with pytest.raises(Invalid):
            await call(settings, CITIZENS, "../../../clients")
        with pytest.raises(Invalid):
            await call(settings, STAFF, "")


# Provisioning -------------------------------------------------------------------------


async def _snapshot(settings: Settings) -> dict[str, Any]:
    """Ids and settings of what provisioning manages: recreated objects get new ids."""
    state: dict[str, Any] = {}
    for realm in (CITIZENS, STAFF, SANDBOX):
        async with kc.connected(settings, realm) as admin:
            realm_id = (await admin.a_get_realm(realm))["id"]
            scopes = {}
            for scope in await admin.a_get_client_scopes():
                mappers = await admin.a_get_mappers_from_client_scope(scope["id"])
                scopes[scope["name"]] = (scope["id"], sorted((m["name"], m["id"]) for m in mappers))
            flows = {}
            for flow in await admin.a_get_authentication_flows():
                executions = await admin.a_get_authentication_flow_executions(flow["alias"])
                flows[flow["alias"]] = [(e["id"], e["requirement"]) for e in executions]
            keys = await admin.a_get_components({"parent": realm_id, "type": "org.keycloak.keys.KeyProvider"})
            providers = {
                p["alias"]: sorted(m["id"] for m in await admin.a_get_idp_mappers(p["alias"]))
                for p in await admin.a_get_idps()
            }
            clients = {
                c["clientId"]: (c["id"], c["enabled"], sorted(c.get("redirectUris", [])))
                for c in await admin.a_get_clients()
            }
            users = sorted(u["id"] for u in await admin.a_get_users()) if realm == SANDBOX else None
            state[realm] = {
                "scopes": scopes,
                "flows": flows,
                "keys": sorted((k["name"], k["id"]) for k in keys),
                "providers": providers,
                "clients": clients,
                "users": users,
            }
    return state


async def test_provisioning_a_second_time_changes_nothing(provisioned: Settings) -> None:
    before = await _snapshot(provisioned)
    assert await kc.provision_realms(provisioned) == [CITIZENS, STAFF, SANDBOX]
    await kc.sync_commune_clients(provisioned, COMMUNE, port=PORT)
    after = await _snapshot(provisioned)
    assert after == before
    assert len(after[SANDBOX]["users"]) == len(PEOPLE)
    assert [name for name, _ in after[CITIZENS]["keys"]].count("perron-rsa-oaep-256") == 1
    assert after[STAFF]["flows"]["perron-staff-browser"], "the staff browser flow is missing"


async def test_provisioning_repairs_what_was_changed_by_hand(provisioned: Settings) -> None:
    async with kc.connected(provisioned, STAFF) as admin:
        executions = await admin.a_get_authentication_flow_executions("perron-staff-browser")
        otp = next(e for e in executions if e.get("providerId") == "auth-otp-form")
        await admin.a_update_realm(STAFF, {"browserFlow": "browser"})
        await admin.a_update_authentication_flow_executions(
            {"id": otp["id"], "requirement": "DISABLED"}, "perron-staff-browser-forms"
        )
    async with kc.connected(provisioned, CITIZENS) as admin:
        scope = await admin.a_get_client_scope_by_name("perron")
        assert scope is not None
        mappers = await admin.a_get_mappers_from_client_scope(scope["id"])
        await admin.a_delete_mapper_from_client_scope(
            scope["id"], next(m["id"] for m in mappers if m["name"] == "perron_nrn")
        )
        stray = {
            "name": "stray",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {"claim.name": "perron_idp", "claim.value": "itsme", "id.token.claim": "true"},
        }
        await admin.a_add_mapper_to_client_scope(scope["id"], stray)
        await admin.a_update_realm(CITIZENS, {"verifyEmail": False})

    await kc.provision_realms(provisioned)

    async with kc.connected(provisioned, STAFF) as admin:
        staff = await admin.a_get_realm(STAFF)
        executions = await admin.a_get_authentication_flow_executions("perron-staff-browser")
    assert staff["browserFlow"] == "perron-staff-browser"
    assert [
        (e["level"], e["providerId"], e["requirement"]) for e in executions if not e.get("authenticationFlow")
    ] == [
        (0, "auth-cookie", "ALTERNATIVE"),
        (0, "identity-provider-redirector", "ALTERNATIVE"),
        (1, "auth-username-password-form", "REQUIRED"),
        (1, "auth-otp-form", "REQUIRED"),
    ]
    async with kc.connected(provisioned, CITIZENS) as admin:
        citizens = await admin.a_get_realm(CITIZENS)
        names = {m["name"] for m in await admin.a_get_mappers_from_client_scope(scope["id"])}
    assert citizens["verifyEmail"]
    assert "perron_nrn" in names and "stray" not in names


async def test_realms_are_configured_as_designed(provisioned: Settings) -> None:
    async with kc.connected(provisioned, CITIZENS) as admin:
        citizens = await admin.a_get_realm(CITIZENS)
        profile = await admin.a_get_realm_users_profile()
        jwks = (await admin.a_get_keys())["keys"]
        itsme = await admin.a_get_idp("itsme")
    config = itsme["config"]
    assert config["clientAuthMethod"] == "private_key_jwt" and config["clientId"] == kc.BROKER_CLIENT
    assert config["validateSignature"] == "true" and config["useJwksUrl"] == "true"
    assert config["jwksUrl"] == f"{KEYCLOAK_URL}/realms/{SANDBOX}/protocol/openid-connect/certs"
    assert config["defaultScope"] == "openid service:perron profile eid address email"
    assert config["syncMode"] == "FORCE" and itsme["trustEmail"]
    assert "logoutUrl" not in config
    assert citizens["loginTheme"] == citizens["emailTheme"] == "perron"
    assert set(citizens["supportedLocales"]) == {"fr", "nl", "de", "en"}
    assert citizens["registrationAllowed"] and citizens["verifyEmail"] and citizens["resetPasswordAllowed"]
    assert citizens["bruteForceProtected"]
    assert citizens["smtpServer"]["host"] == "127.0.0.1"
    assert profile["unmanagedAttributePolicy"] == "ADMIN_VIEW"
    assert any(key.get("algorithm") == "RSA-OAEP-256" and key.get("use") == "ENC" for key in jwks)
    async with kc.connected(provisioned, STAFF) as admin:
        staff = await admin.a_get_realm(STAFF)
    assert staff["browserFlow"] == "perron-staff-browser" and staff["bruteForceProtected"]
    assert not staff["registrationAllowed"]


async def test_commune_client_is_as_designed(provisioned: Settings) -> None:
    for realm in (CITIZENS, STAFF):
        async with kc.connected(provisioned, realm) as admin:
            client = await admin.a_get_client(await admin.a_get_client_id(CLIENT))
            scopes = {s["name"] for s in await admin.a_get_client_default_client_scopes(client["id"])}
        attributes = client["attributes"]
        assert client["enabled"] and not client["publicClient"]
        assert client["redirectUris"] == [CALLBACK]
        assert client["standardFlowEnabled"] and not client["directAccessGrantsEnabled"]
        assert not client["implicitFlowEnabled"]
        assert attributes["pkce.code.challenge.method"] == "S256"
        assert attributes["post.logout.redirect.uris"] == f"http://{HOST}:{PORT}/"
        assert (
            attributes["backchannel.logout.url"]
            == provisioned.backchannel_base() + "/_oidc/backchannel-logout"
        )
        assert attributes["backchannel.logout.session.required"] == "true"
        assert (
            attributes["perron_name"] == "Commune de test" and attributes["perron_name_nl"] == "Testgemeente"
        )
        assert attributes["perron_logo"] == f"http://{HOST}:{PORT}/logo?v=abc123"
        assert attributes["perron_home"] == f"http://{HOST}:{PORT}/"
        assert attributes["perron_primary"] == "#0b5e3c"
        assert ("perron" in scopes) is (realm == CITIZENS)
    await kc.sync_commune_clients(
        provisioned, _with(COMMUNE, names={"fr": "Commune de test"}, logo_path=None), port=PORT
    )
    try:
        async with kc.connected(provisioned, CITIZENS) as admin:
            attributes = (await admin.a_get_client(await admin.a_get_client_id(CLIENT)))["attributes"]
        assert "perron_name_nl" not in attributes and "perron_logo" not in attributes
        assert attributes["perron_name_fr"] == "Commune de test"
    finally:
        await kc.sync_commune_clients(provisioned, COMMUNE, port=PORT)


async def test_only_the_exact_redirect_uri_is_accepted(provisioned: Settings, browser: Browser) -> None:
    for wrong in (
        f"http://{HOST}:{PORT}/login/callback/../evil",
        f"http://evil.localhost:{PORT}/login/callback",
    ):
        attempt = await authorize(browser, CITIZENS, redirect_uri=wrong)
        assert attempt.page.response is not None and attempt.page.response.status_code == 400
        assert "redirect_uri" in attempt.page.response.text


async def test_archived_commune_cannot_log_anyone_in(provisioned: Settings, browser: Browser) -> None:
    archived = _with(COMMUNE, active=False)
    await kc.sync_commune_clients(provisioned, archived, port=PORT)
    try:
        attempt = await authorize(browser, CITIZENS)
        assert attempt.page.response is not None and attempt.page.response.status_code >= 400
        assert attempt.page.form_with("password") is None
    finally:
        await kc.sync_commune_clients(provisioned, COMMUNE, port=PORT)
    assert (await authorize(browser, CITIZENS)).page.form_with("password") is not None


def _with(commune: CommuneLogin, **changes: Any) -> CommuneLogin:
    values = {name: getattr(commune, name) for name in CommuneLogin.__dataclass_fields__}
    return CommuneLogin(**(values | changes))


# itsme through the sandbox ------------------------------------------------------------


async def test_sandbox_signs_then_encrypts_id_token_and_userinfo(provisioned: Settings) -> None:
    """A throwaway client of the sandbox, configured like ``perron-broker`` but with a key
    this test holds, shows what itsme sends: JWEs (RSA-OAEP-256, A128CBC-HS256) around JWSs
    (RS256), the identity claims in the userinfo only, the itsme claim names."""
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="probe", use="enc", alg="RSA-OAEP-256")
    client_id, secret = f"tmp-probe-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    async with kc.connected(provisioned, SANDBOX) as admin:
        broker = await admin.a_get_client(await admin.a_get_client_id(kc.BROKER_CLIENT))
        attributes = {k: v for k, v in broker["attributes"].items() if not k.startswith(("use.jwks", "jwks"))}
        probe = await admin.a_create_client(
            {
                "clientId": client_id,
                "secret": secret,
                "publicClient": False,
                "directAccessGrantsEnabled": True,
                "attributes": {
                    **attributes,
                    "use.jwks.string": "true",
                    "jwks.string": json.dumps({"keys": [json.loads(key.export_public())]}),
                },
                "defaultClientScopes": ["basic", "acr"],
                "optionalClientScopes": ["service:perron", "profile", "eid", "address", "email"],
            }
        )
        try:
            id_token, userinfo, content_type = await _probe_tokens(client_id, secret)
        finally:
            await admin.a_delete_client(probe)
    assert broker["clientAuthenticatorType"] == "client-jwt"
    assert broker["attributes"]["use.jwks.url"] == "true"
    assert (
        broker["attributes"]["jwks.url"] == f"{KEYCLOAK_URL}/realms/{CITIZENS}/protocol/openid-connect/certs"
    )
    assert content_type.startswith("application/jwt")
    async with httpx.AsyncClient(timeout=30) as http:
        keys = jwk.JWKSet.from_json(
            (await http.get(f"{KEYCLOAK_URL}/realms/{SANDBOX}/protocol/openid-connect/certs")).text
        )
    claims = _open(id_token, key, keys)
    assert claims["acr"] == ITSME_ACR_BASIC
    assert "http://itsme.services/v2/claim/BENationalNumber" not in claims
    profile = _open(userinfo, key, keys)
    assert profile["http://itsme.services/v2/claim/BENationalNumber"] == "85041708455"
    assert profile["address"] == {
        "street_address": "Rue Sylvain Guyaux 27",
        "postal_code": "7100",
        "locality": "La Louvière",
        "country": "BE",
    }
    assert profile["birthdate"] == "1985-04-17" and profile["given_name"] == "Camille"


async def _probe_tokens(client_id: str, secret: str) -> tuple[str, str, str]:
    person = PEOPLE["camille.dubois"]
    endpoint = f"{KEYCLOAK_URL}/realms/{SANDBOX}/protocol/openid-connect"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            endpoint + "/token",
            data={
                "grant_type": "password",
                "username": person["username"],
                "password": person["password"],
                "totp": totp(base64.b32decode(person["otp_secret"])),
                "scope": "openid service:perron profile eid address email",
            },
            auth=(client_id, secret),
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        info = await http.get(
            endpoint + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    return tokens["id_token"], info.text, info.headers["content-type"]


def _open(token: str, key: jwk.JWK, keys: jwk.JWKSet) -> dict[str, Any]:
    assert len(token.split(".")) == 5, "not a JWE"
    envelope = jwe.JWE()
    envelope.deserialize(token, key=key)
    assert (envelope.jose_header["alg"], envelope.jose_header["enc"]) == ("RSA-OAEP-256", "A128CBC-HS256")
    inner = jws.JWS()
    inner.deserialize(envelope.payload.decode())
    assert inner.jose_header["alg"] == "RS256"
    inner.verify(keys.get_key(inner.jose_header["kid"]), alg="RS256")
    claims: dict[str, Any] = json.loads(inner.payload)
    return claims


async def test_itsme_basic_login_gives_the_perron_claims(provisioned: Settings, browser: Browser) -> None:
    person = PEOPLE["sophie.renard"]
    await _forget_citizen(provisioned, person["email"])
    claims = await itsme_login(provisioned, browser, "sophie.renard", ITSME_ACR_BASIC, ui_locales="fr")
    assert claims["perron_idp"] == "itsme"
    assert claims["perron_itsme_acr"] == ITSME_ACR_BASIC
    assert claims["perron_nrn"] == person["national_number"]
    assert claims["perron_birthdate"] == person["birthdate"]
    assert claims["perron_address"] == {
        "street_address": "Rue de Landen 8",
        "postal_code": "4280",
        "locality": "Hannut",
        "country": "BE",
    }
    assert (claims["given_name"], claims["family_name"]) == ("Sophie", "Renard")
    assert claims["email"] == person["email"] and claims["email_verified"] is True
    assert claims["locale"] == "fr" and claims["sid"] and claims["auth_time"]


async def test_itsme_step_up_to_advanced_asks_the_one_time_code(
    provisioned: Settings, browser: Browser
) -> None:
    """What Perron sends for high assurance (fresh login, acr_advanced) reaches the sandbox:
    Keycloak's broker passes acr_values, prompt and max_age on, the sandbox asks password
    then one-time code, and the commune's ID token says advanced."""
    person = PEOPLE["camille.dubois"]
    await _forget_citizen(provisioned, person["email"])
    basic = await itsme_login(provisioned, browser, "camille.dubois", ITSME_ACR_BASIC)
    assert basic["perron_itsme_acr"] == ITSME_ACR_BASIC
    advanced = await itsme_login(
        provisioned, browser, "camille.dubois", ITSME_ACR_ADVANCED, prompt="login", max_age="60"
    )
    assert advanced["perron_itsme_acr"] == ITSME_ACR_ADVANCED
    assert advanced["perron_idp"] == "itsme" and advanced["sub"] == basic["sub"]
    assert advanced["perron_nrn"] == person["national_number"]
    assert advanced["auth_time"] >= basic["auth_time"]


async def test_a_basic_session_is_never_reused_for_advanced(provisioned: Settings, browser: Browser) -> None:
    """Even without a fresh login, asking acr_advanced of a browser logged in at basic goes
    back to itsme (Keycloak does not reuse a session for acr values it cannot map), and the
    sandbox asks password and one-time code again."""
    person = PEOPLE["julien.mathieu"]
    await _forget_citizen(provisioned, person["email"])
    await itsme_login(provisioned, browser, "julien.mathieu", ITSME_ACR_BASIC)
    advanced = await itsme_login(provisioned, browser, "julien.mathieu", ITSME_ACR_ADVANCED)
    assert advanced["perron_itsme_acr"] == ITSME_ACR_ADVANCED


async def test_single_sign_on_keeps_the_level_of_its_session(provisioned: Settings, browser: Browser) -> None:
    """A request without acr_values (another commune, say) reuses the session silently, and
    its token says how that session was opened: itsme, basic."""
    person = PEOPLE["pieter.janssens"]
    await _forget_citizen(provisioned, person["email"])
    first = await itsme_login(provisioned, browser, "pieter.janssens", ITSME_ACR_BASIC)
    attempt = await authorize(browser, CITIZENS)
    assert attempt.page.is_callback, "Keycloak asked again although a session exists"
    claims = await id_claims(CITIZENS, await exchange(provisioned, CITIZENS, attempt, attempt.page), attempt)
    assert claims["sid"] == first["sid"]
    assert claims["perron_idp"] == "itsme" and claims["perron_itsme_acr"] == ITSME_ACR_BASIC
    assert claims["perron_nrn"] == person["national_number"]


async def test_email_and_password_login_carries_no_itsme_claims(
    provisioned: Settings, browser: Browser
) -> None:
    address = "kc-test-citizen@perron.test"
    await _forget_citizen(provisioned, address)
    await _create_user(provisioned, CITIZENS, address, "Test", "Citizen", "Correct-horse-42!")
    attempt = await authorize(browser, CITIZENS)
    page = await browser.submit(
        attempt.page, attempt.page.form_with("password"), username=address, password="Correct-horse-42!"
    )
    claims = await id_claims(CITIZENS, await exchange(provisioned, CITIZENS, attempt, page), attempt)
    assert claims["email"] == address and claims["email_verified"] is True
    for itsme_claim in ("perron_idp", "perron_itsme_acr", "perron_nrn", "perron_address", "perron_birthdate"):
        assert itsme_claim not in claims
    await _forget_citizen(provisioned, address)


async def test_registration_cannot_smuggle_itsme_attributes(
    provisioned: Settings, browser: Browser, smtp: SMTPServer
) -> None:
    """Someone registering with e-mail gets a verification e-mail, and the itsme attributes
    they add to the form are not kept (unmanaged attributes: admin view only)."""
    address = "kc-test-newcomer@perron.test"
    await _forget_citizen(provisioned, address)
    attempt = await authorize(browser, CITIZENS)
    register = next(link for link in attempt.page.parsed().links if "login-actions/registration" in link)
    page = await browser.visit(urljoin(attempt.page.url, register.replace("&amp;", "&")))
    form = page.form_with("email")
    assert form is not None and "password" not in form["inputs"], (
        "Keycloak 26.7 asks the password after the e-mail"
    )
    smuggled = {
        "itsme_national_number": "85041708455",
        "user.attributes.itsme_national_number": "85041708455",
    }
    page = await browser.submit(page, form, email=address, firstName="New", lastName="Comer", **smuggled)
    async with kc.connected(provisioned, CITIZENS) as admin:
        users = await admin.a_get_users({"email": address, "exact": True, "briefRepresentation": False})
    assert len(users) == 1, page.response.text[:2000] if page.response else page.url
    assert not any(name.startswith("itsme_") for name in users[0].get("attributes", {}))
    assert not users[0]["emailVerified"]
    assert any("login-actions/action-token" in m.text or "action-token" in m.html for m in smtp.to(address))
    await _forget_citizen(provisioned, address)


# Staff --------------------------------------------------------------------------------


async def test_staff_without_authenticator_must_set_one_up(provisioned: Settings, browser: Browser) -> None:
    address = "kc-test-clerk@perron.test"
    async with kc.connected(provisioned, STAFF) as admin:
        for user in await admin.a_get_users({"email": address, "exact": True}):
            await admin.a_delete_user(user["id"])
    user_id = await _create_user(provisioned, STAFF, address, "Test", "Clerk", "Correct-horse-4242!")
    try:
        attempt = await authorize(browser, STAFF)
        password_form = attempt.page.form_with("password")
        page = await browser.submit(
            attempt.page, password_form, username=address, password="Correct-horse-4242!"
        )
        setup = page.form_with("totpSecret")
        assert setup is not None and "totp" in setup["inputs"], "no authenticator setup after the password"
        code = totp(setup["inputs"]["totpSecret"].encode())
        page = await browser.submit(page, setup, totp=code, userLabel="phone")
        claims = await id_claims(STAFF, await exchange(provisioned, STAFF, attempt, page), attempt)
        assert claims["sub"] == user_id and claims["email"] == address

        again = Browser()
        try:
            second = await authorize(again, STAFF)
            page = await again.submit(
                second.page,
                second.page.form_with("password"),
                username=address,
                password="Correct-horse-4242!",
            )
            assert page.form_with("otp") is not None, "the second login did not ask for the one-time code"
        finally:
            await again.close()
    finally:
        assert await kc.delete_user(provisioned, STAFF, user_id)


async def test_create_staff_user_invites_by_email_and_refuses_duplicates(
    provisioned: Settings, smtp: SMTPServer
) -> None:
    address = "kc-test-alderman@perron.test"
    async with kc.connected(provisioned, STAFF) as admin:
        for user in await admin.a_get_users({"email": address, "exact": True}):
            await admin.a_delete_user(user["id"])
    smtp.clear()
    user_id = await kc.create_staff_user(
        provisioned, " Kc-Test-Alderman@perron.test ", "Anne", "Échevine", "nl"
    )
    try:
        user = await kc.find_user(provisioned, STAFF, user_id)
        assert user is not None
        assert user["email"] == address and user["firstName"] == "Anne" and user["lastName"] == "Échevine"
        assert set(user["requiredActions"]) == {"UPDATE_PASSWORD", "CONFIGURE_TOTP"}
        assert user["attributes"]["locale"] == ["nl"]
        mails = smtp.to(address)
        assert len(mails) == 1
        assert f"/realms/{STAFF}/login-actions/action-token" in mails[0].text.replace("&amp;", "&")
        with pytest.raises(Conflict):
            await kc.create_staff_user(provisioned, address, "Anne", "Échevine", "nl")
        with pytest.raises(Invalid):
            await kc.create_staff_user(provisioned, "not-an-address", "Anne", "Échevine", "nl")
        with pytest.raises(Invalid):
            await kc.create_staff_user(provisioned, "other@perron.test", "Anne", "Échevine", "it")
        with pytest.raises(Invalid):
            await kc.create_staff_user(provisioned, "other@perron.test", " ", "Échevine", "fr")
        assert len(smtp.to(address)) == 1
    finally:
        assert await kc.delete_user(provisioned, STAFF, user_id)
    assert await kc.find_user(provisioned, STAFF, user_id) is None
    assert not await kc.delete_user(provisioned, STAFF, user_id)


async def test_staff_invitation_that_cannot_be_sent_leaves_no_account(provisioned: Settings) -> None:
    dead = provisioned.model_copy(update={"smtp_port": free_port()})
    await kc.provision_realms(dead)
    try:
        with pytest.raises(KeycloakRefused):
            await kc.create_staff_user(dead, "kc-test-nomail@perron.test", "No", "Mail", "fr")
    finally:
        await kc.provision_realms(provisioned)
    async with kc.connected(provisioned, STAFF) as admin:
        assert await admin.a_get_users({"email": "kc-test-nomail@perron.test", "exact": True}) == []


async def test_logout_user_ends_the_keycloak_session(provisioned: Settings, browser: Browser) -> None:
    person = PEOPLE["marcel.lambert"]
    await _forget_citizen(provisioned, person["email"])
    attempt = await authorize(browser, CITIZENS, kc_idp_hint="itsme", acr_values=ITSME_ACR_BASIC)
    page = await sandbox_login(browser, attempt.page, "marcel.lambert", otp=False)
    tokens = await exchange(provisioned, CITIZENS, attempt, page)
    claims = await id_claims(CITIZENS, tokens, attempt)
    await kc.logout_user(provisioned, CITIZENS, claims["sub"])
    async with httpx.AsyncClient(timeout=30) as http:
        refreshed = await http.post(
            f"{KEYCLOAK_URL}/realms/{CITIZENS}/protocol/openid-connect/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=(CLIENT, kc.client_secret(provisioned, CITIZENS, CLIENT)),
        )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    with pytest.raises(NotFound):
        await kc.logout_user(provisioned, CITIZENS, "00000000-0000-0000-0000-000000000000")


async def test_wrong_admin_password_is_refused_in_words(provisioned: Settings) -> None:
    wrong = provisioned.model_copy(update={"keycloak_admin_password": SecretStr("not-the-password")})
    with pytest.raises(KeycloakRefused) as refused:
        await kc.find_user(wrong, CITIZENS, "someone")
    assert "PERRON_KEYCLOAK_ADMIN_PASSWORD" in refused.value.message


# The command --------------------------------------------------------------------------


async def test_provision_command_syncs_every_commune(
    provisioned: Settings, settings: Settings, make_commune: Any, smtp: SMTPServer
) -> None:
    await make_commune(
        "kctest-alpha", domains=["kctest-alpha.test", "www.kctest-alpha.test"], languages=["fr", "nl"]
    )
    await make_commune("kctest-bravo", status=CommuneStatus.ARCHIVED)
    env = settings_env(settings) | {
        "PERRON_KEYCLOAK_URL": KEYCLOAK_URL,
        "PERRON_KEYCLOAK_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PERRON_SMTP_HOST": "127.0.0.1",
        "PERRON_SMTP_PORT": str(smtp.port),
        "PERRON_SMTP_STARTTLS": "false",
    }
    runner = CliRunner()
    try:
        result = await asyncio.to_thread(
            runner.invoke, main, ["keycloak", "provision", "--port", "8123"], env=env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert "Realms up to date: citizens, staff, itsme-sandbox." in result.output
        assert (
            "Client commune-kctest-alpha enabled: kctest-alpha.test, www.kctest-alpha.test" in result.output
        )
        assert "Client commune-kctest-bravo disabled (archived)" in result.output
        for realm in (CITIZENS, STAFF):
            async with kc.connected(provisioned, realm) as admin:
                alpha = await admin.a_get_client(await admin.a_get_client_id("commune-kctest-alpha"))
                bravo = await admin.a_get_client(await admin.a_get_client_id("commune-kctest-bravo"))
            assert sorted(alpha["redirectUris"]) == [
                "http://kctest-alpha.test:8123/login/callback",
                "http://www.kctest-alpha.test:8123/login/callback",
            ]
            assert alpha["enabled"] and not bravo["enabled"]
            assert alpha["attributes"]["perron_name_nl"] == "Kctest Alpha"
            assert alpha["attributes"]["perron_logo"].startswith(
                "http://kctest-alpha.test:8123/icons/icon-192.png?v="
            )
            assert alpha["secret"] == kc.client_secret(settings, realm, "commune-kctest-alpha")
        shown = await asyncio.to_thread(
            runner.invoke, main, ["keycloak", "status"], env=env, catch_exceptions=False
        )
        assert shown.exit_code == 0, shown.output
        assert "itsme-sandbox" in shown.output and "itsme" in shown.output
    finally:
        for realm in (CITIZENS, STAFF):
            async with kc.connected(provisioned, realm) as admin:
                for client_id in ("commune-kctest-alpha", "commune-kctest-bravo"):
                    internal = await admin.a_get_client_id(client_id)
                    if internal:
                        await admin.a_delete_client(internal)


async def _mail_to(smtp: SMTPServer, address: str, count: int = 1) -> list[Any]:
    """The e-mails Keycloak sent ``address`` through the platform's SMTP server (it sends them
    while answering the form, but give the SMTP exchange a moment)."""
    for _ in range(50):
        if len(smtp.to(address)) >= count:
            break
        await asyncio.sleep(0.1)
    return smtp.to(address)


async def test_keycloak_emails_arrive_by_the_platform_smtp_in_the_communes_language(
    provisioned: Settings, browser: Browser, smtp: SMTPServer
) -> None:
    """Registering from the commune's Dutch page: the verification e-mail is in Dutch and
    headed with the commune's Dutch name; a German-speaking citizen's password reset arrives
    in German. Both come through the SMTP server the platform is configured with."""
    newcomer = "kc-test-nl@perron.test"
    await _forget_citizen(provisioned, newcomer)
    attempt = await authorize(browser, CITIZENS, ui_locales="nl")
    register = next(link for link in attempt.page.parsed().links if "login-actions/registration" in link)
    page = await browser.visit(urljoin(attempt.page.url, register.replace("&amp;", "&")))
    await browser.submit(page, page.form_with("email"), email=newcomer, firstName="Noor", lastName="Peeters")
    [verification] = await _mail_to(smtp, newcomer)
    assert verification.subject == "E-mailadres verifiëren"
    assert "Testgemeente" in verification.html  # the commune's name in Dutch heads the e-mail

    reader = "kc-test-de@perron.test"
    await _forget_citizen(provisioned, reader)
    await _create_user(
        provisioned, CITIZENS, reader, "Lena", "Schmitz", "Correct-horse-42!", attributes={"locale": ["de"]}
    )
    attempt = await authorize(browser, CITIZENS, ui_locales="de")
    forgot = next(link for link in attempt.page.parsed().links if "login-actions/reset-credentials" in link)
    page = await browser.visit(urljoin(attempt.page.url, forgot.replace("&amp;", "&")))
    await browser.submit(page, page.form_with("username"), username=reader)
    [reset] = await _mail_to(smtp, reader)
    assert reset.subject == "Passwort zurücksetzen"
    await _forget_citizen(provisioned, newcomer)
    await _forget_citizen(provisioned, reader)
