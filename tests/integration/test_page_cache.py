"""Public pages are rendered once per change for anonymous visitors, never shared wrongly."""

from __future__ import annotations

import pytest

from perron.db.scope import tenant_scope
from perron.tenancy import actions
from perron.web.page_cache import LOOKUPS, _storable
from tests.conftest import ClientFactory, MakeCommune


def count(result: str) -> float:
    return LOOKUPS.labels(result)._value.get()


@pytest.fixture
async def communes(make_commune: MakeCommune):
    return (
        await make_commune("hannut", languages=["fr", "nl"], names={"fr": "Hannut", "nl": "Hannuit"}),
        await make_commune("andenne"),
    )


async def test_a_second_anonymous_visit_is_served_from_the_cache(communes, client_for: ClientFactory) -> None:
    client = client_for("hannut.test")
    first = await client.get("/")
    hits = count("hit")
    second = await client.get("/")
    assert count("hit") == hits + 1
    assert second.text == first.text
    assert second.headers["x-request-id"] != first.headers["x-request-id"]  # per-request headers stay fresh
    assert "content-security-policy" in second.headers


async def test_communes_and_languages_never_share_an_entry(communes, client_for: ClientFactory) -> None:
    for _ in range(2):
        hannut = await client_for("hannut.test").get("/")
        andenne = await client_for("andenne.test").get("/")
        dutch = await client_for("hannut.test").get("/", headers={"accept-language": "nl"})
        assert "<h1>Hannut</h1>" in hannut.text
        assert "<h1>Andenne</h1>" in andenne.text
        assert "<h1>Hannuit</h1>" in dutch.text


async def test_a_change_to_the_commune_shows_at_once(communes, client_for: ClientFactory, database) -> None:
    hannut, _ = communes
    client = client_for("hannut.test")
    before = await client.get("/")
    await client.get("/")
    with tenant_scope(hannut.id):
        async with database.transaction() as session:
            await actions.update_branding(session, hannut.id, tagline={"fr": "Nouvelle devise"})
    after = await client.get("/")
    assert "Nouvelle devise" in after.text
    assert after.text != before.text


async def test_visitors_with_cookies_are_never_served_a_stored_page(
    communes, client_for: ClientFactory
) -> None:
    client = client_for("hannut.test")
    await client.get("/")
    bypass, hits = count("bypass"), count("hit")
    await client.get("/", headers={"cookie": "perron_session=abc"})
    await client.get("/", headers={"authorization": "Bearer x"})
    assert count("bypass") == bypass + 2
    assert count("hit") == hits
    await client.get("/", headers={"cookie": "perron_lang=fr"})  # a language choice is not a session
    assert count("hit") == hits + 1


def test_only_plain_successful_responses_are_stored() -> None:
    assert _storable({"status": 200, "headers": []}, [b"x"])
    assert not _storable({"status": 404, "headers": []}, [b"x"])
    assert not _storable({"status": 200, "headers": [(b"set-cookie", b"a=b")]}, [b"x"])
    assert not _storable({"status": 200, "headers": []}, [b"x" * 300_000])
