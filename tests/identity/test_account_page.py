"""A person's own account page: what the commune holds about them, the download of all of it
(nothing about anyone else, nor from another commune), and deleting the account, which ends
their sessions and asks Keycloak to forget their login only when no other commune uses it.

Keycloak is not running here (login is switched off): the deletion job is queued and only
says so; these tests check when it is queued.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from perron.audit import SYSTEM, Actor, ActorKind, acting_as
from perron.db.scope import platform_scope, tenant_scope
from perron.identity import actions as identity
from perron.identity import residency
from perron.identity.models import Account, AccountKind, Assurance, ResidencyCode, WebSession
from perron.identity.personal_data import FORGET_LOGIN_JOB
from perron.identity.sessions import SESSION_COOKIE, open_session
from perron.jobs.status import PlatformJobRun
from perron.notifications import Audience, notify
from perron.territory import actions as territory
from perron.testing.harness import Harness, Person, Tenant
from tests.identity.conftest import text


async def with_login(perron: Harness, tenant: Tenant, subject: str, name: str, **options: Any) -> Person:
    """Someone who logged in through Keycloak (their account carries its subject)."""
    with tenant_scope(tenant.id), acting_as(SYSTEM):
        async with perron.database.transaction() as session:
            account = await identity.create_account(
                session,
                tenant.id,
                display_name=name,
                subject=subject,
                assurance=Assurance.SUBSTANTIAL,
                **options,
            )
            token = await open_session(session, account, Assurance.SUBSTANTIAL)
    await perron.settle()
    return Person(tenant, account, token, Assurance.SUBSTANTIAL)


async def forget_jobs(perron: Harness) -> list[PlatformJobRun]:
    await perron.run_jobs()
    with platform_scope("test: which logins are to be forgotten"):
        async with perron.database.session() as session:
            return list(
                await session.scalars(select(PlatformJobRun).where(PlatformJobRun.job == FORGET_LOGIN_JOB))
            )


async def delete(perron: Harness, person: Person, *, understood: bool = True) -> Any:
    client = perron.client(person.tenant, person=person)
    data = {"understood": "yes"} if understood else {}
    return await perron.post_form(client, "/account/delete", "/account/delete", data)


async def test_the_account_page_shows_what_the_commune_holds(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    await perron.enable(alpha, "news")
    zoe = await perron.citizen(
        alpha,
        name="Zoé Martin",
        email="zoe@example.be",
        street="Rue de la Station",
        house_number="12",
        postcode="4280",
        assurance=Assurance.LOW,
        resident=False,
    )
    async with perron.transaction(alpha) as session:
        account = await session.scalar(select(Account).where(Account.id == zoe.id))
        assert account is not None
        account.roles = ["news.editor"]
        await identity.verify_residency(session, account, how="town_hall")
    page = await perron.client(alpha, person=zoe).get("/account")
    assert page.status_code == 200
    shown = text(page)
    for expected in (
        "Zoé Martin",
        "zoe@example.be",
        "Rue de la Station 12, 4280",
        "Vérifiée à l'administration communale",
        "e-mail et mot de passe",  # the level of this login
        "Actualités",  # the module's role, by its module's name
    ):
        assert expected in shown, expected
    for link in ("/account/notifications", "/account/residency", "/account/data.json", "/account/delete"):
        assert f'href="{link}"' in page.text
    assert (await perron.client(alpha).get("/account")).status_code == 401


async def test_the_download_holds_the_persons_data_and_nobody_elses(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, bravo = two_tenants
    zoe = await with_login(perron, alpha, "kc-zoe", "Zoé Martin", email="zoe@example.be", language="fr")
    max_ = await perron.citizen(alpha, name="Max Voisin", email="max@example.be")
    elsewhere = await with_login(perron, bravo, "kc-zoe", "Zoé Martin (Bravo)")
    clerk = await perron.staff(alpha, roles=["staff"], name="Claire Clerk")
    async with perron.transaction(alpha) as session:
        street = await territory.create_street(session, alpha.id, names={"fr": "Rue Haute"}, postcode="4280")
    async with perron.transaction(alpha) as session:
        account = await session.scalar(select(Account).where(Account.id == zoe.id))
        assert account is not None
        await residency.issue_code(
            session,
            perron.runtime.settings,
            account,
            street="Rue Haute",
            house_number="9",
            postcode=street.postcode,
        )
    for tenant, audience, title in [
        (alpha, Audience.person(zoe.id), "Pour Zoé"),
        (alpha, Audience.person(max_.id), "Pour Max"),
        (bravo, Audience.person(elsewhere.id), "À Bravo"),
    ]:
        with tenant_scope(tenant.id), acting_as(Actor(ActorKind.PERSON, "Claire Clerk", clerk.id)):
            async with perron.database.transaction() as session:
                await notify(
                    session, module="core", audience=audience, title={"fr": title}, body={"fr": "Texte."}
                )
    await perron.run_jobs()

    response = await perron.client(alpha, person=zoe).get("/account/data.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == 'attachment; filename="alpha-my-data.json"'
    assert response.headers["cache-control"] == "no-store"
    data = json.loads(response.content)
    assert data["account"]["name"] == "Zoé Martin" and data["account"]["email"] == "zoe@example.be"
    assert data["account"]["login_subject"] == "kc-zoe" and data["commune"]["slug"] == "alpha"
    assert [item["title"] for item in data["notifications"] if item["channel"] == "inbox"] == [
        {"fr": "Pour Zoé"}
    ]
    assert data["residency_codes"][0]["address"]["street"] == "Rue Haute"
    assert data["residency_codes"][0]["state"] == "waiting"
    assert len(data["sessions"]) == 1
    whole = response.text
    for foreign in ("Max", str(max_.id), "Bravo", str(elsewhere.id), str(clerk.id), "À Bravo", "code_hash"):
        assert foreign not in whole, foreign
    assert (await perron.client(alpha).get("/account/data.json")).status_code == 401


async def test_deleting_the_account_needs_a_confirmation(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    zoe = await with_login(perron, alpha, "kc-zoe", "Zoé Martin")
    page = await perron.client(alpha, person=zoe).get("/account/delete")
    assert page.status_code == 200 and 'type="checkbox"' in page.text
    refused = await delete(perron, zoe, understood=False)
    assert refused.status_code == 400
    assert "Cochez la case pour confirmer" in text(refused) and 'href="#field-understood"' in refused.text
    async with perron.transaction(alpha) as session:
        assert await session.scalar(select(Account.id).where(Account.id == zoe.id)) is not None
    assert await forget_jobs(perron) == []


async def test_deletion_removes_the_account_and_forgets_a_login_nobody_else_uses(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    zoe = await with_login(perron, alpha, "kc-zoe", "Zoé Martin")
    async with perron.transaction(alpha) as session:
        street = await territory.create_street(session, alpha.id, names={"fr": "Rue Haute"}, postcode="4280")
    async with perron.transaction(alpha) as session:
        account = await session.scalar(select(Account).where(Account.id == zoe.id))
        assert account is not None
        other_token = await open_session(session, account, Assurance.LOW)  # logged in on her tablet too
        await residency.issue_code(
            session,
            perron.runtime.settings,
            account,
            street="Rue Haute",
            house_number="9",
            postcode=street.postcode,
        )

    response = await delete(perron, zoe)
    assert response.status_code == 303 and response.headers["location"] == "/account/deleted"
    assert (
        'perron_session=""' in response.headers["set-cookie"]
        or "perron_session=;" in response.headers["set-cookie"]
    )
    await perron.settle()
    async with perron.transaction(alpha) as session:
        assert await session.scalar(select(Account.id).where(Account.id == zoe.id)) is None
        assert (await session.scalars(select(WebSession).where(WebSession.account_id == zoe.id))).all() == []
        assert (await session.scalars(select(ResidencyCode))).all() == []
    # Neither the old cookie nor her other device's opens anything any more.
    assert (await perron.client(alpha, person=zoe).get("/account")).status_code == 401
    tablet = perron.client(alpha)
    tablet.cookies.set(SESSION_COOKIE, other_token, domain=alpha.host)
    assert (await tablet.get("/account")).status_code == 401
    farewell = await perron.client(alpha).get("/account/deleted")
    assert farewell.status_code == 200 and "Votre compte est supprimé" in text(farewell)

    (job,) = await forget_jobs(perron)
    assert job.status.value == "done" and job.result == "skipped: login is switched off"


async def test_a_login_another_commune_still_uses_is_kept(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, bravo = two_tenants
    zoe = await with_login(perron, alpha, "kc-zoe", "Zoé Martin")
    await with_login(perron, bravo, "kc-zoe", "Zoé Martin")
    assert (await delete(perron, zoe)).status_code == 303
    assert await forget_jobs(perron) == []
    async with perron.transaction(bravo) as session:
        kept = await session.scalar(select(Account).where(Account.subject == "kc-zoe"))
    assert kept is not None  # her account in the other commune is untouched


async def test_an_account_without_login_and_a_staff_account(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    paper = await perron.citizen(alpha, name="Marcel Papier")  # no Keycloak login to forget
    assert (await delete(perron, paper)).status_code == 303
    assert await forget_jobs(perron) == []

    clerk = await perron.staff(alpha, roles=["staff"], name="Claire Clerk")
    page = await perron.client(alpha, person=clerk).get("/account/delete")
    assert "Un compte du personnel est fermé par un administrateur" in text(page)
    assert 'name="understood"' not in page.text
    refused = await delete(perron, clerk)
    assert refused.status_code == 400
    async with perron.transaction(alpha) as session:
        still = await session.scalar(select(Account).where(Account.id == clerk.id))
    assert still is not None and still.kind is AccountKind.STAFF
