"""Residency without itsme: the code staff send by post, and the town hall.

A code is printed once on a letter and typed by the person on the commune's site: the right
one verifies their residency at the letter's address; a wrong, expired, used or locked one
is refused with a message that says which, and changes nothing. Staff of another commune
see none of this commune's residents and cannot issue them codes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select, update

from perron.audit import AuditEntry
from perron.errors import Invalid
from perron.i18n import using_language
from perron.identity import residency
from perron.identity.models import Account, Assurance, ResidencyCode
from perron.territory import actions as territory
from perron.testing.harness import Harness, Person, Tenant
from tests.identity.conftest import text

CODE = re.compile(r'<p class="status">([A-Z2-9]{4}-[A-Z2-9]{4})</p>')


async def add_street(perron: Harness, tenant: Tenant, names: dict[str, str], postcode: str = "4280") -> UUID:
    async with perron.transaction(tenant) as session:
        street = await territory.create_street(session, tenant.id, names=names, postcode=postcode)
    return street.id


async def account(perron: Harness, tenant: Tenant, account_id: UUID) -> Account | None:
    async with perron.transaction(tenant) as session:
        found: Account | None = await session.scalar(select(Account).where(Account.id == account_id))
        return found


async def issue_letter(
    perron: Harness, clerk: Person, person: Person, street_id: UUID, house_number: str = "12"
) -> tuple[str, str]:
    """A clerk issues a code on the person's page; returns the code and the letter's HTML."""
    client = perron.client(clerk.tenant, person=clerk)
    page = f"/admin/residents/{person.id}"
    response = await perron.post_form(
        client, page, f"{page}/codes", {"code-street": str(street_id), "code-house_number": house_number}
    )
    assert response.status_code == 200, response.text
    found = CODE.search(response.text)
    assert found, "the letter shows the code"
    return found.group(1), response.text


async def type_code(perron: Harness, person: Person, code: str) -> Any:
    client = perron.client(person.tenant, person=person)
    return await perron.post_form(client, "/account/residency", "/account/residency", {"code": code})


@pytest.fixture
async def alpha_setup(perron: Harness, two_tenants: tuple[Tenant, Tenant]) -> dict[str, Any]:
    alpha, _ = two_tenants
    street = await add_street(perron, alpha, {"fr": "Rue de la Station"})
    clerk = await perron.staff(alpha, roles=["staff"], name="Claire Clerk")
    zoe = await perron.citizen(
        alpha, name="Zoé Martin", resident=False, assurance=Assurance.LOW, language="fr"
    )
    return {"alpha": alpha, "street": street, "clerk": clerk, "zoe": zoe}


async def test_the_right_code_verifies_residency_at_the_letters_address(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    clerk, zoe, alpha = alpha_setup["clerk"], alpha_setup["zoe"], alpha_setup["alpha"]
    code, letter = await issue_letter(perron, clerk, zoe, alpha_setup["street"], "12A")
    assert "Zoé Martin" in letter and "Rue de la Station 12A" in letter and "4280" in letter
    assert "http://alpha.test/account/residency" in letter
    assert letter.count(code) == 1

    before = await type_code(perron, zoe, "")  # an empty form counts for nothing
    assert before.status_code == 400 and "Tapez le code imprimé sur la lettre." in text(before)

    # Typed as people type: lower case, without the dash, with spaces around.
    response = await type_code(perron, zoe, f"  {code.replace('-', '').lower()} ")
    assert response.status_code == 303
    page = await perron.client(alpha, person=zoe).get(response.headers["location"])
    assert "est vérifiée (avec le code envoyé par la poste" in text(page)

    verified = await account(perron, alpha, zoe.id)
    assert verified is not None and verified.is_resident
    assert verified.residency_method == "code"
    assert (verified.street, verified.house_number, verified.postcode) == ("Rue de la Station", "12A", "4280")
    async with perron.transaction(alpha) as session:
        actions = set(
            await session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(zoe.id)))
        )
    assert {"residency.code_issued", "residency.code_used", "account.residency_verified"} <= actions


async def test_wrong_codes_say_so_and_the_fifth_locks_the_code(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    zoe, alpha = alpha_setup["zoe"], alpha_setup["alpha"]
    code, _ = await issue_letter(perron, alpha_setup["clerk"], zoe, alpha_setup["street"])
    wrong = "2222-2222" if code != "2222-2222" else "3333-3333"
    for left in (4, 3, 2, 1):
        response = await type_code(perron, zoe, wrong)
        assert response.status_code == 400
        assert f"Ce code n'est pas le bon. Essais restants avant que le code soit bloqué : {left}." in text(
            response
        )
    response = await type_code(perron, zoe, wrong)
    assert "Ce code est bloqué après trop d'essais erronés" in text(response)

    # Even the right code no longer works, and nothing about the person changed.
    response = await type_code(perron, zoe, code)
    assert response.status_code == 400 and "Ce code est bloqué" in text(response)
    unchanged = await account(perron, alpha, zoe.id)
    assert unchanged is not None and not unchanged.is_resident and unchanged.street is None


async def test_a_code_that_cannot_be_a_code_counts_no_try(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    zoe = alpha_setup["zoe"]
    code, _ = await issue_letter(perron, alpha_setup["clerk"], zoe, alpha_setup["street"])
    for typed in ("ABC", "O0O0-1I1I", "ABCD-EFGH-J"):
        response = await type_code(perron, zoe, typed)
        assert response.status_code == 400 and "Un code compte 8 lettres et chiffres" in text(response)
    async with perron.transaction(alpha_setup["alpha"]) as session:
        attempts = await session.scalar(
            select(ResidencyCode.attempts).where(ResidencyCode.account_id == zoe.id)
        )
    assert attempts == 0
    assert (await type_code(perron, zoe, code)).status_code == 303


async def test_an_expired_code_is_refused(perron: Harness, alpha_setup: dict[str, Any]) -> None:
    zoe, alpha = alpha_setup["zoe"], alpha_setup["alpha"]
    code, _ = await issue_letter(perron, alpha_setup["clerk"], zoe, alpha_setup["street"])
    async with perron.transaction(alpha) as session:
        await session.execute(
            update(ResidencyCode)
            .where(ResidencyCode.account_id == zoe.id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    response = await type_code(perron, zoe, code)
    assert response.status_code == 400 and "Ce code n'est plus valable" in text(response)
    still = await account(perron, alpha, zoe.id)
    assert still is not None and not still.is_resident


async def test_a_code_works_once(perron: Harness, alpha_setup: dict[str, Any]) -> None:
    zoe, alpha = alpha_setup["zoe"], alpha_setup["alpha"]
    code, _ = await issue_letter(perron, alpha_setup["clerk"], zoe, alpha_setup["street"])
    assert (await type_code(perron, zoe, code)).status_code == 303
    # Typing it again changes nothing (the person is a resident already)...
    again = await type_code(perron, zoe, code)
    assert again.status_code == 303
    # ...and were the residency ever withdrawn, the used code would not bring it back.
    async with perron.transaction(alpha) as session:
        await session.execute(
            update(Account)
            .where(Account.id == zoe.id)
            .values(residency_verified_at=None, residency_method=None)
        )
    response = await type_code(perron, zoe, code)
    assert response.status_code == 400 and "Ce code a déjà été utilisé." in text(response)
    withdrawn = await account(perron, alpha, zoe.id)
    assert withdrawn is not None and not withdrawn.is_resident


async def test_a_new_code_replaces_the_earlier_one(perron: Harness, alpha_setup: dict[str, Any]) -> None:
    zoe, clerk, street = alpha_setup["zoe"], alpha_setup["clerk"], alpha_setup["street"]
    first, _ = await issue_letter(perron, clerk, zoe, street, "1")
    second, _ = await issue_letter(perron, clerk, zoe, street, "3")
    assert first != second
    refused = await type_code(perron, zoe, first)
    assert refused.status_code == 400 and "un code plus récent l'a remplacé" in text(refused)
    assert (await type_code(perron, zoe, second)).status_code == 303
    verified = await account(perron, alpha_setup["alpha"], zoe.id)
    assert verified is not None and verified.house_number == "3"


async def test_the_code_is_kept_only_as_a_keyed_hash_and_never_shown_again(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    zoe, clerk, alpha = alpha_setup["zoe"], alpha_setup["clerk"], alpha_setup["alpha"]
    code, _ = await issue_letter(perron, clerk, zoe, alpha_setup["street"])
    async with perron.transaction(alpha) as session:
        stored = (await session.scalars(select(ResidencyCode))).one()
    plain = code.replace("-", "")
    assert plain not in stored.code_hash and len(stored.code_hash) == 64
    client = perron.client(alpha, person=clerk)
    person_page = await client.get(f"/admin/residents/{zoe.id}")
    assert f"/admin/residents/{zoe.id}/letter/{stored.id}" in person_page.text
    record = await client.get(f"/admin/residents/{zoe.id}/letter/{stored.id}")
    assert record.status_code == 200 and "En attente d'être tapé" in text(record)
    assert code not in record.text and plain not in record.text and code not in person_page.text


async def test_only_the_communes_streets_make_an_address(
    perron: Harness, alpha_setup: dict[str, Any], two_tenants: tuple[Tenant, Tenant]
) -> None:
    zoe, clerk, alpha = alpha_setup["zoe"], alpha_setup["clerk"], alpha_setup["alpha"]
    bravo_street = await add_street(perron, two_tenants[1], {"fr": "Rue de Bravo", "nl": "Bravostraat"})
    client = perron.client(alpha, person=clerk)
    page = f"/admin/residents/{zoe.id}"
    for data, message in [
        ({"code-street": str(bravo_street), "code-house_number": "1"}, "Choisissez la rue dans la liste."),
        ({"code-street": "not-an-id", "code-house_number": "1"}, "Choisissez la rue dans la liste."),
        ({"code-street": str(alpha_setup["street"]), "code-house_number": ""}, "Écrivez le numéro de maison"),
        ({"code-street": str(alpha_setup["street"]), "code-house_number": "bis"}, "commence par un nombre"),
    ]:
        response = await perron.post_form(client, page, f"{page}/codes", data)
        assert response.status_code == 400 and message in text(response)
        assert 'href="#field-code-' in response.text  # the error summary leads to the field
    async with perron.transaction(alpha) as session:
        assert (await session.scalars(select(ResidencyCode))).all() == []
        person = await session.scalar(select(Account).where(Account.id == zoe.id))
        assert person is not None
        with pytest.raises(Invalid) as refused, using_language("en"):
            await residency.issue_code(
                session,
                perron.runtime.settings,
                person,
                street="Rue Inconnue",
                house_number="4",
                postcode="4280",
            )
        assert refused.value.field == "street" and "is not a street of the commune" in refused.value.reason


async def test_staff_of_another_commune_see_no_resident_and_issue_no_code(
    perron: Harness, alpha_setup: dict[str, Any], two_tenants: tuple[Tenant, Tenant]
) -> None:
    zoe, alpha = alpha_setup["zoe"], alpha_setup["alpha"]
    bravo = two_tenants[1]
    await add_street(perron, bravo, {"fr": "Rue de Bravo", "nl": "Bravostraat"})
    intruder = await perron.staff(bravo, roles=["admin"], name="Bruno Bravo")
    at_home = perron.client(bravo, person=intruder)
    listing = await at_home.get("/admin/residents")
    assert listing.status_code == 200 and "Zoé Martin" not in listing.text
    assert (await at_home.get(f"/admin/residents/{zoe.id}")).status_code == 404
    response = await perron.post_form(
        at_home,
        "/admin/residents",
        f"/admin/residents/{zoe.id}/codes",
        {"code-street": str(alpha_setup["street"]), "code-house_number": "1"},
    )
    assert response.status_code == 404
    # Their login means nothing on the other commune's site.
    abroad = perron.client(alpha, person=intruder)
    assert (await abroad.get("/admin/residents")).status_code == 401
    async with perron.transaction(alpha) as session:
        assert (await session.scalars(select(ResidencyCode))).all() == []


async def test_residents_pages_are_for_staff_holding_the_staff_role(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    alpha = alpha_setup["alpha"]
    editor = await perron.staff(alpha, roles=["news.editor"])
    citizen = alpha_setup["zoe"]
    assert (await perron.client(alpha, person=editor).get("/admin/residents")).status_code == 403
    assert (await perron.client(alpha, person=citizen).get("/admin/residents")).status_code == 403
    assert (await perron.client(alpha).get("/admin/residents")).status_code == 401
    clerk_view = await perron.client(alpha, person=alpha_setup["clerk"]).get("/admin/residents?name=zo")
    assert clerk_view.status_code == 200 and "Zoé Martin" in clerk_view.text


async def test_town_hall_verification_needs_the_document_and_names_the_clerk(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    zoe, clerk, alpha = alpha_setup["zoe"], alpha_setup["clerk"], alpha_setup["alpha"]
    client = perron.client(alpha, person=clerk)
    page = f"/admin/residents/{zoe.id}"
    data = {"hall-street": str(alpha_setup["street"]), "hall-house_number": "7"}
    refused = await perron.post_form(client, page, f"{page}/town-hall", data)
    assert refused.status_code == 400 and "Confirmez que vous avez vu une pièce d'identité" in text(refused)
    still = await account(perron, alpha, zoe.id)
    assert still is not None and not still.is_resident

    done = await perron.post_form(client, page, f"{page}/town-hall", data | {"hall-document_seen": "yes"})
    assert done.status_code == 303
    verified = await account(perron, alpha, zoe.id)
    assert verified is not None and verified.residency_method == "town_hall" and verified.house_number == "7"
    async with perron.transaction(alpha) as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "residency.town_hall"))
    assert entry is not None and entry.actor_label == "Claire Clerk"
    assert entry.changes["verified_by"] == "Claire Clerk"
    assert "Vérifiée à l'administration communale" in text(await client.get(page))


async def test_a_person_without_smartphone_is_registered_at_the_town_hall(
    perron: Harness, alpha_setup: dict[str, Any]
) -> None:
    clerk, alpha, street = alpha_setup["clerk"], alpha_setup["alpha"], alpha_setup["street"]
    client = perron.client(alpha, person=clerk)
    form = {
        "display_name": "Marcel Dupont",
        "birth_year": "1938",
        "street": str(street),
        "house_number": "5",
        "language": "fr",
        "email": "",
    }
    response = await perron.post_form(client, "/admin/residents/new", "/admin/residents/new", form)
    assert response.status_code == 303
    async with perron.transaction(alpha) as session:
        marcel = await session.scalar(select(Account).where(Account.display_name == "Marcel Dupont"))
    assert marcel is not None
    assert marcel.subject is None and marcel.email is None and marcel.birth_year == 1938
    assert marcel.is_resident and marcel.residency_method == "town_hall"
    assert (marcel.street, marcel.house_number, marcel.postcode) == ("Rue de la Station", "5", "4280")
    page = await client.get(response.headers["location"])
    assert "Inscrit sur papier : pas de connexion" in text(page)

    twice = await perron.post_form(client, "/admin/residents/new", "/admin/residents/new", form)
    assert twice.status_code == 400 and "a déjà un compte" in text(twice)
    for field, value, message in [
        ("birth_year", "1850", "Écrivez une année de naissance entre 1900"),
        ("birth_year", "", "Écrivez l'année de naissance."),
        ("display_name", "  ", "Écrivez le prénom et le nom de la personne."),
        ("email", "marcel-at-home", "Écrivez une adresse e-mail"),
        ("street", "", "Choisissez la rue dans la liste."),
    ]:
        refused = await perron.post_form(
            client,
            "/admin/residents/new",
            "/admin/residents/new",
            form | {"display_name": "Other One", field: value},
        )
        assert refused.status_code == 400 and message in text(refused), (field, value)
    async with perron.transaction(alpha) as session:
        names = set(await session.scalars(select(Account.display_name)))
    assert "Other One" not in names


async def test_the_letter_speaks_the_persons_language(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    bravo = two_tenants[1]
    street = await add_street(perron, bravo, {"fr": "Rue de la Gare", "nl": "Stationsstraat"}, "1000")
    clerk = await perron.staff(bravo, roles=["staff"], language="fr")
    jan = await perron.citizen(bravo, name="Jan Peeters", resident=False, language="nl")
    _, letter = await issue_letter(perron, clerk, jan, street, "3")
    assert 'lang="nl"' in letter and "Stationsstraat 3" in letter and "Uw persoonlijke code" in letter
