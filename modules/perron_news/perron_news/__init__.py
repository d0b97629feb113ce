"""Perron's news module: the commune publishes, citizens read.

Everything the platform needs to know is in :data:`manifest`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perron.sdk import (
    Action,
    Assurance,
    ModuleManifest,
    NavEntry,
    Receiver,
    Widget,
    WidgetContext,
    lazy,
    signals,
)
from perron_news import admin, service, views
from perron_news.seed import seed
from perron_news.settings import NewsSettings

__version__ = "1.0.0"
HERE = Path(__file__).parent


async def latest_news(ctx: WidgetContext) -> dict[str, Any]:
    if not ctx.settings.show_on_home:
        return {}
    articles = await service.latest(ctx.session, ctx.settings.items_on_home)
    return {"articles": articles} if articles else {}


manifest = ModuleManifest(
    name="news",
    version=__version__,
    platform=">=0.1,<0.2",
    titles={"fr": "Actualités", "nl": "Nieuws", "de": "Neuigkeiten", "en": "News"},
    descriptions={
        "fr": "Les nouvelles de la commune : travaux, événements, services.",
        "nl": "Het nieuws van de gemeente: werken, evenementen, diensten.",
        "de": "Die Neuigkeiten der Gemeinde: Bauarbeiten, Veranstaltungen, Dienste.",
        "en": "The commune's news: road works, events, services.",
    },
    settings=NewsSettings,
    actions=[
        Action("read", Assurance.NONE, description="Read published news"),
        Action("publish", role="news.editor", description="Write, publish and withdraw news"),
    ],
    routes=views.ROUTES,
    admin_routes=admin.ROUTES,
    nav=[NavEntry(lazy("News"))],
    admin_nav=[NavEntry(lazy("News"))],
    templates=HERE / "templates",
    locale=HERE / "locale",
    locale_domain="perron_news",
    migrations=HERE / "migrations",
    jobs=[service.announce_article],
    receivers=[Receiver(signals.account_deleted, service.forget_author)],
    widgets=[Widget("latest", "news/widget.html", latest_news, title=lazy("Latest news"))],
    seed=seed,
)
