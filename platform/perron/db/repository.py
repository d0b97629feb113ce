"""Lock 3 of 3: services check that what they hold belongs to the commune in scope.

:func:`ensure_owned` is the ``access_*`` check of Zulip's style: services call it on every
tenant-owned object they act on, and :class:`TenantRepository` (the repository modules build
on) calls it on everything it returns. It holds even if the ORM filter and row-level
security were both gone. A failure raises :class:`~perron.db.scope.CrossTenantAccess`,
which the web layer answers as "not found" (a commune never learns another's ids exist)
and logs as a security event.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from perron.db.base import TenantOwned
from perron.db.guard import LOCKS
from perron.db.scope import CrossTenantAccess, NoTenantScope, current_scope

T = TypeVar("T")
M = TypeVar("M", bound=TenantOwned)


def ensure_owned(obj: T) -> T:
    """Return ``obj`` if the commune in scope owns it; raise otherwise."""
    if not LOCKS.service or not isinstance(obj, TenantOwned):
        return obj
    scope = current_scope()
    if scope is None:
        raise NoTenantScope(f"a {type(obj).__name__} was used with no commune in scope")
    if not scope.is_platform and obj.tenant_id != scope.tenant_id:
        raise CrossTenantAccess(f"a {type(obj).__name__} of another commune reached a service")
    return obj


def ensure_tenant(tenant_id: UUID) -> UUID:
    """Lock 3 for platform tables about one commune (the commune row, its domains): in a
    commune's scope, only that commune may be acted on."""
    if not LOCKS.service:
        return tenant_id
    scope = current_scope()
    if scope is None:
        raise NoTenantScope("acting on a commune needs a scope")
    if not scope.is_platform and scope.tenant_id != tenant_id:
        raise CrossTenantAccess("another commune cannot be acted on from this commune's scope")
    return tenant_id


def ensure_all_owned(objects: Iterable[T]) -> list[T]:
    return [ensure_owned(obj) for obj in objects]


class TenantRepository(SQLAlchemyAsyncRepository[M]):  # type: ignore[type-var]
    """advanced-alchemy's repository for tenant-owned models, addressed by ``id`` alone.

    The primary key is ``(tenant_id, id)``; callers pass only ``id`` and the commune comes
    from the scope. Every object returned passes :func:`ensure_owned`.
    """

    id_attribute = "id"

    async def get(self, item_id: Any, **kwargs: Any) -> M:
        kwargs.setdefault("id_attribute", self.id_attribute)
        return ensure_owned(await super().get(item_id, **kwargs))

    async def get_one(self, *filters: Any, **kwargs: Any) -> M:
        return ensure_owned(await super().get_one(*filters, **kwargs))

    async def get_one_or_none(self, *filters: Any, **kwargs: Any) -> M | None:
        found = await super().get_one_or_none(*filters, **kwargs)
        return None if found is None else ensure_owned(found)

    async def get_many(self, *filters: Any, **kwargs: Any) -> builtins.list[M]:
        return ensure_all_owned(await super().get_many(*filters, **kwargs))

    async def get_many_and_count(self, *filters: Any, **kwargs: Any) -> tuple[builtins.list[M], int]:
        items, count = await super().get_many_and_count(*filters, **kwargs)
        return ensure_all_owned(items), count

    async def add(self, data: M, **kwargs: Any) -> M:
        return ensure_owned(await super().add(data, **kwargs))

    async def add_many(self, data: builtins.list[M], **kwargs: Any) -> Sequence[M]:
        return ensure_all_owned(await super().add_many(data, **kwargs))

    async def update(self, data: M, **kwargs: Any) -> M:
        if data.tenant_id is not None:
            ensure_owned(data)
        kwargs.setdefault("id_attribute", self.id_attribute)
        return ensure_owned(await super().update(data, **kwargs))

    async def delete(self, item_id: Any, **kwargs: Any) -> M:
        # advanced-alchemy's delete loads the row through self.get, which checks ownership
        # before anything is deleted.
        kwargs.setdefault("id_attribute", self.id_attribute)
        return await super().delete(item_id, **kwargs)
