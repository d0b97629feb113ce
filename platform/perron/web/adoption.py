"""``/admin/adoption``: how many citizens use the commune's site and its services (the
commune's administrators). The console shows the same dashboard for the operator and the
intercommunales, through :func:`perron.adoption.adoption_view` and the macros of
``perron/adoption/charts.html``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from perron.adoption import adoption_report, adoption_view
from perron.db.engine import Database
from perron.i18n import format_number, gettext
from perron.modules.registry import registry
from perron.tenancy.site import TenantSite
from perron.web.auth import staff_guard

SiteRequest = Request[Any, Any, Any]

PERIODS = (12, 26, 52)
DEFAULT_PERIOD = 26


def _period_choices() -> list[tuple[str, str]]:
    return [
        (str(weeks), gettext("Last %(weeks)s weeks") % {"weeks": format_number(weeks)}) for weeks in PERIODS
    ]


def _chosen_period(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return DEFAULT_PERIOD
    try:
        weeks = int(raw)
    except ValueError:
        return None
    return weeks if weeks in PERIODS else None


@get("/admin/adoption", name="admin_adoption", guards=[staff_guard("admin")])
async def admin_adoption(request: SiteRequest) -> Response[bytes]:
    from perron.modules.context import page

    site: TenantSite = request.scope["state"]["site"]
    language: str = request.scope["state"]["language"]
    raw = request.query_params.get("weeks")
    weeks = _chosen_period(raw)
    periods = _period_choices()
    if weeks is None:
        error = gettext("Choose one of the periods offered: %(periods)s.") % {
            "periods": ", ".join(label for _, label in periods)
        }
        return page(
            request,
            "perron/admin/adoption.html",
            status_code=400,
            view=None,
            periods=periods,
            query={"weeks": str(DEFAULT_PERIOD)},
            errors={"weeks": error},
        )
    manifests = [manifest for manifest in registry.ordered(site.enabled_modules) if manifest.routes]
    database: Database = request.app.state.runtime.database
    async with database.session() as session:
        report = await adoption_report(
            session, site.id, weeks=weeks, modules=[manifest.name for manifest in manifests]
        )
    view = adoption_view(
        report,
        language=language,
        module_titles={manifest.name: manifest.title(language) for manifest in manifests},
        colour=site.branding.palette["accent_color"],
    )
    return page(
        request,
        "perron/admin/adoption.html",
        view=view,
        periods=periods,
        query={"weeks": str(weeks)},
        errors={},
    )


ROUTES = [admin_adoption]
