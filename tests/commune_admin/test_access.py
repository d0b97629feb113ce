"""Who reaches the commune admin console: its administrators, on their own commune's host.
Other staff, citizens, visitors and another commune's administrator are turned away, and the
home page and the navigation lead each person to the sections they may open."""

from __future__ import annotations

import pytest

from perron.testing.harness import Harness, Person, Tenant
from tests.commune_admin.conftest import text

PAGES = ["/admin/branding", "/admin/domains", "/admin/legal", "/admin/audit", "/admin/audit.csv"]
FORMS = [
    ("/admin/branding", {"intent": "save", "primary_color": "#000000"}),
    ("/admin/branding/logo/remove", {"confirm": "yes"}),
    ("/admin/domains", {"host": "www.alpha.be"}),
    ("/admin/domains/remove", {"host": "alpha.test", "confirm": "yes"}),
    ("/admin/legal", {"privacy_extra.fr": "Pris en otage"}),
]


@pytest.mark.parametrize("path", PAGES)
async def test_each_page_opens_for_the_communes_administrator(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person, path: str
) -> None:
    response = await perron.client(two_tenants[0], person=alpha_admin).get(path)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", PAGES)
async def test_no_one_else_opens_them(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], bravo_admin: Person, path: str
) -> None:
    alpha, _ = two_tenants
    clerk = await perron.staff(alpha, roles=["staff", "territory.editor", "news.editor"])
    citizen = await perron.citizen(alpha)
    assert (await perron.client(alpha).get(path)).status_code == 401
    assert (await perron.client(alpha, person=clerk).get(path)).status_code == 403
    assert (await perron.client(alpha, person=citizen).get(path)).status_code == 403
    # Another commune's administrator's session means nothing here: not even logged in.
    assert (await perron.client(alpha, person=bravo_admin).get(path)).status_code == 401


async def test_forms_refuse_everyone_but_the_administrator_and_change_nothing(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person, bravo_admin: Person
) -> None:
    alpha, _ = two_tenants
    clerk = await perron.staff(alpha, roles=["staff"])
    before = (await perron.client(alpha, person=alpha_admin).get("/admin/audit")).text.count("audit-entry")
    # A valid form token (a double-submit cookie, not tied to a session), so that only the
    # pages' own guards can refuse.
    token = await perron.form_token(perron.client(alpha, person=clerk), "/admin")
    for person, status in ((clerk, 403), (bravo_admin, 401)):
        client = perron.client(alpha, person=person)
        client.cookies.set("perron_csrf", token, domain=alpha.host)
        for action, data in FORMS:
            response = await client.post(action, data={**data, "_csrf_token": token})
            assert response.status_code == status, (action, response.status_code)
    admin = perron.client(alpha, person=alpha_admin)
    assert (await admin.get("/admin/audit")).text.count("audit-entry") == before
    assert "alpha.test" in text(await admin.get("/admin/domains"))


async def test_home_and_navigation_lead_to_every_section_they_may_open(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    admin_home = await perron.client(alpha, person=alpha_admin).get("/admin")
    for path in ("/admin/branding", "/admin/domains", "/admin/legal", "/admin/audit", "/admin/staff"):
        # Once in the navigation, once as a card of the home page (with what it is for).
        assert admin_home.text.count(f'href="{path}"') == 2, path
    assert "Couleurs, police, logo, textes et page d'accueil." in text(admin_home)
    clerk = await perron.staff(alpha, roles=["staff"])
    clerk_home = await perron.client(alpha, person=clerk).get("/admin")
    assert 'href="/admin/residents"' in clerk_home.text
    for path in ("/admin/branding", "/admin/domains", "/admin/legal", "/admin/audit"):
        assert f'href="{path}"' not in clerk_home.text
    branding = await perron.client(alpha, person=alpha_admin).get("/admin/branding")
    assert '<a href="/admin/branding" aria-current="page">Apparence</a>' in branding.text
