"""The default theme and the legal pages, as a visitor's browser receives them: the theme
replaces the platform's plain layout, the navigation lists the modules a commune switched on,
the language links keep the page, the footer gives the commune's contact, the accessibility
statement and privacy notice exist in every language, and without a theme the platform's
plain layout still serves every page."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from perron.db.scope import tenant_scope
from perron.identity.actions import create_account
from perron.identity.models import AccountKind, Assurance
from perron.identity.sessions import SESSION_COOKIE, open_session
from perron.modules import activation
from perron.modules.registry import registry
from perron.tenancy import actions
from perron.tenancy.models import Commune, CommuneStatus
from perron.web import templating
from perron.web.legal import Region, region_of
from perron.web.pages import site_context
from perron.web.templating import Templates, theme_template_dirs
from tests.conftest import ROOT, ClientFactory, MakeCommune

THEME = ROOT / "themes" / "default"
LOCALE = ROOT / "platform" / "perron" / "locale"


def navigation(response) -> str:
    """The main navigation of a page (between the header's bar and its end)."""
    page = response.text
    return page[page.index('<nav class="site-nav"') : page.index("</header>")]


def text_of(page: str) -> str:
    """The page's text as a reader gets it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def set_contact(database, commune: Commune, **values: str) -> None:
    with tenant_scope(commune.id):
        async with database.transaction() as session:
            await actions.update_commune_settings(session, commune.id, "core", values)


async def enable(database, commune: Commune, module: str) -> None:
    with tenant_scope(commune.id):
        async with database.transaction() as session:
            await activation.enable(session, commune.id, module)


async def staff_token(database, commune: Commune, name: str = "Camille Agent") -> str:
    with tenant_scope(commune.id):
        async with database.transaction() as session:
            account = await create_account(
                session,
                commune.id,
                display_name=name,
                kind=AccountKind.STAFF,
                roles=["admin"],
                assurance=Assurance.SUBSTANTIAL,
            )
            return await open_session(session, account, Assurance.SUBSTANTIAL)


@pytest.fixture
async def hannut(make_commune: MakeCommune) -> Commune:
    return await make_commune(
        "hannut", languages=["fr", "nl"], names={"fr": "Hannut", "nl": "Hannuit"}, nis_code="64034"
    )


# --- Which templates answer ------------------------------------------------------------------


async def test_the_default_theme_lays_out_the_commune_pages(hannut, client_for: ClientFactory) -> None:
    page = (await client_for("hannut.test").get("/")).text
    assert 'class="site-nav"' in page and 'class="plain-nav' not in page
    # Stylesheets: platform defaults, then the theme, then the commune's colours, which win.
    platform_css = page.index("/static/perron/perron.css")
    assert platform_css < page.index("/static/default/theme.css") < page.index("/branding.css?v=")
    theme_css = await client_for("hannut.test").get("/static/default/theme.css")
    assert theme_css.status_code == 200 and theme_css.headers["content-type"].startswith("text/css")
    # Head: installable app and its colour, in the commune's main colour.
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert '<link rel="apple-touch-icon" href="/apple-touch-icon.png">' in page
    assert '<meta name="theme-color" content="#1f4e79">' in page
    assert '<a class="skip-link" href="#content">' in page and '<main id="content"' in page


def test_templates_are_looked_up_in_the_theme_then_the_modules_then_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theme, module = tmp_path / "theme" / "templates", tmp_path / "module"
    for folder, names in ((theme, ["a"]), (module, ["a", "b"])):
        for name in names:
            target = folder / "perron" / f"probe_{name}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"{folder.parent.name if folder == theme else 'module'} {name}")
    monkeypatch.setattr(templating, "_module_template_dirs", [module])
    templates = Templates([theme])
    assert templates.render("perron/probe_a.html", {}, "fr") == "theme a"  # the theme wins
    assert templates.render("perron/probe_b.html", {}, "fr") == "module b"  # then the module
    # then the platform's own templates
    assert (
        "{% block content %}"
        in templates.loader.get_source(templates.environment("fr"), "perron/bare.html")[0]
    )


async def test_without_a_theme_the_platform_layout_serves_every_page(
    hannut, client_for: ClientFactory, app, runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = Templates(theme_template_dirs(tmp_path))  # a themes folder without the default theme
    monkeypatch.setattr(app.app.site_app.state, "templates", plain)
    client = client_for("hannut.test")
    for path in ("/", "/accessibility", "/privacy"):
        response = await client.get(path, headers={"accept-language": "nl"})
        assert response.status_code == 200, path
        assert 'class="site-header__inner plain-nav"' in response.text, path
        assert "theme.css" not in response.text, path
        assert "Hannuit" in response.text and '<html lang="nl">' in response.text, path
    home = (await client.get("/")).text
    assert '<a href="/accessibility">' in home and '<a href="/privacy">' in home
    # Error pages use the same plain layout.
    site = (await runtime.resolver.resolve("hannut.test")).site
    error = plain.render(
        "perron/error.html",
        site_context(site, "fr") | {"title": "Introuvable", "explanation": "", "request_id": "4f2a"},
        "fr",
    )
    assert "plain-nav" in error and "<h1>Introuvable</h1>" in error and "4f2a" in error


# --- Navigation, languages, account and footer ------------------------------------------------


def _module_with_navigation():
    for manifest in registry.ordered():
        if manifest.nav and manifest.routes:
            return manifest
    pytest.fail("no installed module has a navigation entry (modules/ should provide news)")


async def test_navigation_lists_only_the_modules_the_commune_switched_on(
    two_communes, client_for: ClientFactory, database
) -> None:
    alpha, _bravo = two_communes
    module = _module_with_navigation()
    await enable(database, alpha, module.name)
    link = f'<a href="{module.path}{module.nav[0].path}"'
    alpha_nav = navigation(await client_for("alpha.test").get("/"))
    bravo_home = (await client_for("bravo.test").get("/")).text
    # In the menu for phones and in the bar for wide screens.
    assert alpha_nav.count(link) == 2
    assert link not in bravo_home and f'href="{module.path}' not in bravo_home
    assert (await client_for("bravo.test").get(module.path)).status_code == 404
    # The entry of the page being shown is marked as the current page.
    module_nav = navigation(await client_for("alpha.test").get(module.path + module.nav[0].path))
    assert module_nav.count(f'{link} aria-current="page">') == 2
    assert alpha_nav.count('<a href="/" aria-current="page">') == 2
    assert '<a href="/" aria-current="page">' not in module_nav


async def test_language_links_keep_the_page_and_name_each_language_in_itself(
    hannut, make_commune: MakeCommune, client_for: ClientFactory
) -> None:
    page = (await client_for("hannut.test").get("/accessibility")).text
    assert '<a href="/accessibility?lang=fr" hreflang="fr" lang="fr" aria-current="true">Français</a>' in page
    assert '<a href="/accessibility?lang=nl" hreflang="nl" lang="nl">Nederlands</a>' in page
    assert '<link rel="alternate" hreflang="nl" href="/accessibility?lang=nl">' in page
    dutch = await client_for("hannut.test").get("/accessibility?lang=nl")
    assert '<html lang="nl">' in dutch.text
    assert 'hreflang="nl" lang="nl" aria-current="true">Nederlands</a>' in dutch.text
    await make_commune("chimay")  # French only: nothing to switch to
    single = (await client_for("chimay.test").get("/")).text
    assert "hreflang" not in single and 'class="language-switcher"' not in single


async def test_visitors_get_no_dead_login_link_and_staff_their_name_messages_admin_and_logout(
    hannut, client_for: ClientFactory, database
) -> None:
    anonymous = (await client_for("hannut.test").get("/privacy")).text
    # Login (Keycloak) is not there yet: no page may link to a login page that does not exist.
    assert "account__login" not in anonymous and "/login" not in anonymous
    assert 'href="/inbox"' not in anonymous and 'href="/admin"' not in anonymous
    client = client_for("hannut.test")
    client.cookies.set(SESSION_COOKIE, await staff_token(database, hannut), domain="hannut.test")
    home = (await client.get("/")).text
    assert "Camille Agent" in home
    assert '<a href="/inbox">' in home and '<a href="/admin">' in home
    assert "account__login" not in home
    # A page that already carries a form token logs out with a form (POST, never a link).
    admin = await client.get("/admin")
    assert admin.status_code == 200
    form = re.search(
        r'<form class="account__logout" method="post" action="/logout">(.*?)</form>', admin.text, re.S
    )
    assert form and 'name="_csrf_token"' in form.group(1)


async def test_footer_gives_the_commune_contact_and_the_legal_pages(
    two_communes, client_for: ClientFactory, database
) -> None:
    alpha, _bravo = two_communes
    await set_contact(
        database,
        alpha,
        postal_address="Place de l'Hôtel de Ville 1, 4280 Alpha",
        contact_phone="019 51 93 11",
        contact_email="accueil@alpha.example",
        opening_hours="Du lundi au vendredi, de 8 h 30 à 12 h",
    )
    page = (await client_for("alpha.test").get("/")).text
    footer = page[page.index('<footer class="site-footer">') :]
    assert "Place de l'Hôtel de Ville 1, 4280 Alpha" in html.unescape(footer)
    assert '<a href="tel:019519311">019 51 93 11</a>' in footer
    assert '<a href="mailto:accueil@alpha.example">accueil@alpha.example</a>' in footer
    assert "Du lundi au vendredi, de 8 h 30 à 12 h" in footer
    assert '<a href="/accessibility">' in footer and '<a href="/privacy">' in footer
    # Another commune shows its own (here: none), never alpha's.
    bravo = (await client_for("bravo.test").get("/")).text
    assert "alpha.example" not in bravo and "4280 Alpha" not in bravo and "tel:" not in bravo


# --- Legal pages ------------------------------------------------------------------------------

STATEMENT = {
    "fr": ("Déclaration d'accessibilité", "Procédure de mise en œuvre", "22 novembre 2026"),
    "nl": ("Toegankelijkheidsverklaring", "Handhavingsprocedure", "22 november 2026"),
    "de": ("Erklärung zur Barrierefreiheit", "Durchsetzungsverfahren", "22. November 2026"),
}


@pytest.mark.parametrize("language", ["fr", "nl", "de"])
async def test_accessibility_statement_in_each_language(
    make_commune: MakeCommune, client_for: ClientFactory, database, language: str
) -> None:
    commune = await make_commune(
        "eupen",
        languages=["de", "fr", "nl"],
        names={"de": "Eupen", "fr": "Eupen", "nl": "Eupen"},
        nis_code="63023",
    )
    await set_contact(database, commune, contact_email="info@eupen.example", contact_phone="087 59 58 00")
    response = await client_for("eupen.test").get(f"/accessibility?lang={language}")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers or "perron_csrf" not in response.headers["set-cookie"]
    text = text_of(response.text)
    title, enforcement, date = STATEMENT[language]
    assert html.unescape(re.search(r"<h1>([^<]*)</h1>", response.text).group(1)) == title
    assert enforcement in text and date in text
    assert "WCAG" in text and "2.1" in text and "axe-core" in text
    assert "info@eupen.example" in text and "087 59 58 00" in text
    # Eupen is in Wallonia: the Walloon ombudsman, whose name is French (and marked so elsewhere).
    name = "Le Médiateur de la Wallonie et de la Fédération Wallonie-Bruxelles"
    marked = f"<strong>{name}</strong>" if language == "fr" else f'<strong lang="fr">{name}</strong>'
    assert marked in html.unescape(response.text)
    assert 'href="https://www.le-mediateur.be"' in response.text


@pytest.mark.parametrize(
    ("nis_code", "ombudsman", "website"),
    [
        ("93014", "Le Médiateur de la Wallonie", "https://www.le-mediateur.be"),
        ("44021", "Vlaamse Ombudsdienst", "https://www.vlaamseombudsdienst.be"),
        ("21004", "Ombuds.brussels", "https://www.ombuds.brussels"),
    ],
)
async def test_the_statement_names_the_ombudsman_of_the_commune_region(
    make_commune: MakeCommune, client_for: ClientFactory, nis_code: str, ombudsman: str, website: str
) -> None:
    await make_commune("somewhere", nis_code=nis_code)
    page = (await client_for("somewhere.test").get("/accessibility")).text
    assert ombudsman in html.unescape(page) and f'href="{website}"' in page


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("21004", Region.BRUSSELS),
        ("11002", Region.FLANDERS),
        ("23062", Region.FLANDERS),
        ("24062", Region.FLANDERS),
        ("44021", Region.FLANDERS),
        ("71022", Region.FLANDERS),
        ("25005", Region.WALLONIA),
        ("58001", Region.WALLONIA),
        ("63023", Region.WALLONIA),
        ("64034", Region.WALLONIA),
        ("92003", Region.WALLONIA),
        ("85009", Region.WALLONIA),
        ("20001", None),
        ("abcde", None),
        ("2100", None),
    ],
)
def test_region_from_the_nis_code(code: str, region: Region | None) -> None:
    assert region_of(code) == region


PRIVACY = {
    "fr": ("Déclaration de protection de la vie privée", "Autorité de protection des données"),
    "nl": ("Privacyverklaring", "Gegevensbeschermingsautoriteit"),
    "de": ("Datenschutzerklärung", "Datenschutzbehörde"),
}


@pytest.mark.parametrize("language", ["fr", "nl", "de"])
async def test_privacy_notice_in_each_language(
    make_commune: MakeCommune, client_for: ClientFactory, database, language: str
) -> None:
    commune = await make_commune(
        "eupen",
        languages=["de", "fr", "nl"],
        names={"de": "Eupen", "fr": "Eupen", "nl": "Eupen"},
        nis_code="63023",
    )
    await set_contact(database, commune, contact_email="info@eupen.example", dpo_email="dpo@eupen.example")
    response = await client_for("eupen.test").get(f"/privacy?lang={language}")
    assert response.status_code == 200
    text = text_of(response.text)
    title, authority = PRIVACY[language]
    assert title in text and authority in text
    assert "Eupen" in text
    # Rights are exercised with the data protection officer when the commune names one.
    assert "dpo@eupen.example" in text
    # Every cookie the platform sets is listed, with how long it lasts.
    for cookie in ("perron_session", "perron_csrf", "perron_lang"):
        assert f"<code>{cookie}</code>" in response.text
    assert "12" in text and "365" in text
    assert "contact@apd-gba.be" in text


async def test_privacy_notice_falls_back_to_the_commune_address_without_an_officer(
    hannut, client_for: ClientFactory, database
) -> None:
    await set_contact(database, hannut, contact_email="accueil@hannut.example")
    text = text_of((await client_for("hannut.test").get("/privacy")).text)
    assert "accueil@hannut.example" in text and "dpo@" not in text


async def test_legal_pages_set_no_cookie(hannut, client_for: ClientFactory) -> None:
    client = client_for("hannut.test")
    for path in ("/accessibility", "/privacy"):
        assert "set-cookie" not in (await client.get(path)).headers, path


# --- Translations -----------------------------------------------------------------------------


def _theme_messages() -> set[str]:
    found = extract_from_dir(
        str(THEME), [("**/templates/**.html", "jinja2")], keywords={**DEFAULT_KEYWORDS, "lazy": None}
    )
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


@pytest.mark.parametrize("language", ["fr", "nl", "de"])
def test_every_string_of_the_default_theme_is_translated(language: str) -> None:
    messages = _theme_messages()
    assert "Skip to main content" in messages and "Main menu" in messages
    catalog = read_po((LOCALE / language / "LC_MESSAGES" / "perron.po").open("rb"))
    translated = {message.id for message in catalog if message.id and message.string}
    assert sorted(messages - translated) == []


async def test_a_suspended_site_offers_no_menu_and_no_login(
    make_commune: MakeCommune, client_for: ClientFactory
) -> None:
    await make_commune("ciney", status=CommuneStatus.SUSPENDED)
    response = await client_for("ciney.test").get("/")
    assert response.status_code == 503
    assert "Ciney" in response.text
    assert 'class="site-nav"' not in response.text and "/login" not in response.text


async def test_home_page_shows_the_sections_the_commune_chose_in_its_order(
    two_communes, client_for: ClientFactory, database
) -> None:
    alpha, bravo = two_communes
    for commune in (alpha, bravo):
        await set_contact(database, commune, contact_email=f"info@{commune.slug}.example")
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            await actions.update_branding(
                session,
                alpha.id,
                intro={"fr": "Bienvenue à Alpha.\n\nLe marché a lieu le mardi."},
                home_sections=["contact", "intro", "services"],
            )
    page = (await client_for("alpha.test").get("/")).text
    main = page[page.index("<main") : page.index("</main>")]
    assert (
        main.index('id="contact-title"')
        < main.index('class="home-intro"')
        < main.index('id="services-title"')
    )
    assert "<p>Bienvenue à Alpha.</p>" in html.unescape(main) and "<p>Le marché a lieu le mardi.</p>" in main
    # The other commune keeps the default order and its own (default) introduction.
    other = (await client_for("bravo.test").get("/")).text
    other_main = other[other.index("<main") : other.index("</main>")]
    assert other_main.index('class="home-intro"') < other_main.index('id="services-title"')
    assert other_main.index('id="services-title"') < other_main.index('id="contact-title"')
    assert "Alpha" not in other_main and "marché" not in other_main
