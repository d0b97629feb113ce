"""What an intercommunale shares with its members: module defaults for new communes, module
settings every member inherits (and may override unless locked), and the preview of which
communes a change affects."""

from __future__ import annotations

from sqlalchemy import select

from perron.db.scope import platform_scope
from perron.modules import activation
from perron.tenancy.models import IntercommunaleSettings
from perron.testing.harness import Harness
from tests.console.conftest import Bodies, console, submit, text


async def test_a_change_shows_who_it_affects_before_it_is_saved(perron: Harness, bodies: Bodies) -> None:
    gembloux = await perron.commune("gembloux", intercommunale="bep")
    for tenant in (bodies.ciney, gembloux, bodies.arlon):
        await perron.enable(tenant, "news")
    async with perron.transaction(gembloux) as session:  # Gembloux chose its own page size
        await activation.update_settings(session, gembloux.id, "news", {"page_size": 20})
    client = console(perron, bodies.bep_admin)
    page = "/intercommunales/bep/modules/news"
    form = {"page_size": "15", "allow.page_size": "on", "allow.items_on_home": "on", "items_on_home": "4"}
    preview = await submit(perron, client, page, page, form)
    assert preview.status_code == 200
    seen = text(preview)
    assert "What this change does" in seen and "Ciney News per page 10 15" in seen, seen
    assert "Gembloux News per page" not in seen and "Gembloux (News per page)" in seen  # keeps its own
    assert "Arlon" not in seen
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            assert await session.scalar(select(IntercommunaleSettings)) is None  # nothing saved yet
    token = await perron.form_token(client, page)
    payload = preview.text.split('name="payload" value="')[1].split('"')[0]
    import html

    confirmed = await client.post(
        page, data={"_csrf_token": token, "payload": html.unescape(payload), "confirm": "yes"}
    )
    assert confirmed.status_code == 303
    async with perron.transaction(bodies.ciney) as session:
        assert (await activation.settings_of(session, bodies.ciney.id, "news")).page_size == 15
    async with perron.transaction(gembloux) as session:
        assert (await activation.settings_of(session, gembloux.id, "news")).page_size == 20
    async with perron.transaction(bodies.arlon) as session:
        assert (await activation.settings_of(session, bodies.arlon.id, "news")).page_size == 10

    # Locked: every member uses it, Gembloux's own value included, and communes cannot change it.
    locked = await submit(
        perron, client, page, page, {"page_size": "15", "items_on_home": "4", "allow.items_on_home": "on"}
    )
    assert "Gembloux News per page (replaces the commune's own value) 20 15" in text(locked), text(locked)
    payload = html.unescape(locked.text.split('name="payload" value="')[1].split('"')[0])
    token = await perron.form_token(client, page)
    assert (
        await client.post(page, data={"_csrf_token": token, "payload": payload, "confirm": "yes"})
    ).status_code == 303
    async with perron.transaction(gembloux) as session:
        assert (await activation.settings_of(session, gembloux.id, "news")).page_size == 15
    admin = await perron.staff(gembloux)
    site = perron.client(gembloux, person=admin)
    form_page = await site.get("/admin/modules/news/settings")
    assert "Set by your intercommunale" in text(form_page) or "Fixé par votre intercommunale" in text(
        form_page
    )
    refused = await perron.post_form(
        site, "/admin/modules/news/settings", "/admin/modules/news/settings", {"page_size": "30"}
    )
    async with perron.transaction(gembloux) as session:
        assert (await activation.settings_of(session, gembloux.id, "news")).page_size == 15
    assert refused.status_code in (303, 400)


async def test_bad_values_and_other_intercommunales_are_refused(perron: Harness, bodies: Bodies) -> None:
    client = console(perron, bodies.bep_admin)
    page = "/intercommunales/bep/modules/news"
    bad = await submit(perron, client, page, page, {"page_size": "500", "allow.page_size": "on"})
    assert bad.status_code == 400 and "page_size" in bad.text
    empty_lock = await submit(perron, client, page, page, {})
    assert empty_lock.status_code == 400 and "give it a value first" in text(empty_lock)
    forged = await submit(perron, client, page, page, {"confirm": "yes", "payload": "{not json"})
    assert forged.status_code == 400 and "could not be read" in text(forged)
    other = console(perron, bodies.idelux_admin)
    assert (await other.get(page)).status_code == 404
    assert (
        await submit(perron, other, "/intercommunales/idelux/modules", page, {"page_size": "12"})
    ).status_code == 404
    assert (await client.get("/intercommunales/bep/modules/nope")).status_code == 404


async def test_new_members_get_the_intercommunales_modules(perron: Harness, bodies: Bodies) -> None:
    client = console(perron, bodies.bep_admin)
    saved = await submit(
        perron, client, "/intercommunales/bep/modules", "/intercommunales/bep/modules", {"module.news": "on"}
    )
    assert saved.status_code == 303
    from tests.console.test_wizard import start

    draft = await start(perron, client)
    await submit(
        perron,
        client,
        f"/onboardings/{draft}/step/commune",
        f"/onboardings/{draft}/step/commune",
        {"language.fr": "on", "name.fr": "Gesves", "nis_code": "92054"},
    )
    await submit(
        perron,
        client,
        f"/onboardings/{draft}/step/addresses",
        f"/onboardings/{draft}/step/addresses",
        {"primary_domain": "gesves.test"},
    )
    await submit(
        perron, client, f"/onboardings/{draft}/step/branding", f"/onboardings/{draft}/step/branding", {}
    )
    modules = await client.get(f"/onboardings/{draft}/step/modules")
    assert 'name="module.news" checked' in modules.text
    idelux = console(perron, bodies.idelux_admin)
    assert 'name="module.news" checked' not in (await idelux.get("/intercommunales/idelux/modules")).text
