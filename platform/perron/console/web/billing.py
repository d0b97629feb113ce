"""What a paying body (a commune, or an intercommunale paying for its members) pays: its
plans and subscriptions, the state of each commune's modules, its invoices; subscribing
through Stripe Checkout, and managing payment through Stripe's customer portal."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from perron.console import access
from perron.console.web.common import (
    ConsoleRequest,
    console_page,
    errors_of,
    form_of,
    language_of,
    logged_in_guard,
    require_console_user,
    runtime_of,
)
from perron.errors import PerronError
from perron.modules.registry import registry
from perron.tenancy.models import Commune, Intercommunale

KINDS = ("commune", "intercommunale")


async def _body(request: ConsoleRequest, kind: str, slug: str) -> Commune | Intercommunale:
    if kind not in KINDS:
        raise NotFoundException()
    user = require_console_user(request)
    async with runtime_of(request).database.session() as session:
        if kind == "commune":
            return await access.commune_for(session, user, slug)
        return await access.intercommunale_for(session, user, slug)


def _base(request: ConsoleRequest, kind: str, slug: str) -> str:
    return str(request.base_url).rstrip("/") + f"/billing/{kind}/{slug}"


async def _page(
    request: ConsoleRequest,
    kind: str,
    slug: str,
    *,
    errors: dict[str, str] | None = None,
    status: int = 400,
) -> Response[bytes]:
    body = await _body(request, kind, slug)
    billing = runtime_of(request).billing
    language = language_of(request)
    overview = await billing.billing_overview(body, language=language)
    context: dict[str, Any] = {
        "kind": kind,
        "slug": slug,
        "name": body.name(language),
        "overview": overview,
        "plans": await billing.plans(language=language),
        "invoices": await billing.invoices_of(body),
        "titles": {manifest.name: manifest.title(language) for manifest in registry.ordered()},
        "errors": errors or {},
        "checkout": request.query_params.get("checkout"),
    }
    return console_page(
        request, "perron/console/billing.html", status_code=status if errors else 200, **context
    )


@get("/billing/{kind:str}/{slug:str}", name="console_billing", guards=[logged_in_guard])
async def billing_page(request: ConsoleRequest, kind: FromPath[str], slug: FromPath[str]) -> Response[bytes]:
    return await _page(request, kind, slug)


@post("/billing/{kind:str}/{slug:str}/checkout", name="console_billing_checkout", guards=[logged_in_guard])
async def checkout(
    request: ConsoleRequest, kind: FromPath[str], slug: FromPath[str]
) -> Response[bytes] | Redirect:
    """Subscribe to a plan: Stripe Checkout takes the payment details, then comes back."""
    body = await _body(request, kind, slug)
    form = await form_of(request)
    base = _base(request, kind, slug)
    try:
        url = await runtime_of(request).billing.start_checkout(
            body,
            str(form.get("plan", "")),
            success_url=base + "?checkout=done",
            cancel_url=base + "?checkout=cancelled",
            language=language_of(request),
        )
    except PerronError as error:
        if error.status_code == 404 and "billing" in type(error).__name__.lower():
            raise
        return await _page(request, kind, slug, errors=errors_of(error, "plan"), status=error.status_code)
    return Redirect(url, status_code=303)


@post("/billing/{kind:str}/{slug:str}/portal", name="console_billing_portal", guards=[logged_in_guard])
async def portal(
    request: ConsoleRequest, kind: FromPath[str], slug: FromPath[str]
) -> Response[bytes] | Redirect:
    """Stripe's customer portal: payment method, invoices, cancelling."""
    body = await _body(request, kind, slug)
    try:
        url = await runtime_of(request).billing.portal_url(
            body, return_url=_base(request, kind, slug), language=language_of(request)
        )
    except PerronError as error:
        if error.status_code == 404 and "billing" in type(error).__name__.lower():
            raise
        return await _page(request, kind, slug, errors=errors_of(error, "portal"), status=error.status_code)
    return Redirect(url, status_code=303)


ROUTES = [billing_page, checkout, portal]
