"""The commune's staff switch modules on and off and edit their settings from /admin."""

from __future__ import annotations

from perron.audit import SYSTEM, acting_as
from perron.db.scope import tenant_scope
from perron.identity import actions as identity
from perron.identity.models import AccountKind, Assurance
from perron.identity.sessions import SESSION_COOKIE, open_session
from perron.modules import activation


async def staff_client(runtime, client_for, commune, roles=("admin",)):
    with tenant_scope(commune.id), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            account = await identity.create_account(
                session, commune.id, display_name="Agent", kind=AccountKind.STAFF, roles=roles
            )
            token = await open_session(session, account, Assurance.SUBSTANTIAL)
    client = client_for(f"{commune.slug}.test")
    client.cookies.set(SESSION_COOKIE, token, domain=f"{commune.slug}.test")
    return client


async def post(client, page: str, action: str, data: dict[str, str]):
    await client.get(page)
    return await client.post(action, data={**data, "_csrf_token": client.cookies.get("perron_csrf")})


async def settings_of(runtime, commune):
    with tenant_scope(commune.id):
        async with runtime.database.session() as session:
            return await activation.settings_of(session, commune.id, "news")


async def test_switching_a_module_on_and_off_from_the_admin(runtime, client_for, two_communes) -> None:
    alpha, _ = two_communes
    admin = await staff_client(runtime, client_for, alpha)
    listing = await admin.get("/admin/modules")
    assert listing.status_code == 200 and "Actualités" in listing.text
    response = await post(admin, "/admin/modules", "/admin/modules/news/enable", {})
    assert response.status_code == 303
    assert (await client_for("alpha.test").get("/news")).status_code == 200
    assert (await client_for("bravo.test").get("/news")).status_code == 404  # only alpha
    await post(admin, "/admin/modules", "/admin/modules/news/disable", {})
    assert (await client_for("alpha.test").get("/news")).status_code == 404


async def test_settings_form_saves_valid_values_and_refuses_others(runtime, client_for, two_communes) -> None:
    alpha, bravo = two_communes
    admin = await staff_client(runtime, client_for, alpha)
    form = await admin.get("/admin/modules/news/settings")
    assert form.status_code == 200 and 'name="items_on_home"' in form.text
    saved = await post(
        admin,
        "/admin/modules/news/settings",
        "/admin/modules/news/settings",
        {"items_on_home": "5", "page_size": ""},
    )
    assert saved.status_code == 303
    assert (await settings_of(runtime, alpha)).items_on_home == 5
    assert (await settings_of(runtime, bravo)).items_on_home == 3  # bravo keeps the default

    refused = await post(
        admin, "/admin/modules/news/settings", "/admin/modules/news/settings", {"items_on_home": "99"}
    )
    assert refused.status_code == 400
    assert 'id="error-items_on_home"' in refused.text
    assert (await settings_of(runtime, alpha)).items_on_home == 5  # nothing saved

    for value in ("three", "-1", ""):
        response = await post(
            admin, "/admin/modules/news/settings", "/admin/modules/news/settings", {"page_size": value or "0"}
        )
        assert response.status_code == 400
    assert (await settings_of(runtime, alpha)).page_size == 10


async def test_only_the_communes_admins_manage_modules(runtime, client_for, two_communes) -> None:
    alpha, bravo = two_communes
    assert (await client_for("alpha.test").get("/admin/modules")).status_code == 401
    editor = await staff_client(runtime, client_for, alpha, roles=("news.editor",))
    assert (await editor.get("/admin/modules")).status_code == 403
    bravo_admin = await staff_client(runtime, client_for, bravo)
    bravo_admin.cookies.set(SESSION_COOKIE, bravo_admin.cookies.get(SESSION_COOKIE), domain="alpha.test")
    stolen = client_for("alpha.test")
    stolen.cookies.set(SESSION_COOKIE, bravo_admin.cookies.get(SESSION_COOKIE, domain="bravo.test"))
    assert (await stolen.get("/admin/modules")).status_code == 401  # bravo's session means nothing here
    unknown = await staff_client(runtime, client_for, alpha)
    assert (await unknown.get("/admin/modules/nope/settings")).status_code == 404
