"""The audit log viewer: the commune's own entries only, newest first, in words; filters by
kind, person and dates; pages that follow each other without gaps or repeats over hundreds of
entries; a CSV download of what the filters keep (itself recorded); and every change an
administrator makes from the admin pages lands in it, with their name."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from uuid import UUID

import httpx
from sqlalchemy import select

from perron.audit import Actor, ActorKind, AuditEntry, acting_as
from perron.db.scope import tenant_scope
from perron.i18n import TIME_ZONE
from perron.tenancy import actions
from perron.territory.models import Street
from perron.testing.harness import Harness, Person, Tenant
from tests.commune_admin.conftest import entries, text
from tests.commune_admin.test_branding import branding_form

PAGE = "/admin/audit"


def entry_ids(response: httpx.Response) -> list[str]:
    return re.findall(r'<li class="audit-entry" id="entry-([0-9a-f-]+)"', response.text)


def older_link(response: httpx.Response) -> str | None:
    found = re.search(r'<a href="([^"]+)">Entrées plus anciennes</a>', response.text)
    return found[1].replace("&amp;", "&") if found else None


async def add_entries(
    perron: Harness, tenant: Tenant, count: int, *, action: str = "news.publish", start: dt.datetime
) -> None:
    async with perron.transaction(tenant) as session:
        for number in range(count):
            session.add(
                AuditEntry(
                    tenant_id=tenant.id,
                    occurred_at=start + dt.timedelta(minutes=number // 3),  # some share a moment
                    actor_kind="system",
                    actor_label="seed",
                    action=action,
                    object_type="news",
                    object_id=f"n{number}",
                    changes={"number": number},
                )
            )


async def test_only_the_communes_own_entries_newest_first_in_words(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person, bravo_admin: Person
) -> None:
    alpha, bravo = two_tenants
    for tenant, actor, change in (
        (
            bravo,
            Actor(ActorKind.PERSON, "Bruno Beheerder", bravo_admin.id),
            {"palette": {"primary_color": "#003366"}},
        ),
        (alpha, Actor(ActorKind.CLI, "cli:root@perron-1"), {"tagline": {"fr": "Par la console"}}),
    ):
        with acting_as(actor), tenant_scope(tenant.id):
            async with perron.database.transaction() as session:
                await actions.update_branding(session, tenant.id, **change)
    client = perron.client(alpha, person=alpha_admin)
    response = await client.get(PAGE)
    page = text(response)
    assert "A modifié l'apparence" in page and "Le site a été créé" in page
    assert "Les exploitants de la plateforme (ligne de commande)" in page
    assert "root@perron-1" not in page  # the operator's account and server are not the commune's
    assert "Bruno" not in page and "#003366" not in page  # nothing of bravo's log
    assert page.index("A modifié l'apparence") < page.index("Le site a été créé")  # newest first
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00">', response.text)
    # Bravo's entry ids mean nothing here either.
    [foreign] = await entries(perron, bravo, "branding.update")
    forged = await client.get(f"{PAGE}?before={foreign.id}")
    assert forged.status_code == 400 and "Cette page du journal n'existe pas" in text(forged)
    assert (await client.get(f"{PAGE}?person={bravo_admin.id}")).status_code == 400


async def test_filters_by_kind_person_and_days_and_refuses_bad_ones(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    await perron.post_form(client, "/admin/domains", "/admin/domains", {"host": "www.alpha.be"})
    await perron.post_form(client, "/admin/legal", "/admin/legal", {"privacy_extra.fr": "Texte."})
    old = dt.datetime(2025, 3, 10, 22, 30, tzinfo=dt.UTC)  # 23:30 on 10 March in Brussels
    await add_entries(perron, alpha, 2, start=old)

    domains = text(await client.get(f"{PAGE}?kind=domains"))
    assert "A ajouté l'adresse www.alpha.be" in domains and "A modifié la déclaration" not in domains
    news = text(await client.get(f"{PAGE}?kind=module:news"))
    assert news.count("Actualités : publication") == 2 and "www.alpha.be" not in news

    mine = await client.get(f"{PAGE}?person={alpha_admin.id}")
    assert "Ada Admin" in text(mine) and "Le site a été créé" not in text(mine)
    assert len(entry_ids(mine)) == 2
    assert f'<option value="{alpha_admin.id}" selected>Ada Admin</option>' in mine.text
    platform = text(await client.get(f"{PAGE}?person=platform"))
    assert "Le site a été créé" in platform and "www.alpha.be" not in platform

    # Days are Brussels days: 23:30 UTC+1 on 10 March belongs to the 10th, not the 11th.
    tenth = await client.get(f"{PAGE}?from=10/03/2025&to=2025-03-10")
    assert len(entry_ids(tenth)) == 2 and 'value="2025-03-10"' in tenth.text
    assert entry_ids(await client.get(f"{PAGE}?from=2025-03-11&to=2025-03-11")) == []
    since = await client.get(f"{PAGE}?from=2025-03-11")
    assert "Actualités : publication" not in text(since) and "www.alpha.be" in text(since)

    for query, field, message in [
        ("from=31/02/2025", "from", "Ce jour n'existe pas dans le calendrier"),
        ("to=demain", "to", "Écrivez la date sous la forme jour/mois/année"),
        ("from=2025-03-12&to=2025-03-10", "to", "Le dernier jour est avant le premier"),
        ("kind=everything", "kind", "Choisissez un type de modification dans la liste."),
        ("person=nobody", "person", "Choisissez une personne dans la liste."),
        ("before=not-an-id", "before", "Cette page du journal n'existe pas"),
    ]:
        response = await client.get(f"{PAGE}?{query}")
        assert response.status_code == 400, query
        assert message in text(response) and f'href="#field-{field}"' in response.text, query
        assert entry_ids(response) == []
        if field != "before":  # the download has no pages
            assert (await client.get(f"{PAGE}.csv?{query}")).status_code == 400, query


async def test_pages_follow_each_other_over_hundreds_of_entries(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, bravo = two_tenants
    start = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    await add_entries(perron, alpha, 310, start=start)
    await add_entries(perron, bravo, 40, start=start)
    expected = [
        str(entry.id)
        for entry in sorted(await entries(perron, alpha), key=lambda e: (e.occurred_at, e.id), reverse=True)
    ]
    assert len(expected) == 312  # and the two entries the commune's creation made
    client = perron.client(alpha, person=alpha_admin)
    seen: list[str] = []
    path: str | None = PAGE
    pages = 0
    while path is not None:
        response = await client.get(path)
        assert response.status_code == 200
        ids = entry_ids(response)
        assert 0 < len(ids) <= 50
        seen += ids
        path = older_link(response)
        pages += 1
        if path is not None:
            assert "before=" in path and "offset" not in path
            assert 'href="/admin/audit">Revenir aux entrées les plus récentes' in response.text or pages == 1
    assert pages == 7 and seen == expected  # no gap, no repeat, newest first

    # The same with a filter: the cursor keeps it.
    filtered: list[str] = []
    path = f"{PAGE}?kind=module:news"
    while path is not None:
        response = await client.get(path)
        filtered += entry_ids(response)
        path = older_link(response)
        if path is not None:
            assert "kind=module%3Anews" in path
    assert len(filtered) == 310 and len(set(filtered)) == 310


async def test_the_download_has_what_the_filters_keep_and_is_recorded(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, bravo = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    await perron.post_form(client, "/admin/domains", "/admin/domains", {"host": "www.alpha.be"})
    # A name a spreadsheet would take for a formula, at the start of a cell.
    trickster = await perron.staff(alpha, roles=["admin"], name='=HYPERLINK("http://evil.example")')
    tricky = perron.client(alpha, person=trickster)
    saved = await perron.post_form(tricky, "/admin/branding", "/admin/branding", branding_form(font="serif"))
    assert saved.status_code == 303
    await add_entries(perron, alpha, 600, start=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    await add_entries(perron, bravo, 5, start=dt.datetime(2026, 2, 1, tzinfo=dt.UTC), action="bravo.secret")
    page = await client.get(PAGE)
    assert '<a href="/admin/audit.csv" download>' in page.text

    response = await client.get(f"{PAGE}.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert re.match(
        r'attachment; filename="audit-alpha-\d{4}-\d\d-\d\d\.csv"', response.headers["content-disposition"]
    )
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Quand (heure de Bruxelles)", "Qui", "Référence de la personne", "Quoi"]
    body = rows[1:]
    assert len(body) == 600 + 6  # creation and 2 accounts, the address, the branding, this download
    assert body[0][3] == "A téléchargé le journal des modifications" and body[0][1] == "Ada Admin"
    assert not any("bravo" in cell for row in body for cell in row)
    branding = next(row for row in body if row[4] == "branding.update")
    assert branding[1] == '\'=HYPERLINK("http://evil.example")'  # never taken for a formula
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", branding[0])
    when = dt.datetime.strptime(branding[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TIME_ZONE)
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 600  # Brussels time, not UTC
    domain = next(row for row in body if row[4] == "domain.add")
    assert domain[3] == "A ajouté l'adresse www.alpha.be" and UUID(domain[2]) == alpha_admin.id

    filtered = await client.get(f"{PAGE}.csv?kind=domains")
    rows = list(csv.reader(io.StringIO(filtered.content.decode("utf-8-sig")), delimiter=";"))
    assert [row[4] for row in rows[1:]] == ["domain.add"]
    exports = await entries(perron, alpha, "audit.export")
    assert [entry.changes for entry in exports] == [{"filters": {}}, {"filters": {"kind": "domains"}}]
    assert all(entry.actor_label == "Ada Admin" for entry in exports)


async def test_every_change_from_the_admin_pages_is_in_the_log_with_its_author(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    post = perron.post_form
    await post(client, "/admin/modules", "/admin/modules/news/enable", {})
    await post(client, "/admin/modules/news/settings", "/admin/modules/news/settings", {"items_on_home": "5"})
    await post(client, "/admin/modules", "/admin/modules/news/disable", {})
    await post(
        client,
        "/admin/territory/streets",
        "/admin/territory/streets",
        {"names.fr": "Rue de la Gare", "postcode": "4280"},
    )
    await post(
        client,
        "/admin/staff",
        "/admin/staff",
        {
            "display_name": "Léa Lambert",
            "email": "lea@alpha.be",
            "language": "fr",
            "roles": ["staff"],
            "confirm": "yes",
        },
    )
    async with perron.transaction(alpha) as session:
        street = await session.scalar(select(Street))
        assert street is not None
    resident = {
        "display_name": "Marcel Dupont",
        "birth_year": "1941",
        "street": str(street.id),
        "language": "fr",
    }
    registered = await post(
        client, "/admin/residents/new", "/admin/residents/new", resident | {"house_number": "3"}
    )
    assert registered.status_code == 303
    done = {entry.action: entry for entry in await entries(perron, alpha) if entry.actor_label == "Ada Admin"}
    for action in (
        "module.enable",
        "settings.update",
        "module.disable",
        "territory.street.create",
        "staff.invite",
        "residency.registered_in_person",
    ):
        assert action in done, (action, sorted(done))
        assert done[action].actor_person_id == alpha_admin.id
    log = text(await client.get(PAGE))
    for words in (
        "A activé le module Actualités",
        "A modifié les réglages du module Actualités",
        "A désactivé le module Actualités",
        "A ajouté une rue",
        "A invité un membre du personnel",
        "A inscrit une personne à l'administration communale",
    ):
        assert words in log, words
