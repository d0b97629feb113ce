"""The onboarding wizard as an intercommunale's administrator uses it: six steps, each checked
when saved, then the provisioning job, then the commune's branded site on its own address."""

from __future__ import annotations

import io
import re

from PIL import Image
from sqlalchemy import func, select

from perron.console.models import Onboarding, OnboardingStatus
from perron.db.scope import platform_scope
from perron.identity.models import Account, AccountKind
from perron.tenancy.models import Commune, CommuneStatus, Domain, ModuleActivation
from perron.testing.harness import Harness
from tests.console.conftest import Bodies, console, submit, text


def png(colour: str = "#0a7d3b", size: tuple[int, int] = (240, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


async def start(perron: Harness, client, body: str = "bep") -> str:
    response = await submit(perron, client, "/onboardings", "/onboardings", {"intercommunale": body})
    assert response.status_code == 303, response.text
    match = re.match(r"/onboardings/([0-9a-f-]+)/step/commune", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


COMMUNE = {
    "language.fr": "on",
    "language.nl": "on",
    "default_language": "fr",
    "name.fr": "Gesves",
    "name.nl": "Gesves",
    "nis_code": "92054",
}


async def fill_wizard(perron: Harness, client, draft: str, **overrides: dict) -> None:
    steps = {
        "commune": COMMUNE,
        "addresses": {"primary_domain": "gesves.test", "aliases": "www.gesves.test"},
        "branding": {
            "primary_color": "#0a5c36",
            "primary_text_color": "#ffffff",
            "accent_color": "#0a5c36",
            "background_color": "#ffffff",
            "text_color": "#1a1a1a",
            "font": "humanist",
            "tagline.fr": "Commune de caractère",
        },
        "modules": {"module.news": "on", "news.items_on_home": "5"},
        "admins": {
            "admin1.name": "Gaëlle Gesves",
            "admin1.email": "gaelle@gesves.test",
            "admin1.language": "fr",
        },
    }
    for step, data in steps.items():
        data = overrides.get(step, data)
        page = f"/onboardings/{draft}/step/{step}"
        response = await submit(perron, client, page, page, data)
        assert response.status_code == 303, (step, text(response))


async def test_an_intercommunale_admin_onboards_a_commune_whose_site_then_answers(
    perron: Harness, bodies: Bodies
) -> None:
    client = console(perron, bodies.bep_admin)
    draft = await start(perron, client)
    await fill_wizard(perron, client, draft)
    preview = await client.get(f"/onboardings/{draft}/preview.css")  # the branding step's preview
    assert (
        preview.headers["content-type"].startswith("text/css") and "--preview-primary:#0a5c36" in preview.text
    )
    review = await client.get(f"/onboardings/{draft}/step/review")
    assert review.status_code == 200
    for expected in ("Gesves", "92054", "gesves.test, www.gesves.test", "Gaëlle Gesves"):
        assert expected in text(review)
    launched = await submit(
        perron, client, f"/onboardings/{draft}/step/review", f"/onboardings/{draft}/launch", {}
    )
    assert launched.status_code == 303 and launched.headers["location"] == f"/onboardings/{draft}"
    waiting = await client.get(f"/onboardings/{draft}")
    assert waiting.status_code == 200 and "data-progress-url" in waiting.text

    await perron.run_jobs()

    done = await client.get(f"/onboardings/{draft}")
    assert "The commune is on board" in text(done), text(done)
    assert "http://gesves.test/" in done.text
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            commune = await session.scalar(select(Commune).where(Commune.slug == "gesves"))
            assert commune is not None and commune.status is CommuneStatus.ACTIVE
            assert commune.names == {"fr": "Gesves", "nl": "Gesves"} and commune.languages == ["fr", "nl"]
            hosts = set(await session.scalars(select(Domain.host).where(Domain.commune_id == commune.id)))
            assert hosts == {"gesves.test", "www.gesves.test"}
            modules = set(
                await session.scalars(
                    select(ModuleActivation.module).where(ModuleActivation.tenant_id == commune.id)
                )
            )
            assert modules == {"news"}
            admin = await session.scalar(select(Account).where(Account.tenant_id == commune.id))
            assert admin is not None and admin.kind is AccountKind.STAFF and admin.roles == ["admin"]
            assert admin.email == "gaelle@gesves.test"
            item = await session.get(Onboarding, __import__("uuid").UUID(draft))
            assert item is not None and item.status is OnboardingStatus.DONE and item.commune_id == commune.id

    site = perron.client("gesves.test")
    home = await site.get("/")
    assert home.status_code == 200 and "Gesves" in home.text and "Commune de caractère" in home.text
    assert (await site.get("/news")).status_code == 200
    css = await site.get("/branding.css")
    assert "#0a5c36" in css.text
    assert (await perron.client("www.gesves.test").get("/")).status_code == 301


async def test_another_intercommunales_admin_sees_nothing_of_the_onboarding(
    perron: Harness, bodies: Bodies
) -> None:
    bep = console(perron, bodies.bep_admin)
    draft = await start(perron, bep)
    await fill_wizard(perron, bep, draft)
    await submit(perron, bep, f"/onboardings/{draft}/step/review", f"/onboardings/{draft}/launch", {})
    await perron.run_jobs()
    idelux = console(perron, bodies.idelux_admin)
    for path in (
        f"/onboardings/{draft}",
        f"/onboardings/{draft}/progress",
        f"/onboardings/{draft}/step/commune",
        "/communes/gesves",
        "/communes/ciney",
        "/intercommunales/bep",
        "/intercommunales/bep/modules",
    ):
        assert (await idelux.get(path)).status_code == 404, path
    for page in ("/", "/communes", "/onboardings", "/intercommunales"):
        seen = text(await idelux.get(page))
        assert "Gesves" not in seen and "Ciney" not in seen and "BEP" not in seen, page
    assert "Arlon" in text(await idelux.get("/communes")) and "Idelux" in text(
        await idelux.get("/intercommunales")
    )
    assert "Gesves" in text(await bep.get("/communes")) and "Arlon" not in text(await bep.get("/communes"))
    operator = console(perron, bodies.operator)
    everything = text(await operator.get("/communes"))
    assert "Gesves" in everything and "Arlon" in everything and "Ciney" in everything


async def test_each_step_refuses_what_it_cannot_use_and_keeps_nothing_of_it(
    perron: Harness, bodies: Bodies
) -> None:
    client = console(perron, bodies.bep_admin)
    draft = await start(perron, client)
    page = f"/onboardings/{draft}/step/commune"
    for data, message in (
        (COMMUNE | {"nis_code": "123"}, "NIS"),
        (COMMUNE | {"nis_code": str(bodies.ciney.commune.nis_code)}, "already belongs"),
        ({k: v for k, v in COMMUNE.items() if not k.startswith("language.")}, "language"),
        (COMMUNE | {"name.nl": ""}, "name"),
        (COMMUNE | {"slug": "ciney"}, "ciney"),
    ):
        response = await submit(perron, client, page, page, data)
        assert response.status_code in (400, 409), text(response)
        assert message.lower() in text(response).lower(), (message, text(response))
    # Nothing was saved: the next steps stay closed.
    assert (await client.get(f"/onboardings/{draft}/step/addresses")).status_code == 303
    assert (await submit(perron, client, page, page, COMMUNE)).status_code == 303

    page = f"/onboardings/{draft}/step/addresses"
    for data, message in (
        ({"primary_domain": "ciney.test"}, "already the address of another site"),
        ({"primary_domain": "http://gesves.be"}, "without “https://”"),
        ({"primary_domain": "gesves.test", "aliases": "gesves.test"}, "twice"),
        ({"primary_domain": "console.test"}, "console"),
    ):
        response = await submit(perron, client, page, page, data)
        assert response.status_code in (400, 409), text(response)
        assert message.lower() in text(response).lower(), (message, text(response))
    assert (await submit(perron, client, page, page, {"primary_domain": "gesves.test"})).status_code == 303

    page = f"/onboardings/{draft}/step/branding"
    unreadable = {"primary_color": "#ffff00", "primary_text_color": "#ffffff"}
    response = await submit(perron, client, page, page, unreadable)
    assert response.status_code == 400 and "4.5:1" in text(response)
    token = await perron.form_token(client, page)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    response = await client.post(
        page, data={"_csrf_token": token}, files={"logo": ("logo.svg", svg, "image/svg+xml")}
    )
    assert response.status_code == 400 and "SVG" in text(response)
    response = await client.post(
        page, data={"_csrf_token": token}, files={"logo": ("logo.png", png(), "image/png")}
    )
    assert response.status_code == 303
    assert "logo.png" in text(await client.get(page))

    page = f"/onboardings/{draft}/step/modules"
    response = await submit(perron, client, page, page, {"module.news": "on", "news.items_on_home": "99"})
    assert response.status_code == 400, text(response)
    assert (await submit(perron, client, page, page, {"module.news": "on"})).status_code == 303

    page = f"/onboardings/{draft}/step/admins"
    for data, message in (
        ({}, "at least one"),
        ({"admin1.name": "Gaëlle", "admin1.email": "not-an-address"}, "e-mail"),
        ({"admin1.email": "g@gesves.test"}, "name"),
        (
            {"admin1.name": "A", "admin1.email": "a@x.be", "admin2.name": "B", "admin2.email": "A@x.be"},
            "twice",
        ),
    ):
        response = await submit(perron, client, page, page, data)
        assert response.status_code == 400, text(response)
        assert message.lower() in text(response).lower(), (message, text(response))
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            assert await session.scalar(select(func.count()).select_from(Commune)) == 2  # nothing created


async def test_a_commune_taken_meanwhile_is_refused_at_launch(perron: Harness, bodies: Bodies) -> None:
    client = console(perron, bodies.bep_admin)
    first, second = await start(perron, client), await start(perron, client)
    await fill_wizard(perron, client, first)
    await fill_wizard(perron, client, second)
    assert (
        await submit(perron, client, f"/onboardings/{first}/step/review", f"/onboardings/{first}/launch", {})
    ).status_code == 303
    refused = await submit(
        perron, client, f"/onboardings/{second}/step/review", f"/onboardings/{second}/launch", {}
    )
    # Refused whether the first one is still being provisioned or already done.
    assert refused.status_code == 409, text(refused)
    assert "under way" in text(refused) or "already has the short name" in text(refused)
    await perron.run_jobs()
    refused = await submit(
        perron, client, f"/onboardings/{second}/step/review", f"/onboardings/{second}/launch", {}
    )
    assert refused.status_code == 409 and "gesves" in text(refused).lower()
