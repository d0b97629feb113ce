"""The site's web addresses: added, made main, removed (after a confirmation), each audited
and effective at once; every refusal explained in words, and an address another commune
uses is refused without naming that commune."""

from __future__ import annotations

import httpx

from perron.db.scope import platform_scope
from perron.tenancy import actions
from perron.tenancy.models import Domain
from perron.testing.harness import Harness, Person, Tenant
from tests.commune_admin.conftest import entries, text

PAGE = "/admin/domains"


async def hosts_of(perron: Harness, tenant: Tenant) -> list[tuple[str, bool]]:
    with platform_scope("test: read a commune's domains"):
        async with perron.database.session() as session:
            domains: list[Domain] = await actions.commune_domains(session, tenant.id)
    return [(domain.host, domain.is_primary) for domain in domains]


async def confirm(client: httpx.AsyncClient, action: str, host: str, answer: str) -> httpx.Response:
    token = client.cookies.get("perron_csrf")
    return await client.post(action, data={"host": host, "confirm": answer, "_csrf_token": token})


async def test_an_alias_is_added_listed_after_the_main_address_and_redirects(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    added = await perron.post_form(client, PAGE, PAGE, {"host": " WWW.Alpha.be. "})
    assert added.status_code == 303 and added.headers["location"] == f"{PAGE}?done=added"
    assert await hosts_of(perron, alpha) == [("alpha.test", True), ("www.alpha.be", False)]
    page = await client.get(added.headers["location"])
    listing = text(page)
    assert "L'adresse est ajoutée." in listing
    assert listing.index("alpha.test") < listing.index("www.alpha.be")
    assert "Envoie les visiteurs vers alpha.test." in listing
    assert "un enregistrement « CNAME » vers alpha.test" in listing  # what to ask, in plain words
    alias = await perron.client("www.alpha.be").get("/privacy?lang=fr")
    assert alias.status_code == 301 and alias.headers["location"] == "http://alpha.test/privacy?lang=fr"

    [entry] = await entries(perron, alpha, "domain.add")
    assert entry.actor_label == "Ada Admin" and entry.object_id == "www.alpha.be"
    assert "A ajouté l'adresse www.alpha.be" in text(await client.get("/admin/audit"))

    again = await perron.post_form(client, PAGE, PAGE, {"host": "www.alpha.be"})
    assert again.headers["location"] == f"{PAGE}?done=already"
    assert len(await entries(perron, alpha, "domain.add")) == 1


async def test_bad_addresses_are_explained_and_change_nothing(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    cases = [
        ("", "Tapez l'adresse, comme www.hannut.be."),
        ("https://www.alpha.be/", "Tapez l'adresse seule, sans « https:// », « / » ni numéro de port"),
        ("alpha.be:8080", "Tapez l'adresse seule"),
        ("www alpha.be", "Une adresse ne contient ni espace"),
        ("alpha", "Une adresse a au moins deux parties séparées par un point"),
        ("192.0.2.7", "C'est un numéro (une adresse IP)"),
        ("-alpha.be", "Cette adresse contient une partie non autorisée"),
        ("a" * 64 + ".be", "Cette adresse contient une partie non autorisée"),
        (("abcdefgh." * 30) + "be", "Cette adresse est trop longue"),
        ("console.test", "Cette adresse appartient à la plateforme elle-même"),
    ]
    for typed, message in cases:
        response = await perron.post_form(client, PAGE, PAGE, {"host": typed})
        assert response.status_code == 400, typed
        assert message in text(response), (typed, text(response)[:1500])
        assert 'href="#field-host"' in response.text and 'aria-invalid="true"' in response.text
    assert await hosts_of(perron, alpha) == [("alpha.test", True)]
    assert await entries(perron, alpha, "domain.add") == []


async def test_an_address_of_another_commune_is_refused_without_naming_it(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, bravo = two_tenants
    async with perron.transaction(bravo) as session:
        commune = await actions.get_commune(session, "bravo")
        await actions.add_domain(session, commune, "www.bravo-secret.be")
    client = perron.client(alpha, person=alpha_admin)
    for host in ("bravo.test", "WWW.bravo-secret.be"):
        response = await perron.post_form(client, PAGE, PAGE, {"host": host})
        assert response.status_code == 400
        page = text(response)
        assert "Cette adresse est déjà utilisée par un autre site de cette plateforme." in page
        assert "Bravo" not in page and "bravo'" not in page and "commune 'bravo'" not in response.text
    assert await hosts_of(perron, alpha) == [("alpha.test", True)]
    assert [host for host, _ in await hosts_of(perron, bravo)] == ["bravo.test", "www.bravo-secret.be"]


async def test_the_main_address_changes_after_a_confirmation(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    await perron.post_form(client, PAGE, PAGE, {"host": "www.alpha.be"})
    asked = await perron.post_form(client, PAGE, f"{PAGE}/primary", {"host": "www.alpha.be"})
    assert asked.status_code == 200
    question = text(asked)
    assert "Faire de www.alpha.be l'adresse principale ?" in question
    assert "ouvrez www.alpha.be dans un nouvel onglet" in question
    assert await hosts_of(perron, alpha) == [("alpha.test", True), ("www.alpha.be", False)]
    back = await confirm(client, f"{PAGE}/primary", "www.alpha.be", "back")
    assert back.headers["location"] == f"{PAGE}?done=unchanged"

    done = await confirm(client, f"{PAGE}/primary", "www.alpha.be", "yes")
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?done=primary"
    assert await hosts_of(perron, alpha) == [("www.alpha.be", True), ("alpha.test", False)]
    # At once: the former main address now sends visitors to the new one.
    moved = await perron.client(alpha).get("/accessibility")
    assert moved.status_code == 301 and moved.headers["location"] == "http://www.alpha.be/accessibility"
    [entry] = await entries(perron, alpha, "domain.make_primary")
    assert entry.changes == {"primary": ["alpha.test", "www.alpha.be"]} and entry.actor_label == "Ada Admin"


async def test_an_alias_is_removed_after_a_confirmation_but_never_the_main_address(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    await perron.post_form(client, PAGE, PAGE, {"host": "www.alpha.be"})

    main = await perron.post_form(client, PAGE, f"{PAGE}/remove", {"host": "alpha.test", "confirm": "yes"})
    assert main.status_code == 400
    assert "alpha.test est l'adresse principale du site : faites d'abord" in text(main)
    foreign = await confirm(client, f"{PAGE}/remove", "bravo.test", "yes")
    assert foreign.status_code == 400 and "Cette adresse n'est pas une des adresses du site." in text(foreign)
    nonsense = await confirm(client, f"{PAGE}/remove", "not a host", "yes")
    assert nonsense.status_code == 400
    assert [host for host, _ in await hosts_of(perron, alpha)] == ["alpha.test", "www.alpha.be"]

    asked = await perron.post_form(client, PAGE, f"{PAGE}/remove", {"host": "www.alpha.be"})
    assert asked.status_code == 200 and "Supprimer l'adresse www.alpha.be ?" in text(asked)
    assert len(await hosts_of(perron, alpha)) == 2
    done = await confirm(client, f"{PAGE}/remove", "www.alpha.be", "yes")
    assert done.headers["location"] == f"{PAGE}?done=removed"
    assert await hosts_of(perron, alpha) == [("alpha.test", True)]
    assert (await perron.client("www.alpha.be").get("/")).status_code == 404
    [entry] = await entries(perron, alpha, "domain.remove")
    assert entry.object_id == "www.alpha.be" and entry.actor_label == "Ada Admin"


async def test_a_commune_admin_adds_ten_addresses_at_most(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    for number in range(9):
        response = await perron.post_form(client, PAGE, PAGE, {"host": f"alias{number}.alpha.be"})
        assert response.status_code == 303
    page = await client.get(PAGE)
    assert "Le site a 10 adresses, le maximum." in text(page) and 'id="field-host"' not in page.text
    refused = await perron.post_form(client, f"{PAGE}?done=added", PAGE, {"host": "one-more.alpha.be"})
    assert refused.status_code == 400 and "Le site a déjà 10 adresses" in text(refused)
    assert len(await hosts_of(perron, alpha)) == 10
