"""A news article of one commune, in the commune's languages."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from uuid import UUID

from sqlalchemy import Boolean, Enum, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from perron.sdk import Base, TenantModel, utcnow


class Status(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Article(TenantModel, Base):
    __tablename__ = "news_articles"
    __table_args__ = (Index("ix_news_articles_listing", "tenant_id", "status", "published_at"),)

    title: Mapped[dict[str, str]]
    summary: Mapped[dict[str, str]] = mapped_column(default=dict)
    body: Mapped[dict[str, str]] = mapped_column(default=dict)
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Status.DRAFT,
    )
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[UUID | None]
    author_name: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[dt.datetime | None]
    announced_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def text(self, field: str, language: str, fallbacks: tuple[str, ...]) -> str:
        values: dict[str, str] = getattr(self, field) or {}
        for code in (language, *fallbacks):
            if values.get(code):
                return values[code]
        return next(iter(values.values()), "")
