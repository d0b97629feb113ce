"""The staff pages as an administrator uses them: invite, change roles, remove, each after a
confirmation page; only administrators get there, and the commune never loses its last one."""

from __future__ import annotations

from sqlalchemy import select

from perron.audit import AuditEntry
from perron.identity.models import Account, AccountKind
from perron.testing.harness import Harness, Tenant
from tests.identity.conftest import text


async def staff_accounts(perron: Harness, tenant: Tenant) -> dict[str, Account]:
    async with perron.transaction(tenant) as session:
        rows = await session.scalars(select(Account).where(Account.kind == AccountKind.STAFF))
        return {row.email or row.display_name: row for row in rows}


async def test_only_the_communes_administrators_manage_its_staff(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, bravo = two_tenants
    clerk = await perron.staff(alpha, roles=["staff"])
    citizen = await perron.citizen(alpha)
    bravo_admin = await perron.staff(bravo, roles=["admin"])
    assert (await perron.client(alpha).get("/admin/staff")).status_code == 401
    assert (await perron.client(alpha, person=clerk).get("/admin/staff")).status_code == 403
    assert (await perron.client(alpha, person=citizen).get("/admin/staff")).status_code == 403
    assert (await perron.client(alpha, person=bravo_admin).get("/admin/staff")).status_code == 401
    # Another commune's administrator sees only their own staff, and none of ours by id.
    at_home = perron.client(bravo, person=bravo_admin)
    assert clerk.account.display_name not in (await at_home.get("/admin/staff")).text
    assert (await at_home.get(f"/admin/staff/{clerk.id}")).status_code == 404

    # The navigation shows each page to whom may open it.
    admin = await perron.staff(alpha, roles=["admin"])
    admin_home = await perron.client(alpha, person=admin).get("/admin")
    assert 'href="/admin/staff"' in admin_home.text and 'href="/admin/residents"' in admin_home.text
    clerk_home = await perron.client(alpha, person=clerk).get("/admin")
    assert 'href="/admin/staff"' not in clerk_home.text and 'href="/admin/residents"' in clerk_home.text


async def test_an_invitation_is_confirmed_before_it_is_made(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], name="Ada Admin")
    client = perron.client(alpha, person=admin)
    form = {
        "display_name": "Léa Lambert",
        "email": "lea@alpha.be",
        "language": "fr",
        "roles": ["staff", "moderator"],
    }
    confirm = await perron.post_form(client, "/admin/staff", "/admin/staff", form)
    assert confirm.status_code == 200
    assert "Inviter Léa Lambert ?" in text(confirm) and "lea@alpha.be" in text(confirm)
    assert "lea@alpha.be" not in await staff_accounts(perron, alpha)  # nothing yet

    back = await client.post(
        "/admin/staff", data=form | {"confirm": "back", "_csrf_token": client.cookies.get("perron_csrf")}
    )
    assert back.status_code == 200 and 'value="Léa Lambert"' in text(back)  # the form, as typed

    done = await client.post(
        "/admin/staff", data=form | {"confirm": "yes", "_csrf_token": client.cookies.get("perron_csrf")}
    )
    assert done.status_code == 303
    lea = (await staff_accounts(perron, alpha))["lea@alpha.be"]
    assert lea.roles == ["moderator", "staff"] and lea.subject is None
    listing = await client.get(done.headers["location"])
    assert "Léa Lambert" in text(listing) and "En attente de la création de son identifiant" in text(listing)
    async with perron.transaction(alpha) as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.invite"))
    assert entry is not None and entry.actor_label == "Ada Admin"


async def test_a_wrong_invitation_comes_back_with_its_error_next_to_the_field(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], email="ada@alpha.be")
    client = perron.client(alpha, person=admin)
    base = {"display_name": "Léa Lambert", "email": "lea@alpha.be", "language": "fr", "roles": ["staff"]}
    for changes, field, message in [
        ({"email": "lea-at-alpha"}, "email", "Écrivez une adresse e-mail comme nom@commune.be."),
        ({"email": "ada@alpha.be"}, "email", "ada@alpha.be fait déjà partie du personnel de la commune."),
        ({"roles": []}, "roles", "Choisissez au moins un rôle."),
        ({"roles": ["chief"]}, "roles", "Il n'existe pas de rôle « chief »."),
    ]:
        response = await perron.post_form(client, "/admin/staff", "/admin/staff", base | changes)
        assert response.status_code == 400 and message in text(response)
        assert f'href="#field-{field}"' in response.text and f'id="error-{field}"' in response.text
        assert 'value="Léa Lambert"' in text(response)
    assert set(await staff_accounts(perron, alpha)) == {"ada@alpha.be"}


async def test_roles_change_after_confirmation_and_the_last_admin_stays(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], name="Ada Admin")
    clerk = await perron.staff(alpha, roles=["staff"], name="Claire Clerk")
    client = perron.client(alpha, person=admin)
    page = f"/admin/staff/{clerk.id}"
    confirm = await perron.post_form(client, page, f"{page}/roles", {"roles": ["staff", "territory.editor"]})
    assert confirm.status_code == 200 and "Changer les rôles de Claire Clerk ?" in text(confirm)
    assert (await staff_accounts(perron, alpha))["Claire Clerk"].roles == ["staff"]
    token = client.cookies.get("perron_csrf")
    done = await client.post(
        f"{page}/roles", data={"roles": ["staff", "territory.editor"], "confirm": "yes", "_csrf_token": token}
    )
    assert done.status_code == 303
    assert (await staff_accounts(perron, alpha))["Claire Clerk"].roles == ["staff", "territory.editor"]

    # The only administrator cannot take the role from themselves.
    own = f"/admin/staff/{admin.id}"
    refused = await perron.post_form(client, own, f"{own}/roles", {"roles": ["staff"]})
    assert refused.status_code == 400
    assert "Ada Admin est le dernier administrateur de la commune" in text(refused)
    assert (await staff_accounts(perron, alpha))["Ada Admin"].roles == ["admin"]


async def test_a_removed_staff_member_is_logged_out_and_leaves_the_list(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], name="Ada Admin")
    clerk = await perron.staff(alpha, roles=["staff"], name="Claire Clerk")
    clerk_client = perron.client(alpha, person=clerk)
    assert (await clerk_client.get("/admin/residents")).status_code == 200
    client = perron.client(alpha, person=admin)
    page = f"/admin/staff/{clerk.id}"
    confirm = await perron.post_form(client, page, f"{page}/remove", {})
    assert confirm.status_code == 200 and "Retirer Claire Clerk du personnel ?" in text(confirm)
    assert (await clerk_client.get("/admin/residents")).status_code == 200  # not yet
    done = await client.post(
        f"{page}/remove", data={"confirm": "yes", "_csrf_token": client.cookies.get("perron_csrf")}
    )
    assert done.status_code == 303
    assert (await clerk_client.get("/admin/residents")).status_code == 401
    listing = await client.get("/admin/staff")
    assert "Claire Clerk" not in text(listing)
    assert (await client.get(page)).status_code == 404
    # An administrator's own page offers no way to remove themselves.
    own = await client.get(f"/admin/staff/{admin.id}")
    assert f"/admin/staff/{admin.id}/remove" not in own.text
