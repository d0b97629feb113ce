"""The news module, driven as citizens and staff use it, in two communes at once."""

from __future__ import annotations

import re

import pytest

from perron.sdk import Assurance
from perron.testing import Harness, Tenant


async def write(perron: Harness, tenant: Tenant, editor, titles: dict[str, str], **extra: str):
    client = perron.client(tenant, person=editor)
    data = {f"title.{code}": text for code, text in titles.items()} | extra
    response = await perron.post_form(client, "/admin/news/new", "/admin/news/new", data)
    assert response.status_code == 303, response.text
    return client, response.headers["location"].split("?")[0]


async def publish(perron: Harness, client, edit_path: str, **data: str) -> None:
    response = await perron.post_form(client, edit_path, f"{edit_path}/publish", data)
    assert response.status_code == 303, response.text


async def test_staff_publish_and_citizens_read_in_their_language(perron: Harness, two_tenants) -> None:
    _, bravo = two_tenants
    await perron.enable(bravo, "news")
    editor = await perron.staff(bravo, roles=["news.editor"])
    client, edit_path = await write(
        perron, bravo, editor, {"fr": "Marché de Noël", "nl": "Kerstmarkt"}, **{"summary.fr": "Samedi."}
    )
    visitor = perron.client(bravo)
    assert "Marché de Noël" not in (await visitor.get("/news")).text  # a draft is not public
    article_path = edit_path.replace("/admin", "")
    assert (await visitor.get(article_path)).status_code == 404

    await publish(perron, client, edit_path)
    french = await visitor.get("/news")
    assert "Marché de Noël" in french.text
    dutch = await visitor.get("/news?lang=nl")
    assert "Kerstmarkt" in dutch.text and "Marché de Noël" not in dutch.text
    page = await visitor.get(article_path)
    assert page.status_code == 200 and "Samedi." in page.text
    home = await visitor.get("/?lang=fr")
    assert "Marché de Noël" in home.text  # the home-page widget shows it at once


async def test_news_of_one_commune_never_reach_the_other(perron: Harness, two_tenants) -> None:
    alpha, bravo = two_tenants
    await perron.enable(alpha, "news")
    await perron.enable(bravo, "news")
    alpha_editor = await perron.staff(alpha, roles=["news.editor"])
    client, edit_path = await write(perron, alpha, alpha_editor, {"fr": "Secret Alpha"})
    await publish(perron, client, edit_path)
    article_path = edit_path.replace("/admin", "")

    bravo_visitor = perron.client(bravo)
    assert "Secret Alpha" not in (await bravo_visitor.get("/news")).text
    assert "Secret Alpha" not in (await bravo_visitor.get("/")).text
    assert (await bravo_visitor.get(article_path)).status_code == 404
    # Bravo's own editor cannot open, change or delete Alpha's article by its id.
    bravo_editor = perron.client(bravo, person=await perron.staff(bravo, roles=["news.editor"]))
    assert (await bravo_editor.get(edit_path)).status_code == 404
    token = await perron.form_token(bravo_editor, "/admin/news/new")
    for action in ("", "/withdraw", "/delete"):
        response = await bravo_editor.post(
            f"{edit_path}{action}", data={"title.fr": "x", "_csrf_token": token}
        )
        assert response.status_code == 404
    # Alpha's editor session means nothing on Bravo's host.
    stolen = perron.client(bravo, person=alpha_editor)
    assert (await stolen.get("/admin/news")).status_code == 401
    assert "Secret Alpha" in (await perron.client(alpha).get(article_path)).text


async def test_a_module_switched_off_is_invisible(perron: Harness, two_tenants) -> None:
    alpha, bravo = two_tenants
    await perron.enable(alpha, "news", demo=True)
    visitor = perron.client(bravo)
    assert (await visitor.get("/news")).status_code == 404
    home = await visitor.get("/")
    assert 'href="/news"' not in home.text
    alpha_home = await perron.client(alpha).get("/")
    assert 'href="/news"' in alpha_home.text  # navigation and widget

    await perron.disable(alpha, "news")
    assert (await perron.client(alpha).get("/news")).status_code == 404
    assert 'href="/news"' not in (await perron.client(alpha).get("/")).text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"title.fr": ""}, "title.fr", "Un titre dans la langue principale"),
        ({"title.fr": "x" * 201}, "title.fr", "200 caractères au maximum"),
        (
            {"title.fr": "Ok", "summary.nl": "Alleen in het Nederlands"},
            "title.nl",
            "Donnez un titre dans chaque langue",
        ),
    ],
)
async def test_bad_news_are_refused_with_the_field_named(
    perron: Harness, two_tenants, data: dict[str, str], field: str, message: str
) -> None:
    _, bravo = two_tenants
    await perron.enable(bravo, "news")
    editor = perron.client(bravo, person=await perron.staff(bravo, roles=["news.editor"]))
    response = await perron.post_form(editor, "/admin/news/new", "/admin/news/new", data)
    assert response.status_code == 400
    assert message in response.text and f'id="error-{field}"' in response.text
    assert "Ok" not in (await editor.get("/admin/news")).text  # nothing saved


async def test_html_in_news_is_shown_as_text(perron: Harness, two_tenants) -> None:
    alpha, _ = two_tenants
    await perron.enable(alpha, "news")
    editor = await perron.staff(alpha, roles=["news.editor"])
    client, edit_path = await write(perron, alpha, editor, {"fr": "<script>alert(1)</script>"})
    await publish(perron, client, edit_path)
    text = (await perron.client(alpha).get("/news")).text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text


async def test_only_news_editors_reach_the_news_admin(perron: Harness, two_tenants) -> None:
    alpha, _ = two_tenants
    await perron.enable(alpha, "news")
    assert (await perron.client(alpha).get("/admin/news")).status_code == 401
    citizen = await perron.citizen(alpha, assurance=Assurance.HIGH)
    assert (await perron.client(alpha, person=citizen).get("/admin/news")).status_code == 403
    other_staff = await perron.staff(alpha, roles=["territory.editor"])
    assert (await perron.client(alpha, person=other_staff).get("/admin/news")).status_code == 403
    admin = await perron.staff(alpha, roles=["admin"])
    assert (await perron.client(alpha, person=admin).get("/admin/news")).status_code == 200


async def test_keyset_pages_go_back_in_time(perron: Harness, two_tenants) -> None:
    alpha, _ = two_tenants
    await perron.enable(alpha, "news", settings={"page_size": 5})
    editor = await perron.staff(alpha, roles=["news.editor"])
    for number in range(7):
        client, edit_path = await write(perron, alpha, editor, {"fr": f"Nouvelle {number}"})
        await publish(perron, client, edit_path)
    visitor = perron.client(alpha)
    first = (await visitor.get("/news")).text
    assert "Nouvelle 6" in first and "Nouvelle 1" not in first
    more = re.search(r'href="(/news\?before=[^"]+)"', first)
    assert more is not None
    second = (await visitor.get(more.group(1).replace("&amp;", "&"))).text
    assert "Nouvelle 1" in second and "Nouvelle 0" in second and "Nouvelle 6" not in second
    assert (await visitor.get("/news?before=garbage")).status_code == 400
