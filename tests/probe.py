"""Routes the tests add to a commune's site, written the way a module would write them
(``TenantRepository``, request-scoped commune), so that the web-level tests can post
forms and attack another commune's rows by id through a real handler."""

from pathlib import Path
from typing import Any
from uuid import UUID

from advanced_alchemy.exceptions import NotFoundError
from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response.base import ASGIResponse
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import AuditEntry
from perron.db.repository import TenantRepository
from perron.web.site import page


class AuditRepository(TenantRepository[AuditEntry]):
    model_type = AuditEntry


def _database(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.runtime.database


def _public(entry: AuditEntry) -> dict[str, Any]:
    return {"id": str(entry.id), "tenant_id": str(entry.tenant_id), "action": entry.action}


@get("/_probe/form")
async def form(request: Request[Any, Any, Any]) -> ASGIResponse:
    return page(request, "probe/form.html")


@post("/_probe/echo", status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"received": len(await request.body())}


@get("/_probe/entries/{entry_id:uuid}")
async def read_entry(request: Request[Any, Any, Any], entry_id: FromPath[UUID]) -> dict[str, Any]:
    async with _database(request).session() as session:
        try:
            return _public(await AuditRepository(session=session).get(entry_id))
        except NotFoundError:
            raise NotFoundException() from None


@post("/_probe/entries", status_code=201, exclude_from_csrf=True)
async def create_entry(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Deliberately naive: copies the payload into the model, tenant_id included."""
    async with _database(request).transaction() as session:
        entry = AuditEntry(actor_kind="anonymous", actor_label="probe", object_type="probe", **data)
        if "tenant_id" in data:
            entry.tenant_id = UUID(data["tenant_id"])
        created = await AuditRepository(session=session).add(entry)
        return _public(created)


@post("/_probe/entries/{entry_id:uuid}/rename", status_code=200, exclude_from_csrf=True)
async def rename_entry(
    request: Request[Any, Any, Any], entry_id: FromPath[UUID], data: JSONBody[dict[str, str]]
) -> dict[str, Any]:
    async with _database(request).transaction() as session:
        repository = AuditRepository(session=session)
        try:
            entry = await repository.get(entry_id)
        except NotFoundError:
            raise NotFoundException() from None
        entry.action = data["action"]
        return _public(await repository.update(entry))


PROBE_ROUTES = [form, echo, read_entry, create_entry, rename_entry]
TEMPLATES = Path(__file__).parent / "templates"


async def session_entry(session: AsyncSession, **values: Any) -> AuditEntry:
    entry = AuditEntry(actor_kind="system", actor_label="test", object_type="probe", **values)
    session.add(entry)
    await session.flush()
    return entry
