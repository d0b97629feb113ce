"""What a visitor's browser sees, whatever Host it sends."""

import html
import json
import re

import pytest

from perron.db.scope import platform_scope
from perron.tenancy import actions
from perron.tenancy.models import CommuneStatus
from tests.conftest import CONSOLE_HOST, ClientFactory, MakeCommune


@pytest.fixture
async def hannut(make_commune: MakeCommune):
    return await make_commune(
        "hannut",
        languages=["fr", "nl"],
        names={"fr": "Hannut", "nl": "Hannuit"},
        domains=["hannut.test", "www.hannut.test"],
    )


async def test_primary_domain_serves_the_commune_site(hannut, client_for: ClientFactory) -> None:
    response = await client_for("hannut.test").get("/")
    assert response.status_code == 200
    assert "<h1>Hannut</h1>" in response.text
    assert '<html lang="fr">' in response.text
    assert 'href="/branding.css?v=' in response.text
    # The commune's stylesheet comes after the platform's defaults, so its colours win.
    assert response.text.index("/static/perron/perron.css") < response.text.index("/branding.css?v=")


@pytest.mark.parametrize("host", ["HANNUT.test", "hannut.test.", "hannut.test:8000", "Hannut.Test.:8000"])
async def test_host_spellings_reach_the_same_commune(hannut, client_for: ClientFactory, host: str) -> None:
    response = await client_for("placeholder").get("/", headers={"host": host})
    assert response.status_code == 200
    assert "<h1>Hannut</h1>" in response.text


async def test_alias_redirects_permanently_to_the_same_place_on_the_primary(
    hannut, client_for: ClientFactory
) -> None:
    response = await client_for("www.hannut.test:8000").get("/some/page?x=1&y=%C3%A9")
    assert response.status_code == 301
    assert response.headers["location"] == "http://hannut.test:8000/some/page?x=1&y=%C3%A9"
    secure = await client_for("www.hannut.test", scheme="https").get("/")
    assert secure.headers["location"] == "https://hannut.test/"


async def test_unknown_host_is_a_plain_404_naming_no_commune(hannut, client_for: ClientFactory) -> None:
    response = await client_for("ciney.test").get("/")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert "hannut" not in response.text.lower()


@pytest.mark.parametrize("host", ["", "bad host", "x:notaport", "[::1", "a..b"])
async def test_malformed_host_is_a_400(client_for: ClientFactory, host: str) -> None:
    response = await client_for("placeholder").get("/", headers={"host": host})
    assert response.status_code == 400
    assert response.text.startswith("Bad request:")


async def test_idn_domain_answers_in_any_spelling(
    make_commune: MakeCommune, client_for: ClientFactory
) -> None:
    await make_commune("etalle", domains=["étalle.test"])
    for host in ("xn--talle-9ra.test", "XN--TALLE-9RA.test.", "étalle.test".encode(), "ÉTALLE.test".encode()):
        response = await client_for("placeholder").get("/", headers={"host": host})
        assert response.status_code == 200, (host, response.text)


async def test_suspended_commune_shows_its_branded_notice(
    hannut, client_for: ClientFactory, database, runtime
) -> None:
    with platform_scope("test"):
        async with database.transaction() as session:
            commune = await actions.get_commune(session, "hannut")
            await actions.set_status(
                session,
                commune,
                CommuneStatus.SUSPENDED,
                notice={"fr": "Reprise lundi à 9 h.", "nl": "Hervatting maandag om 9 uur."},
            )
    client = client_for("hannut.test")
    response = await client.get("/anything")
    assert response.status_code == 503
    assert "Hannut" in response.text and "Reprise lundi à 9 h." in response.text
    assert 'href="/branding.css?v=' in response.text
    dutch = await client.get("/", headers={"accept-language": "nl"})
    assert "Hervatting maandag om 9 uur." in dutch.text and "tijdelijk niet beschikbaar" in dutch.text
    assert (await client.get("/branding.css")).status_code == 200
    assert (await client.get("/static/perron/perron.css")).status_code == 200
    # Only the files the notice needs: nothing that merely starts like them.
    for path in ("/logout", "/logos", "/manifest.webmanifest.bak", "/news"):
        assert (await client.get(path)).status_code == 503, path


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (CommuneStatus.PROVISIONING, 503, "being prepared"),
        (CommuneStatus.ARCHIVED, 410, "has closed"),
    ],
)
async def test_sites_not_open_answer_plainly(
    make_commune: MakeCommune, client_for: ClientFactory, status, code: int, text: str
) -> None:
    await make_commune("dinant", status=status)
    response = await client_for("dinant.test").get("/")
    assert response.status_code == code
    assert text in response.text
    assert "dinant" not in response.text.lower()


async def test_console_answers_on_its_own_host(hannut, client_for: ClientFactory) -> None:
    response = await client_for(CONSOLE_HOST).get("/", headers={"accept-language": "en"})
    assert response.status_code == 200
    assert "Platform status" in response.text
    assert "All systems are working." in response.text
    assert re.search(r"Active</th><td>1</td>", response.text)
    assert (await client_for("hannut.test").get("/metrics")).status_code == 404


async def test_health_and_readiness_answer_on_any_host(client_for: ClientFactory) -> None:
    client = client_for("10.0.0.5")
    assert (await client.get("/healthz")).text == "ok\n"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert json.loads(ready.text) == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "runtime": "ok"},
    }


