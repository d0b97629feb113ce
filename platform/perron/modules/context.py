"""Helpers a module's route handlers use: the commune, the person, the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import MediaType, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from perron.cache import invalidate
from perron.db.scope import current_scope
from perron.modules.registry import registry
from perron.tenancy.settings import resolve
from perron.tenancy.site import TenantSite


def page(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
) -> Response[bytes]:
    """Render a page of the commune's site: the template gets the commune, the language, the
    person (``user``), the navigation and a CSRF field (``csrf_input``) besides ``context``."""
    from perron.web.pages import PAGE_HEADERS, render_text
    from perron.web.site import page_context

    body = render_text(request, template, page_context(request, context))
    return Response(body.encode(), status_code=status_code, media_type=MediaType.HTML, headers=PAGE_HEADERS)


def current_site(request: Request[Any, Any, Any]) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def current_language(request: Request[Any, Any, Any]) -> str:
    language: str = request.scope["state"]["language"]
    return language


@asynccontextmanager
async def reading(request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """A session to read the commune's data (no writes)."""
    async with request.app.state.runtime.database.session() as session:
        yield session


@asynccontextmanager
async def writing(request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    async with request.app.state.runtime.database.transaction() as session:
        yield session


async def module_settings(session: AsyncSession, module: str, site: TenantSite | None = None) -> Any:
    """A module's effective settings for the commune in scope."""
    scope = current_scope()
    tenant_id = site.id if site is not None else (scope.tenant_id if scope else None)
    if tenant_id is None:
        raise LookupError("module settings are read in a commune's scope")
    return await resolve(
        session,
        tenant_id,
        f"module:{module}",
        registry.settings_schema(module),
        **({"intercommunale_id": site.intercommunale_id} if site is not None else {}),
    )


def refresh_public_pages(session: AsyncSession) -> None:
    """After this transaction commits, pages cached for anonymous visitors of the commune in
    scope (its home page with the modules' widgets, public pages) are rendered afresh."""
    scope = current_scope()
    if scope is None or scope.tenant_id is None:
        raise LookupError("refreshing pages needs a commune's scope")
    invalidate(session, scope.tenant_id)
