"""The branding editor: a palette, font, texts and home page saved from the form show on the
site at once and are audited; every bad input is explained and changes nothing; the preview
saves nothing; the logo is checked, replaced and removed through the same actions as the CLI."""

from __future__ import annotations

import io
import os
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import select

from perron.tenancy.models import DEFAULT_PALETTE, HOME_SECTIONS, Branding
from perron.testing.harness import Harness, Person, Tenant
from tests.commune_admin.conftest import entries, text

PAGE = "/admin/branding"


def branding_form(**changes: Any) -> dict[str, Any]:
    """The form as the page sends it for the default branding, with ``changes``."""
    data: dict[str, Any] = {"intent": "save", "font": "system", "tagline.fr": "", "intro.fr": ""}
    for key, value in DEFAULT_PALETTE.items():
        data |= {key: value, f"{key}_picker": value, f"{key}_shown": value}
    for place, section in enumerate(HOME_SECTIONS, 1):
        data |= {f"section.{section}": "yes", f"position.{section}": str(place)}
    return data | changes


async def branding_of(perron: Harness, tenant: Tenant) -> Branding:
    async with perron.transaction(tenant) as session:
        branding = await session.scalar(select(Branding))
        assert branding is not None
        session.expunge(branding)
        return branding


def png(size: tuple[int, int] = (400, 200), colour: str = "#0b5e3c") -> bytes:
    output = io.BytesIO()
    Image.new("RGB", size, colour).save(output, "PNG")
    return output.getvalue()


