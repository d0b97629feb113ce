"""What citizens see: the list of news and each news item (public pages)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.params import FromPath

from perron.sdk import PUBLIC_PAGE, NotFound, current_site, gettext, module_settings, page, reading
from perron_news import service
from perron_news.models import Status


@get("/", name="news_list", opt=PUBLIC_PAGE)
async def news_list(request: Request[Any, Any, Any]) -> Any:
    site = current_site(request)
    before = request.query_params.get("before")
    async with reading(request) as session:
        settings = await module_settings(session, "news", site)
        result = await service.published(session, limit=settings.page_size, before=before)
    return page(
        request,
        "news/list.html",
        articles=result.articles,
        next_cursor=result.next_cursor,
        first_page=before is None,
        fallbacks=site.languages,
    )


@get("/{article_id:uuid}", name="news_article", opt=PUBLIC_PAGE)
async def news_article(request: Request[Any, Any, Any], article_id: FromPath[UUID]) -> Any:
    site = current_site(request)
    async with reading(request) as session:
        article = await service.get(session, article_id)
    if article.status is not Status.PUBLISHED:
        raise NotFound(gettext("This news item does not exist."))
    return page(request, "news/article.html", article=article, fallbacks=site.languages)


ROUTES = [news_list, news_article]
