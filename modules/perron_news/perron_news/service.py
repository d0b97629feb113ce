"""Writing and reading news. Every change is audited; publishing refreshes the commune's
cached public pages (the home page shows the latest news)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from perron.sdk import (
    Audience,
    CurrentUser,
    Invalid,
    JobContext,
    NotFound,
    SignalContext,
    audit,
    enqueue,
    gettext,
    job,
    notify,
    refresh_public_pages,
    utcnow,
)
from perron.sdk import signals as platform_signals
from perron_news.models import Article, Status

LIMITS = {"title": 200, "summary": 500, "body": 20_000}


@dataclass(frozen=True)
class Draft:
    """What staff submit: texts per language."""

    title: Mapping[str, str]
    summary: Mapping[str, str]
    body: Mapping[str, str]
    pinned: bool = False


def _clean(field: str, values: Mapping[str, str], languages: Sequence[str]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for language, raw in values.items():
        if language not in languages:
            raise Invalid(f"{field}.{language}", gettext("This commune does not publish in that language."))
        text = (raw or "").replace("\r\n", "\n").strip()
        if field == "title":
            text = " ".join(text.split())
        if len(text) > LIMITS[field]:
            raise Invalid(
                f"{field}.{language}",
                gettext("At most %(limit)s characters (this one has %(length)s).")
                % {"limit": LIMITS[field], "length": len(text)},
            )
        if text:
            cleaned[language] = text
    return cleaned


def validate(draft: Draft, languages: Sequence[str]) -> dict[str, Any]:
    """Check a draft against the commune's languages; the first error names its field."""
    title = _clean("title", draft.title, languages)
    summary = _clean("summary", draft.summary, languages)
    body = _clean("body", draft.body, languages)
    default = languages[0]
    if default not in title:
        raise Invalid(f"title.{default}", gettext("A title in the commune's main language is required."))
    for language in set(summary) | set(body):
        if language not in title:
            raise Invalid(f"title.{language}", gettext("Give a title in every language you write in."))
    return {"title": title, "summary": summary, "body": body, "pinned": bool(draft.pinned)}


async def get(session: AsyncSession, article_id: UUID) -> Article:
    article = await session.scalar(select(Article).where(Article.id == article_id))
    if article is None:
        raise NotFound(gettext("This news item does not exist."))
    return article


async def create(
    session: AsyncSession, tenant_id: UUID, draft: Draft, languages: Sequence[str], author: CurrentUser | None
) -> Article:
    values = validate(draft, languages)
    article = Article(
        tenant_id=tenant_id,
        author_id=author.account_id if author else None,
        author_name=author.display_name if author else None,
        **values,
    )
    session.add(article)
    await session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        action="news.create",
        object_type="news",
        object_id=article.id,
        changes={"title": values["title"]},
    )
    return article


async def update_article(
    session: AsyncSession, article: Article, draft: Draft, languages: Sequence[str]
) -> bool:
    values = validate(draft, languages)
    before = {key: getattr(article, key) for key in values}
    if before == values:
        return False
    for key, value in values.items():
        setattr(article, key, value)
    audit(
        session,
        tenant_id=article.tenant_id,
        action="news.update",
        object_type="news",
        object_id=article.id,
        changes={key: [before[key], values[key]] for key in values if before[key] != values[key]},
    )
    if article.status is Status.PUBLISHED:
        refresh_public_pages(session)
    return True


async def publish(
    session: AsyncSession,
    article: Article,
    *,
    announce: bool,
    neighbourhoods: Sequence[UUID] = (),
) -> bool:
    """Make an article public. ``announce`` tells the residents, once per article: those of
    the chosen ``neighbourhoods``, or the whole commune when none is chosen."""
    if article.status is Status.PUBLISHED:
        return False
    article.status = Status.PUBLISHED
    article.published_at = article.published_at or utcnow()
    audit(
        session,
        tenant_id=article.tenant_id,
        action="news.publish",
        object_type="news",
        object_id=article.id,
        changes={"announce": announce, "neighbourhoods": [str(n) for n in neighbourhoods]},
    )
    refresh_public_pages(session)
    if announce and article.announced_at is None:
        enqueue(
            session,
            announce_article,
            article_id=str(article.id),
            neighbourhoods=[str(identifier) for identifier in neighbourhoods],
        )
    return True


