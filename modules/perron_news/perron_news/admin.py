"""What the commune's staff use: write, publish, withdraw and delete news."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from perron.sdk import (
    Invalid,
    current_site,
    current_user,
    module_settings,
    page,
    reading,
    requires,
    territory,
    writing,
)
from perron_news import service
from perron_news.models import Article

EDIT = [requires("news", "publish")]


def _draft_from(form: Any, languages: tuple[str, ...]) -> service.Draft:
    def texts(field: str) -> dict[str, str]:
        return {code: str(form.get(f"{field}.{code}", "")) for code in languages}

    return service.Draft(
        title=texts("title"), summary=texts("summary"), body=texts("body"), pinned=form.get("pinned") == "on"
    )


async def _neighbourhoods(session: Any, language: str) -> list[tuple[str, str]]:
    return [(str(n.id), n.name(language)) for n in await territory.neighbourhoods(session)]


@get("/", name="news_admin_list", guards=EDIT)
async def admin_list(request: Request[Any, Any, Any]) -> Any:
    async with reading(request) as session:
        articles = await service.all_for_staff(session)
    return page(request, "news/admin/list.html", articles=articles, fallbacks=current_site(request).languages)


def _form_page(
    request: Request[Any, Any, Any],
    *,
    article: Article | None,
    values: dict[str, Any],
    error: Invalid | None = None,
) -> Any:
    return page(
        request,
        "news/admin/form.html",
        status_code=400 if error else 200,
        article=article,
        values=values,
        errors={error.field: error.reason} if error else {},
        commune_languages=current_site(request).languages,
    )


def _values(article: Article | None) -> dict[str, Any]:
    if article is None:
        return {"title": {}, "summary": {}, "body": {}, "pinned": False}
    return {
        "title": article.title,
        "summary": article.summary,
        "body": article.body,
        "pinned": article.pinned,
    }


def _values_from_draft(draft: service.Draft) -> dict[str, Any]:
    return {"title": draft.title, "summary": draft.summary, "body": draft.body, "pinned": draft.pinned}


@get("/new", name="news_admin_new", guards=EDIT)
async def admin_new(request: Request[Any, Any, Any]) -> Any:
    return _form_page(request, article=None, values=_values(None))


@post("/new", name="news_admin_create", guards=EDIT)
async def admin_create(request: Request[Any, Any, Any]) -> Any:
    site = current_site(request)
    draft = _draft_from(await request.form(), site.languages)
    try:
        async with writing(request) as session:
            article = await service.create(session, site.id, draft, site.languages, current_user(request))
    except Invalid as error:
        return _form_page(request, article=None, values=_values_from_draft(draft), error=error)
    return Redirect(f"/admin/news/{article.id}?saved=1", status_code=303)


@get("/{article_id:uuid}", name="news_admin_edit", guards=EDIT)
async def admin_edit(request: Request[Any, Any, Any], article_id: FromPath[UUID]) -> Any:
    site = current_site(request)
    language = request.scope["state"]["language"]
    async with reading(request) as session:
        article = await service.get(session, article_id)
        settings = await module_settings(session, "news", site)
        neighbourhoods = await _neighbourhoods(session, language)
    return page(
        request,
        "news/admin/edit.html",
        article=article,
        values=_values(article),
        errors={},
        commune_languages=site.languages,
        saved=request.query_params.get("saved") == "1",
        announce_default=settings.announce_by_default,
        neighbourhoods=neighbourhoods,
    )


@post("/{article_id:uuid}", name="news_admin_save", guards=EDIT)
async def admin_save(request: Request[Any, Any, Any], article_id: FromPath[UUID]) -> Any:
    site = current_site(request)
    draft = _draft_from(await request.form(), site.languages)
    try:
        async with writing(request) as session:
            article = await service.get(session, article_id)
            await service.update_article(session, article, draft, site.languages)
    except Invalid as error:
        async with reading(request) as session:
            article = await service.get(session, article_id)
        return _form_page(request, article=article, values=_values_from_draft(draft), error=error)
    return Redirect(f"/admin/news/{article_id}?saved=1", status_code=303)


@post("/{article_id:uuid}/publish", name="news_admin_publish", guards=EDIT)
async def admin_publish(request: Request[Any, Any, Any], article_id: FromPath[UUID]) -> Any:
    form = await request.form()
    chosen: list[UUID] = []
    for raw in form.getall("neighbourhood", []):
        try:
            chosen.append(UUID(str(raw)))
        except ValueError:
            raise Invalid("neighbourhood", "unknown neighbourhood") from None
    async with writing(request) as session:
        article = await service.get(session, article_id)
        known = {neighbourhood.id for neighbourhood in await territory.neighbourhoods(session)}
        if any(identifier not in known for identifier in chosen):
            raise Invalid("neighbourhood", "unknown neighbourhood")
        await service.publish(session, article, announce=form.get("announce") == "on", neighbourhoods=chosen)
    return Redirect(f"/admin/news/{article_id}?saved=1", status_code=303)


@post("/{article_id:uuid}/withdraw", name="news_admin_withdraw", guards=EDIT)
async def admin_withdraw(request: Request[Any, Any, Any], article_id: FromPath[UUID]) -> Any:
    async with writing(request) as session:
        await service.withdraw(session, await service.get(session, article_id))
    return Redirect(f"/admin/news/{article_id}?saved=1", status_code=303)


@post("/{article_id:uuid}/delete", name="news_admin_delete", guards=EDIT)
async def admin_delete(request: Request[Any, Any, Any], article_id: FromPath[UUID]) -> Any:
    async with writing(request) as session:
        await service.delete(session, await service.get(session, article_id))
    return Redirect("/admin/news", status_code=303)


ROUTES = [
    admin_list,
    admin_new,
    admin_create,
    admin_edit,
    admin_save,
    admin_publish,
    admin_withdraw,
    admin_delete,
]
