"""Attacks over HTTP: another commune's ids, forged hosts, forged tenant_id in payloads."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import pytest
from sqlalchemy import func, select

from perron.audit import AuditEntry
from perron.db.engine import Database
from perron.db.scope import tenant_scope
from tests.conftest import ClientFactory
from tests.isolation.conftest import Seeded, locks_available, only_lock


def locks(name: str) -> AbstractContextManager[None]:
    """One lock alone, or ``all`` of them (the production configuration)."""
    return nullcontext() if name == "all" else only_lock(name)


async def entries_of(database: Database, tenant_id) -> list[str]:
    with tenant_scope(tenant_id):
        async with database.session() as session:
            return sorted(await session.scalars(select(AuditEntry.action)))


async def test_the_own_rows_are_served(seeded: Seeded, client_for: ClientFactory) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    response = await client_for("bravo.test").get(f"/_probe/entries/{bravo_id}")
    assert response.status_code == 200
    assert response.json()["tenant_id"] == str(seeded.bravo)


@pytest.mark.parametrize("lock", [*locks_available(), "all"])
async def test_another_communes_id_is_not_found(seeded: Seeded, client_for: ClientFactory, lock: str) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    with locks(lock):
        response = await client_for("alpha.test").get(f"/_probe/entries/{bravo_id}")
    assert response.status_code == 404
    assert str(seeded.bravo) not in response.text


@pytest.mark.parametrize("lock", [*locks_available(), "all"])
async def test_renaming_another_communes_row_changes_nothing(
    seeded: Seeded, client_for: ClientFactory, database: Database, lock: str
) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    before = await entries_of(database, seeded.bravo)
    with locks(lock):
        response = await client_for("alpha.test").post(
            f"/_probe/entries/{bravo_id}/rename", json={"action": "stolen"}
        )
    assert response.status_code == 404
    assert await entries_of(database, seeded.bravo) == before


@pytest.mark.parametrize("lock", [*locks_available(), "all"])
async def test_a_forged_tenant_id_in_the_payload_writes_nothing(
    seeded: Seeded, client_for: ClientFactory, database: Database, lock: str
) -> None:
    before = await entries_of(database, seeded.bravo)
    with locks(lock):
        response = await client_for("alpha.test").post(
            "/_probe/entries", json={"action": "planted", "tenant_id": str(seeded.bravo)}
        )
    assert response.status_code == 404
    assert "planted" not in await entries_of(database, seeded.bravo)
    assert await entries_of(database, seeded.bravo) == before
    fair = await client_for("alpha.test").post("/_probe/entries", json={"action": "planted"})
    assert fair.status_code == 201 and fair.json()["tenant_id"] == str(seeded.alpha)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-host": "bravo.test"},
        {"forwarded": "host=bravo.test"},
        {"x-original-host": "bravo.test"},
        {"x-tenant": "bravo"},
    ],
)
async def test_headers_cannot_move_a_request_to_another_commune(
    seeded: Seeded, client_for: ClientFactory, headers: dict[str, str]
) -> None:
    bravo_id = seeded.key(AuditEntry, seeded.bravo)["id"]
    response = await client_for("alpha.test").get(f"/_probe/entries/{bravo_id}", headers=headers)
    assert response.status_code == 404
    home = await client_for("alpha.test").get("/", headers=headers)
    assert "<h1>Alpha</h1>" in home.text


async def test_a_forged_host_only_ever_reaches_that_hosts_commune(
    seeded: Seeded, client_for: ClientFactory, database: Database
) -> None:
    """Host is the only thing that picks the commune, and a commune's host serves only it."""
    alpha_id = seeded.key(AuditEntry, seeded.alpha)["id"]
    for host in ("bravo.test", "BRAVO.test.", "bravo.test:443"):
        response = await client_for("placeholder").get(f"/_probe/entries/{alpha_id}", headers={"host": host})
        assert response.status_code == 404, host
    with tenant_scope(seeded.bravo):
        async with database.session() as session:
            assert await session.scalar(select(func.count()).select_from(AuditEntry)) >= 1