async def withdraw(session: AsyncSession, article: Article) -> bool:
    if article.status is not Status.PUBLISHED:
        return False
    article.status = Status.WITHDRAWN
    audit(
        session, tenant_id=article.tenant_id, action="news.withdraw", object_type="news", object_id=article.id
    )
    refresh_public_pages(session)
    return True


async def delete(session: AsyncSession, article: Article) -> None:
    if article.status is Status.PUBLISHED:
        raise Invalid("status", gettext("Withdraw a published news item before deleting it."))
    audit(
        session,
        tenant_id=article.tenant_id,
        action="news.delete",
        object_type="news",
        object_id=article.id,
        changes={"title": article.title},
    )
    await session.delete(article)


@dataclass(frozen=True)
class Page:
    articles: list[Article]
    next_cursor: str | None


def _cursor(article: Article) -> str:
    assert article.published_at is not None
    return f"{article.published_at.isoformat()}_{article.id}"


def _parse_cursor(cursor: str) -> tuple[dt.datetime, UUID]:
    try:
        moment, _, identifier = cursor.partition("_")
        return dt.datetime.fromisoformat(moment), UUID(identifier)
    except ValueError:
        raise Invalid("before", gettext("This page of news does not exist.")) from None


async def published(session: AsyncSession, *, limit: int, before: str | None = None) -> Page:
    """Published news, newest first (keyset pagination: the cursor is the last one seen)."""
    query = select(Article).where(Article.status == Status.PUBLISHED)
    if before:
        moment, identifier = _parse_cursor(before)
        query = query.where(
            or_(
                Article.published_at < moment,
                and_(Article.published_at == moment, Article.id < identifier),
            )
        )
    rows = list(
        await session.scalars(query.order_by(Article.published_at.desc(), Article.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _cursor(rows[-1]) if more and rows else None)


async def latest(session: AsyncSession, limit: int) -> list[Article]:
    """Pinned news first, then the newest: what the home page shows."""
    return list(
        await session.scalars(
            select(Article)
            .where(Article.status == Status.PUBLISHED)
            .order_by(Article.pinned.desc(), Article.published_at.desc(), Article.id.desc())
            .limit(limit)
        )
    )


async def all_for_staff(session: AsyncSession) -> list[Article]:
    return list(
        await session.scalars(
            select(Article).order_by(
                func.coalesce(Article.published_at, Article.created_at).desc(), Article.id.desc()
            )
        )
    )


@job("news.announce_article", module="news", max_retries=5)
async def announce_article(ctx: JobContext, article_id: str, neighbourhoods: list[str]) -> None:
    """Tell the residents about a published article, each in their language and by the
    channel they chose. Runs once per article; a second run finds it already announced."""
    article = await ctx.session.scalar(select(Article).where(Article.id == UUID(article_id)))
    if article is None or article.status is not Status.PUBLISHED or article.announced_at is not None:
        return
    article.announced_at = utcnow()  # commits with the notification, or neither does
    await notify(
        ctx.session,
        module="news",
        kind="announcement",
        audience=Audience.neighbourhoods([UUID(n) for n in neighbourhoods])
        if neighbourhoods
        else Audience.commune(),
        title=article.title,
        body=article.summary or article.title,
        link=f"/news/{article.id}",
    )


async def forget_author(ctx: SignalContext, payload: platform_signals.AccountEvent) -> None:
    """A deleted account no longer appears as the author of news (the news stay)."""
    await ctx.session.execute(
        update(Article)
        .where(Article.author_id == payload.account_id)
        .values(author_id=None, author_name=None)
    )
