"""Announcing a news item to one neighbourhood: exactly its residents are told, each by the
channel they chose, the e-mail in their own language (through a real SMTP server)."""

from __future__ import annotations

from perron.notifications import service as notifications
from perron.sdk import Assurance
from perron.territory import actions as territory
from perron.testing import Harness, Person


async def test_an_announcement_reaches_exactly_the_neighbourhoods_residents(
    perron: Harness, two_tenants, perron_smtp
) -> None:
    alpha, bravo = two_tenants  # bravo speaks French and Dutch
    await perron.enable(alpha, "news")
    await perron.enable(bravo, "news")
    async with perron.transaction(bravo) as session:
        centre_street = await territory.create_street(
            session, bravo.id, names={"fr": "Rue du Centre"}, postcode="4280"
        )
        station_street = await territory.create_street(
            session, bravo.id, names={"fr": "Rue de la Gare"}, postcode="4280"
        )
        centre = await territory.create_neighbourhood(
            session, bravo.id, names={"fr": "Centre", "nl": "Centrum"}, street_ids=[centre_street.id]
        )
        await territory.create_neighbourhood(
            session, bravo.id, names={"fr": "Gare"}, street_ids=[station_street.id]
        )

    async def resident(tenant, name: str, street: str, **options) -> Person:
        return await perron.citizen(
            tenant,
            name=name,
            email=f"{name}@example.org",
            street=street,
            house_number="1",
            postcode="4280",
            **options,
        )

    ann = await resident(bravo, "ann", "rue du centre", language="nl")  # e-mail at once (the default)
    ben = await resident(bravo, "ben", "Rue du Centre")  # inbox only
    cleo = await resident(bravo, "cleo", "Rue  du centre")  # daily summary
    dan = await resident(bravo, "dan", "Rue de la Gare")  # another neighbourhood
    fay = await resident(bravo, "fay", "Rue du Centre", resident=False)  # residency not verified
    eve = await resident(alpha, "eve", "Rue du Centre")  # same street name, other commune
    async with perron.transaction(bravo) as session:
        await notifications.set_preferences(session, ben.id, {"news": "off"}, modules=["news"])
        await notifications.set_preferences(session, cleo.id, {"news": "daily"}, modules=["news"])

    editor = perron.client(bravo, person=await perron.staff(bravo, roles=["news.editor"]))
    token = await perron.form_token(editor, "/admin/news/new")
    created = await editor.post(
        "/admin/news/new",
        data={
            "title.fr": "Marché de Noël",
            "title.nl": "Kerstmarkt",
            "summary.nl": "Zaterdag op het plein.",
            "summary.fr": "Samedi sur la place.",
            "_csrf_token": token,
        },
    )
    edit_path = created.headers["location"].split("?")[0]
    published = await perron.post_form(
        editor, edit_path, f"{edit_path}/publish", {"announce": "on", "neighbourhood": str(centre.id)}
    )
    assert published.status_code == 303
    await perron.run_jobs()

    # E-mail: only Ann, in Dutch.
    assert [message.recipients for message in perron_smtp.messages] == [["ann@example.org"]]
    (mail,) = perron_smtp.to("ann@example.org")
    assert "Kerstmarkt" in mail.subject
    assert "Zaterdag op het plein." in mail.text and "Samedi" not in mail.text

    # Inbox: every verified resident of the Centre, whatever their e-mail choice; nobody else.
    for person, told in ((ben, True), (cleo, True), (dan, False), (fay, False), (eve, False)):
        inbox = await perron.client(person.tenant, person=person).get("/inbox")
        assert inbox.status_code == 200
        assert ("Marché de Noël" in inbox.text) is told, person.account.display_name
    # Ann's pages are in the language of her account, unless she picks another on the site.
    ann_browser = perron.client(bravo, person=ann, headers={"accept-language": "fr"})
    assert "Kerstmarkt" in (await ann_browser.get("/inbox")).text
    assert "Marché de Noël" in (await ann_browser.get("/inbox?lang=fr")).text
    assert "Marché de Noël" in (await ann_browser.get("/inbox")).text  # her choice is remembered

    # Publishing again changes nothing; running the jobs again sends nothing more.
    await perron.run_jobs()
    assert len(perron_smtp.messages) == 1


async def test_staff_cannot_announce_to_another_communes_neighbourhood(perron: Harness, two_tenants) -> None:
    alpha, bravo = two_tenants
    await perron.enable(bravo, "news")
    async with perron.transaction(alpha) as session:
        street = await territory.create_street(
            session, alpha.id, names={"fr": "Rue d'Alpha"}, postcode="5300"
        )
        theirs = await territory.create_neighbourhood(
            session, alpha.id, names={"fr": "Alpha"}, street_ids=[street.id]
        )
    editor = perron.client(
        bravo, person=await perron.staff(bravo, roles=["news.editor"], assurance=Assurance.LOW)
    )
    token = await perron.form_token(editor, "/admin/news/new")
    created = await editor.post("/admin/news/new", data={"title.fr": "Avis", "_csrf_token": token})
    edit_path = created.headers["location"].split("?")[0]
    refused = await perron.post_form(
        editor, edit_path, f"{edit_path}/publish", {"announce": "on", "neighbourhood": str(theirs.id)}
    )
    assert refused.status_code == 400
    assert "Avis" not in (await perron.client(bravo).get("/news")).text  # not published either