async def test_readiness_fails_when_the_database_is_unreachable(
    client_for: ClientFactory, runtime, monkeypatch
) -> None:
    async def broken() -> None:
        raise ConnectionError("no route to database")

    monkeypatch.setattr(runtime.database, "ping", broken)
    ready = await client_for("10.0.0.5").get("/readyz")
    assert ready.status_code == 503
    assert json.loads(ready.text)["checks"]["database"] == "unreachable"


async def test_security_headers_on_every_kind_of_response(hannut, client_for: ClientFactory) -> None:
    for host, path in (
        ("hannut.test", "/"),
        ("www.hannut.test", "/"),
        ("nope.test", "/"),
        (CONSOLE_HOST, "/"),
    ):
        response = await client_for(host).get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])
        assert "strict-transport-security" not in response.headers
    secure = await client_for("hannut.test", scheme="https").get("/")
    assert secure.headers["strict-transport-security"] == "max-age=31536000"


async def test_pages_have_no_inline_script_or_style(hannut, client_for: ClientFactory) -> None:
    page = (await client_for("hannut.test").get("/")).text
    assert "<script" not in page
    assert "<style" not in page and " style=" not in page


async def test_branding_stylesheet_is_cacheable_per_version(hannut, client_for: ClientFactory) -> None:
    client = client_for("hannut.test")
    page = (await client.get("/")).text
    versioned = re.search(r'href="(/branding.css\?v=[0-9a-f]+)"', page).group(1)
    response = await client.get(versioned)
    assert response.headers["content-type"].startswith("text/css")
    assert "--perron-primary: #1f4e79;" in response.text
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (await client.get("/branding.css?v=old")).headers["cache-control"] == "public, max-age=60"


async def test_language_follows_choice_then_cookie_then_browser(hannut, client_for: ClientFactory) -> None:
    client = client_for("hannut.test")
    assert '<html lang="nl">' in (await client.get("/", headers={"accept-language": "nl-BE"})).text
    chosen = await client.get("/?lang=nl")
    assert "Naar de hoofdinhoud" in chosen.text
    assert "perron_lang=nl" in chosen.headers["set-cookie"]
    assert '<html lang="nl">' in (await client.get("/")).text  # remembered by the cookie
    not_offered = await client.get("/?lang=de")  # Hannut offers fr and nl: the cookie still decides
    assert '<html lang="nl">' in not_offered.text
    assert "set-cookie" not in not_offered.headers or "perron_lang" not in not_offered.headers["set-cookie"]


async def test_errors_are_branded_and_show_no_trace(
    hannut, client_for: ClientFactory, app_and_runtime
) -> None:
    client = client_for("hannut.test")
    missing = await client.get("/no/such/page", headers={"accept-language": "fr"})
    assert missing.status_code == 404
    assert "Cette page n'existe pas" in html.unescape(missing.text) and "Hannut" in missing.text
    assert "Traceback" not in missing.text
    as_json = await client.get("/no/such/page", headers={"accept": "application/json"})
    assert as_json.json()["error"] == "Cette page n'existe pas"
    assert as_json.json()["request_id"] == as_json.headers["x-request-id"]


async def test_an_unexpected_error_shows_a_reference_not_a_trace(
    hannut, client_for: ClientFactory, runtime, monkeypatch
) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr("perron.web.site.site_context", explode)
    response = await client_for("hannut.test").get("/")
    assert response.status_code == 500
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in response.text


async def test_forms_need_a_csrf_token(hannut, client_for: ClientFactory) -> None:
    client = client_for("hannut.test")
    refused = await client.post("/_probe/echo", data={"name": "x"}, headers={"accept-language": "fr"})
    assert refused.status_code == 403
    assert "Rechargez la page" in html.unescape(refused.text)
    form = await client.get("/_probe/form")
    token = form.cookies["perron_csrf"]
    assert f'name="_csrf_token" value="{token}"' in form.text
    accepted = await client.post("/_probe/echo", data={"name": "x", "_csrf_token": token})
    assert accepted.status_code == 200
    other = await client_for("hannut.test").post(
        "/_probe/echo", data={"name": "x", "_csrf_token": "forged" * 10}
    )
    assert other.status_code == 403


async def test_readers_get_no_cookie(hannut, client_for: ClientFactory) -> None:
    client = client_for("hannut.test")
    for path in ("/", "/branding.css", "/static/perron/perron.css"):
        assert "set-cookie" not in (await client.get(path)).headers, path


async def test_request_bodies_are_limited(hannut, client_for: ClientFactory, settings) -> None:
    client = client_for("hannut.test")
    token = (await client.get("/_probe/form")).cookies["perron_csrf"]
    headers = {"x-csrftoken": token, "content-type": "application/octet-stream"}
    fits = await client.post("/_probe/echo", content=b"x" * 1000, headers=headers)
    assert fits.json() == {"received": 1000}
    too_big = await client.post(
        "/_probe/echo", content=b"x" * (settings.max_request_body_bytes + 1), headers=headers
    )
    assert too_big.status_code == 413
    assert "trop volumineux" in html.unescape(too_big.text)


async def test_metrics_need_loopback_or_the_token(client_for: ClientFactory) -> None:
    local = await client_for(CONSOLE_HOST).get("/metrics")
    assert local.status_code == 200
    assert "perron_http_requests_total" in local.text
    remote = await client_for(CONSOLE_HOST, client_address=("203.0.113.9", 4000)).get("/metrics")
    assert remote.status_code == 401
