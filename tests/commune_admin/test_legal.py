"""The commune's own parts of its privacy notice and accessibility statement: written per
language at /admin/legal, shown escaped on /privacy and /accessibility at once (the public
page cache too, and while the site is suspended), audited, refused in words when too long or
wrong, and never seen by another commune."""

from __future__ import annotations

import datetime as dt
import html

import pytest

from perron.db.scope import IsolationError
from perron.errors import Invalid
from perron.i18n import TIME_ZONE
from perron.tenancy import actions
from perron.tenancy.legal import legal_texts, update_legal_texts
from perron.tenancy.models import CommuneStatus
from perron.tenancy.settings import CoreSettings, resolve
from perron.testing.harness import Harness, Person, Tenant
from tests.commune_admin.conftest import entries, text
from tests.isolation.conftest import locks_available, only_lock

PAGE = "/admin/legal"


async def test_texts_show_on_the_public_pages_at_once_and_are_audited(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, bravo = two_tenants
    visitor = perron.client(alpha)
    assert "Stages de vacances" not in (await visitor.get("/privacy")).text  # now in the page cache
    client = perron.client(alpha, person=alpha_admin)
    form = {
        "privacy_purposes.fr": "Stages de vacances : inscriptions.\n\nBase légale : intérêt public.",
        "privacy_retention.fr": "Inscriptions : un an après le stage.",
        "accessibility_limitations.fr": "Les PV du conseil d'avant 2024 sont des PDF scannés.",
        "accessibility_feedback.fr": "Appelez l'accueil au 081 00 00 00.\nNous répondons sous 5 jours.",
        "accessibility_reviewed_on": "15/11/2026",
        "dpo_name": "Délégué de l'intercommunale",
        "dpo_email": "dpo@alpha.be",
    }
    saved = await perron.post_form(client, PAGE, PAGE, form)
    assert saved.status_code == 303 and saved.headers["location"] == f"{PAGE}?done=saved"
    assert "Les textes sont enregistrés" in text(await client.get(saved.headers["location"]))

    privacy = await visitor.get("/privacy")
    page = text(privacy)
    assert "Ce que Alpha fait encore de vos données" in page
    assert "<p>Stages de vacances : inscriptions.</p>" in privacy.text.replace("\n", "")
    assert "Inscriptions : un an après le stage." in page
    assert "Délégué de l'intercommunale" in page and "dpo@alpha.be" in privacy.text
    assert "Qui reçoit vos données" not in page  # nothing written: no empty heading
    statement = await visitor.get("/accessibility")
    page = text(statement)
    assert "Contenu dont la commune sait qu'il n'est pas accessible" in page
    assert "Appelez l'accueil au 081 00 00 00.<br>Nous répondons sous 5 jours." in html.unescape(
        statement.text
    )
    assert "Alpha l'a revue pour la dernière fois le 15 novembre 2026." in page
    # The other commune's pages stay as they were.
    assert "Stages de vacances" not in (await perron.client(bravo).get("/privacy")).text

    [entry] = await entries(perron, alpha, "legal.update")
    assert entry.actor_label == "Ada Admin"
    assert entry.changes["accessibility_reviewed_on"] == [None, "2026-11-15"]
    [settings] = await entries(perron, alpha, "settings.update")
    assert settings.changes == {
        "dpo_email": [None, "dpo@alpha.be"],
        "dpo_name": [None, "Délégué de l'intercommunale"],
    }
    log = text(await client.get("/admin/audit"))
    assert "A modifié la déclaration de confidentialité ou la déclaration d'accessibilité" in log
    assert "A modifié les coordonnées de la commune" in log

    again = await perron.post_form(client, PAGE, PAGE, form)
    assert again.headers["location"] == f"{PAGE}?done=unchanged"
    assert len(await entries(perron, alpha, "legal.update")) == 1


async def test_html_is_shown_as_text_never_run(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    attack = '<script>alert("x")</script><a href="https://evil.example">Cliquez</a>'
    saved = await perron.post_form(client, PAGE, PAGE, {"privacy_extra.fr": attack})
    assert saved.status_code == 303
    page = (await perron.client(alpha).get("/privacy")).text
    assert "<script>alert" not in page and 'href="https://evil.example"' not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    form = (await client.get(PAGE)).text
    assert "<script>alert" not in form and "&lt;script&gt;" in form


async def test_bad_input_is_explained_and_changes_nothing(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    await perron.post_form(client, PAGE, PAGE, {"privacy_extra.fr": "Déjà là."})
    tomorrow = (dt.datetime.now(TIME_ZONE).date() + dt.timedelta(days=2)).isoformat()
    cases = [
        ({"privacy_purposes.fr": "x" * 4001}, "privacy_purposes.fr", "au plus 4"),
        (
            {"accessibility_feedback.fr": "Bonjour\u0007"},
            "accessibility_feedback.fr",
            "caractère de contrôle invisible",
        ),
        ({"accessibility_reviewed_on": "31/02/2026"}, "accessibility_reviewed_on", "Ce jour n'existe pas"),
        ({"accessibility_reviewed_on": "hier"}, "accessibility_reviewed_on", "jour/mois/année"),
        ({"accessibility_reviewed_on": tomorrow}, "accessibility_reviewed_on", "dans le futur"),
        ({"accessibility_reviewed_on": "2001-01-01"}, "accessibility_reviewed_on", "antérieure à 2018"),
        ({"dpo_email": "pas-une-adresse"}, "dpo_email", "Écrivez une adresse e-mail comme dpo@commune.be."),
        ({"dpo_name": "x" * 201}, "dpo_name", "Le nom ne peut dépasser 200 caractères."),
    ]
    for changes, field, message in cases:
        response = await perron.post_form(client, PAGE, PAGE, {"privacy_extra.fr": "Nouveau.", **changes})
        assert response.status_code == 400, changes
        assert message in text(response), (changes, text(response)[:2500])
        assert f'href="#field-{field}"' in response.text
        assert "Nouveau." in response.text  # the form comes back as typed
    async with perron.transaction(alpha) as session:
        stored = await legal_texts(session, alpha.id)
        contact = await resolve(session, alpha.id, "core", CoreSettings)
    assert stored.texts["privacy_extra"] == {"fr": "Déjà là."} and stored.reviewed_on is None
    assert contact.dpo_email is None and contact.dpo_name is None
    assert len(await entries(perron, alpha, "legal.update")) == 1


async def test_the_legal_pages_show_the_texts_while_the_site_is_suspended(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    async with perron.transaction(alpha) as session:
        await update_legal_texts(
            session, alpha.id, texts={"accessibility_feedback": {"fr": "Écrivez-nous à la main."}}
        )
        commune = await actions.get_commune(session, "alpha")
        await actions.set_status(session, commune, CommuneStatus.SUSPENDED)
    visitor = perron.client(alpha)
    assert (await visitor.get("/")).status_code == 503
    statement = await visitor.get("/accessibility")
    assert statement.status_code == 200 and "Écrivez-nous à la main." in statement.text


async def test_texts_are_per_language_with_the_communes_fallback(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], bravo_admin: Person
) -> None:
    _, bravo = two_tenants
    client = perron.client(bravo, person=bravo_admin)
    form = await client.get(PAGE)
    assert 'name="privacy_extra.fr"' in form.text and 'name="privacy_extra.nl"' in form.text
    await perron.post_form(
        client, PAGE, PAGE, {"privacy_extra.fr": "Texte français.", "privacy_extra.nl": "Nederlandse tekst."}
    )
    await perron.post_form(client, PAGE, PAGE, {"accessibility_feedback.fr": "Seulement en français."})
    dutch = (await perron.client(bravo).get("/privacy?lang=nl")).text
    assert "Nederlandse tekst." not in dutch  # the second save replaced the texts
    statement = (await perron.client(bravo).get("/accessibility?lang=nl")).text
    assert '<div class="legal-text" lang="fr">' in statement and "Seulement en français." in statement


async def test_a_commune_never_reads_or_writes_another_communes_texts(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, bravo = two_tenants
    async with perron.transaction(bravo) as session:
        await update_legal_texts(session, bravo.id, texts={"privacy_extra": {"fr": "Secret de Bravo."}})
    for lock in locks_available():
        with only_lock(lock):  # each lock alone keeps Bravo's texts away from Alpha
            async with perron.transaction(alpha) as session:
                assert (await legal_texts(session, alpha.id)).texts == {}
                try:
                    seen = await legal_texts(session, bravo.id)
                except IsolationError:
                    seen = None
                assert seen is None or seen.texts == {}, lock
    async with perron.transaction(alpha) as session:
        with pytest.raises(IsolationError):
            await update_legal_texts(session, bravo.id, texts={"privacy_extra": {"fr": "Pris."}})
    async with perron.transaction(bravo) as session:
        assert (await legal_texts(session, bravo.id)).texts["privacy_extra"] == {"fr": "Secret de Bravo."}
    assert "Secret de Bravo." not in (await perron.client(alpha).get("/privacy")).text
    assert "Secret de Bravo." in (await perron.client(bravo).get("/privacy")).text


async def test_the_action_checks_what_it_stores() -> None:
    from perron.tenancy.legal import check_review_date, check_texts

    with pytest.raises(Invalid) as unknown:
        check_texts({"cookies": {"fr": "x"}})
    assert unknown.value.field == "cookies"
    assert check_texts({"privacy_extra": {"fr": "  \n "}})["privacy_extra"] == {}
    with pytest.raises(Invalid):
        check_texts({"privacy_extra": {"it": "Testo"}})
    assert check_review_date(None, dt.date(2026, 1, 1)) is None
