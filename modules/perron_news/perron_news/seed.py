"""Demo news for a new commune, in the languages it offers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from perron.sdk import HookContext, utcnow
from perron_news.models import Article, Status

DEMO = [
    {
        "title": {
            "fr": "Nouveau : vos démarches en ligne",
            "nl": "Nieuw: uw aanvragen online",
            "de": "Neu: Ihre Behördengänge online",
            "en": "New: your council services online",
        },
        "summary": {
            "fr": "La commune ouvre son nouveau site. Le guichet de l'administration reste ouvert.",
            "nl": "De gemeente opent haar nieuwe website. Het loket van het gemeentehuis blijft gewoon open.",
            "de": "Die Gemeinde eröffnet ihre neue Website. Der Schalter im Rathaus bleibt geöffnet.",
            "en": "The commune opens its new site. The town hall's desk stays open as before.",
        },
        "body": {
            "fr": "Vous pouvez désormais suivre l'actualité de la commune en ligne.\n\n"
            "Vous préférez le papier ? Rien ne change : l'accueil de l'administration vous aide.",
            "nl": "U kunt het nieuws van de gemeente voortaan online volgen.\n\n"
            "Liever op papier? Er verandert niets: het onthaal van het gemeentehuis helpt u.",
            "de": "Sie können die Neuigkeiten der Gemeinde ab sofort online verfolgen.\n\n"
            "Lieber auf Papier? Nichts ändert sich: der Empfang im Rathaus hilft Ihnen.",
            "en": "You can now follow the commune's news online.\n\n"
            "Prefer paper? Nothing changes: the town hall's reception will help you.",
        },
        "pinned": True,
        "days_ago": 1,
    },
    {
        "title": {
            "fr": "Travaux rue de la Station du 2 au 13 décembre",
            "nl": "Werken in de Stationsstraat van 2 tot 13 december",
            "de": "Bauarbeiten in der Bahnhofstraße vom 2. bis 13. Dezember",
            "en": "Road works on Station Street from 2 to 13 December",
        },
        "summary": {
            "fr": "Circulation alternée ; les commerces restent accessibles à pied et à vélo.",
            "nl": "Beurtelings verkeer; de winkels blijven te voet en met de fiets bereikbaar.",
            "de": "Wechselverkehr; die Geschäfte bleiben zu Fuß und mit dem Rad erreichbar.",
            "en": "Alternating traffic; shops stay reachable on foot and by bike.",
        },
        "body": {},
        "pinned": False,
        "days_ago": 3,
    },
    {
        "title": {
            "fr": "Collecte de sang à la salle communale",
            "nl": "Bloedinzameling in de gemeentezaal",
            "de": "Blutspende im Gemeindesaal",
            "en": "Blood drive at the community hall",
        },
        "summary": {
            "fr": "Le samedi de 9 h à 13 h. Sans rendez-vous.",
            "nl": "Zaterdag van 9 tot 13 uur. Zonder afspraak.",
            "de": "Samstag von 9 bis 13 Uhr. Ohne Termin.",
            "en": "Saturday from 9 am to 1 pm. No appointment needed.",
        },
        "body": {},
        "pinned": False,
        "days_ago": 6,
    },
]


async def seed(ctx: HookContext) -> None:
    """Three published news items, unless the commune already has news."""
    existing = await ctx.session.scalar(select(func.count()).select_from(Article))
    if existing:
        return
    now = utcnow()
    for item in DEMO:
        texts = {
            field: {code: text for code, text in item[field].items() if code in ctx.languages}
            for field in ("title", "summary", "body")
        }
        if not texts["title"]:
            continue
        ctx.session.add(
            Article(
                tenant_id=ctx.tenant_id,
                status=Status.PUBLISHED,
                pinned=bool(item["pinned"]),
                published_at=now - dt.timedelta(days=int(item["days_ago"])),
                **texts,
            )
        )