async def test_saving_shows_on_the_site_at_once_and_is_audited(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, bravo = two_tenants
    visitor = perron.client(alpha)
    before_css = (await visitor.get("/branding.css")).text
    client = perron.client(alpha, person=alpha_admin)
    form = branding_form(
        primary_color="#0B5E3C",
        accent_color="#7a1f5c",
        font="serif",
        **{
            "tagline.fr": "Votre maison communale en ligne",
            "intro.fr": "Bienvenue.\n\nDeuxième paragraphe.",
            "position.services": "1",
            "position.intro": "2",
            "section.widgets": "",
            "section.contact": "",
        },
    )
    saved = await perron.post_form(client, PAGE, PAGE, form)
    assert saved.status_code == 303 and saved.headers["location"] == f"{PAGE}?done=saved"
    assert "L'apparence est enregistrée" in text(await client.get(saved.headers["location"]))

    branding = await branding_of(perron, alpha)
    assert (branding.primary_color, branding.accent_color, branding.font.value) == (
        "#0b5e3c",
        "#7a1f5c",
        "serif",
    )
    assert branding.tagline == {"fr": "Votre maison communale en ligne"}
    assert branding.home_sections == ["services", "intro"]
    # The site shows it at once, to anonymous visitors too (the page cache was refreshed).
    css = (await visitor.get("/branding.css")).text
    assert css != before_css and "--perron-primary: #0b5e3c;" in css and "Georgia" in css
    home = await visitor.get("/")
    assert "Votre maison communale en ligne" in home.text
    assert home.text.index("services-title") < home.text.index("Deuxième paragraphe")
    # The other commune keeps its own.
    assert "--perron-primary: #1f4e79;" in (await perron.client(bravo).get("/branding.css")).text

    [entry] = await entries(perron, alpha, "branding.update")
    assert entry.actor_label == "Ada Admin" and entry.changes["primary_color"] == ["#1f4e79", "#0b5e3c"]
    log = text(await client.get("/admin/audit"))
    assert "A modifié l'apparence" in log and "Couleur principale : #1f4e79 → est devenu #0b5e3c" in log

    again = await perron.post_form(client, PAGE, PAGE, form)
    assert again.headers["location"] == f"{PAGE}?done=unchanged"
    assert len(await entries(perron, alpha, "branding.update")) == 1


async def test_what_is_not_a_colour_is_explained_and_changes_nothing(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    for value in ("blue", "#12345g", "rgb(0,0,0)", "#1234567"):
        response = await perron.post_form(
            client, PAGE, PAGE, branding_form(primary_color=value, primary_color_picker="#1f4e79")
        )
        assert response.status_code == 400
        page = text(response)
        assert f"« {value} » n'est pas un code de couleur" in page
        assert 'href="#field-primary_color"' in response.text and 'id="error-primary_color"' in response.text
        assert f'value="{value}"' in response.text  # the form comes back as typed
    empty = await perron.post_form(
        client, PAGE, PAGE, branding_form(primary_color="", primary_color_picker="")
    )
    assert empty.status_code == 400 and "Choisissez une couleur." in text(empty)
    unknown_font = await perron.post_form(client, PAGE, PAGE, branding_form(font="comic-sans"))
    assert unknown_font.status_code == 400 and "Choisissez une des polices proposées." in text(unknown_font)
    assert (await branding_of(perron, alpha)).primary_color == "#1f4e79"
    assert await entries(perron, alpha, "branding.update") == []


async def test_a_palette_below_the_contrast_target_is_refused_in_plain_words(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    response = await perron.post_form(
        client, PAGE, PAGE, branding_form(primary_color="#ffdd00", accent_color="#aaaaaa")
    )
    assert response.status_code == 400
    page = text(response)
    assert (
        "Le texte de l'en-tête (#ffffff) sur la couleur principale (#ffdd00) a un contraste de 1,34:1."
        in page
    )
    assert "Les liens et boutons (#aaaaaa) sur le fond de page (#ffffff) ont un contraste de 2,32:1." in page
    assert "au moins 4,5:1 pour être lisible par tout le monde" in page
    assert 'href="#field-contrast-primary_text_color"' in response.text  # the summary leads to it
    passing = response.text.split('id="field-contrast-text_color"')[1].split("</li>")[0]
    assert "<span data-contrast-ratio>17,40</span>:1" in passing and "lisible" in passing
    branding = await branding_of(perron, alpha)
    assert (branding.primary_color, branding.accent_color) == ("#1f4e79", "#0b5394")
    assert await entries(perron, alpha, "branding.update") == []


async def test_texts_too_long_or_on_several_lines_are_refused(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    cases = [
        (
            {"tagline.fr": "x" * 121},
            "tagline.fr",
            "Français : le slogan compte 121 caractères ; ne dépassez pas 120.",
        ),
        ({"intro.fr": "x" * 2001}, "intro.fr", "Français : l'introduction compte 2001 caractères"),
        ({"tagline.fr": "Deux\u0007lignes"}, "tagline.fr", "Le slogan tient sur une ligne"),
        (
            {"section.intro": "", "section.services": "", "section.widgets": "", "section.contact": ""},
            "sections",
            "Choisissez au moins une partie pour la page d'accueil.",
        ),
        ({"position.intro": "9"}, "position.intro", "Choisissez une place dans la liste."),
    ]
    for changes, field, message in cases:
        response = await perron.post_form(client, PAGE, PAGE, branding_form(**changes))
        assert response.status_code == 400, changes
        assert message in text(response), (changes, text(response)[:2000])
        assert f'href="#field-{field}"' in response.text
    branding = await branding_of(perron, alpha)
    assert branding.tagline == {} and branding.intro == {} and branding.home_sections == list(HOME_SECTIONS)
    assert await entries(perron, alpha, "branding.update") == []


async def test_the_colour_picker_or_the_code_whichever_was_changed(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    picked = branding_form(primary_color_picker="#003366")  # the code left as the page showed it
    assert (await perron.post_form(client, PAGE, PAGE, picked)).status_code == 303
    assert (await branding_of(perron, alpha)).primary_color == "#003366"
    typed = branding_form(
        primary_color="#004d26", primary_color_picker="#112233", primary_color_shown="#003366"
    )
    assert (await perron.post_form(client, PAGE, PAGE, typed)).status_code == 303
    assert (await branding_of(perron, alpha)).primary_color == "#004d26"


async def test_the_preview_shows_the_proposal_and_saves_nothing(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, _ = two_tenants
    client = perron.client(alpha, person=alpha_admin)
    before_css = (await perron.client(alpha).get("/branding.css")).text
    preview = await perron.post_form(
        client, PAGE, PAGE, branding_form(intent="preview", accent_color="#7a1f5c", font="rounded")
    )
    assert preview.status_code == 200
    assert "Ceci est un aperçu : rien n'est encore enregistré." in text(preview)
    stylesheet = next(
        line.split('href="')[1].split('"')[0].replace("&amp;", "&")
        for line in preview.text.splitlines()
        if "/admin/branding/preview.css" in line
    )
    assert "accent_color=%237a1f5c" in stylesheet and "font=rounded" in stylesheet
    css = await client.get(stylesheet)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.text.startswith(".branding-preview__page {")  # the panel only, never the page
    assert "--perron-accent: #7a1f5c;" in css.text and "ui-rounded" in css.text
    assert "set-cookie" not in css.headers
    # Nothing saved, nothing audited, the site unchanged.
    assert (await branding_of(perron, alpha)).accent_color == "#0b5394"
    assert await entries(perron, alpha, "branding.update") == []
    assert (await perron.client(alpha).get("/branding.css")).text == before_css

    # A failing palette can be previewed (to see why it fails), still nothing is saved.
    failing = await perron.post_form(
        client, PAGE, PAGE, branding_form(intent="preview", text_color="#cccccc")
    )
    assert (
        failing.status_code == 400
        and "Le texte courant (#cccccc) sur le fond de page (#ffffff) a un contraste de 1,60:1."
        in text(failing)
    )
    assert "text_color=%23cccccc" in failing.text
    assert (await branding_of(perron, alpha)).text_color == "#1a1a1a"
    # The stylesheet checks what it is given.
    for query in ("primary_color=red", "font=comic", "accent_color=%23fff%3B%7Dbody%7Bdisplay:none"):
        assert (await client.get(f"{PAGE}/preview.css?{query}")).status_code == 400
    # With JavaScript, a static script (no inline script or style) makes it follow the inputs.
    page = await client.get(PAGE)
    assert '<script src="/static/perron/branding-editor.js' in page.text and "<script>" not in page.text
    assert (await client.get("/static/perron/branding-editor.js")).status_code == 200


async def test_a_logo_is_checked_replaced_and_removed(
    perron: Harness, two_tenants: tuple[Tenant, Tenant], alpha_admin: Person
) -> None:
    alpha, bravo = two_tenants
    client = perron.client(alpha, person=alpha_admin)

    async def upload(content: bytes, name: str, media_type: str = "image/png") -> httpx.Response:
        return await perron.post_form(
            client, PAGE, f"{PAGE}/logo", {}, files={"logo": (name, content, media_type)}
        )

    refusals = [
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "logo.svg",
            "Les logos SVG ne sont pas acceptés",
        ),
        (os.urandom(2 * 1024 * 1024 + 10), "photo.png", "un logo peut faire au plus 2 Mo"),
        (b"not an image at all", "notes.txt", "n'est pas une image que Perron sait lire"),
        (png((20, 20)), "tiny.png", "un logo a besoin d'au moins 48 pixels"),
    ]
    for content, name, message in refusals:
        response = await upload(content, name)
        assert response.status_code == 400, name
        assert message in text(response), (name, text(response)[:3000])
        assert 'id="error-logo"' in response.text
    nothing = await perron.post_form(client, PAGE, f"{PAGE}/logo", {"logo": ""})
    assert nothing.status_code == 400 and "Choisissez d'abord un fichier image." in text(nothing)
    huge = await upload(b"\x89PNG" + b"\0" * (9 * 1024 * 1024), "huge.png")
    assert huge.status_code == 413
    assert (await branding_of(perron, alpha)).logo_name is None
    assert await entries(perron, alpha, "branding.logo_set") == []

    saved = await upload(png(), "logo.png")
    assert saved.status_code == 303 and saved.headers["location"] == f"{PAGE}?done=logo-saved"
    page = await client.get(PAGE)
    assert 'alt="Le logo actuel"' in page.text and "Remplacer le logo" in text(page)
    logo = await perron.client(alpha).get("/logo")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
    assert (await perron.client(bravo).get("/logo")).status_code == 404
    [entry] = await entries(perron, alpha, "branding.logo_set")
    assert entry.actor_label == "Ada Admin" and entry.changes["uploaded_file"] == [None, "logo.png"]

    confirm = await perron.post_form(client, PAGE, f"{PAGE}/logo/remove", {})
    assert confirm.status_code == 200 and "Supprimer le logo ?" in text(confirm)
    token = client.cookies.get("perron_csrf")
    back = await client.post(f"{PAGE}/logo/remove", data={"confirm": "back", "_csrf_token": token})
    assert back.status_code == 303 and (await branding_of(perron, alpha)).logo_name is not None
    removed = await client.post(f"{PAGE}/logo/remove", data={"confirm": "yes", "_csrf_token": token})
    assert removed.headers["location"] == f"{PAGE}?done=logo-removed"
    assert (await branding_of(perron, alpha)).logo_name is None
    assert (await perron.client(alpha).get("/logo")).status_code == 404
    assert len(await entries(perron, alpha, "branding.logo_remove")) == 1
