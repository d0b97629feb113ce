"""Jobs: queued with the change that causes them, run in the commune's scope, after commit."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from perron.audit import AuditEntry
from perron.db.engine import Database
from perron.db.scope import CrossTenantAccess, NoTenantScope, platform_scope, tenant_scope
from perron.jobs import JobContext, JobState, OutboxMessage, enqueue, job, list_statuses, status
from tests.conftest import MakeCommune

RUNS: list[dict[str, Any]] = []
_lock = threading.Lock()


@job("tests.record_visit")
async def record_visit(ctx: JobContext, *, label: str) -> None:
    """Writes an audit entry in the job's commune, and reports what it saw."""
    ctx.session.add(
        AuditEntry(actor_kind="system", actor_label="job", action=f"job.{label}", object_type="job")
    )
    visible = list(await ctx.session.scalars(select(AuditEntry.tenant_id)))
    with _lock:
        RUNS.append(
            {"tenant": ctx.tenant_id, "label": label, "visible": set(visible), "attempt": ctx.attempt}
        )


@job("tests.rename_entry")
async def rename_entry(ctx: JobContext, *, entry_id: str, action: str) -> None:
    entry = await ctx.session.scalar(select(AuditEntry).where(AuditEntry.id == UUID(entry_id)))
    with _lock:
        RUNS.append({"tenant": ctx.tenant_id, "found": entry is not None})
    if entry is not None:
        entry.action = action


@job("tests.platform_sweep", per_tenant=False)
async def platform_sweep(ctx: JobContext) -> None:
    owners = set(await ctx.session.scalars(select(AuditEntry.tenant_id)))
    with _lock:
        RUNS.append({"tenant": ctx.tenant_id, "owners": owners})


@pytest.fixture
def jobs(runtime) -> Any:
    RUNS.clear()
    runtime.jobs.declare_actors()
    return runtime.jobs


async def drain(jobs: Any) -> None:
    """Hand the outbox to the broker and wait for the in-process worker to finish."""
    while await jobs.relay_once():
        pass
    await asyncio.to_thread(jobs.join)


async def test_a_committed_job_runs_in_its_communes_scope(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha, bravo = await make_commune("alpha"), await make_commune("bravo")
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            enqueue(session, record_visit, label="hello")
    await drain(jobs)
    assert len(RUNS) == 1
    assert RUNS[0]["tenant"] == alpha.id
    assert RUNS[0]["visible"] == {alpha.id}  # bravo's audit entries exist but are not visible
    with tenant_scope(alpha.id):
        async with database.session() as session:
            assert "job.hello" in set(await session.scalars(select(AuditEntry.action)))
    with tenant_scope(bravo.id):
        async with database.session() as session:
            assert "job.hello" not in set(await session.scalars(select(AuditEntry.action)))


async def test_a_rolled_back_change_queues_nothing(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    with tenant_scope(alpha.id), pytest.raises(RuntimeError):
        async with database.transaction() as session:
            enqueue(session, record_visit, label="never")
            raise RuntimeError("the change failed")
    await drain(jobs)
    assert RUNS == []
    with platform_scope("test: look at the outbox"):
        async with database.session() as session:
            assert list(await session.scalars(select(OutboxMessage))) == []
            assert await list_statuses(session) == []  # nor a status record


async def test_a_job_for_one_commune_cannot_touch_another(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha, bravo = await make_commune("alpha"), await make_commune("bravo")
    with tenant_scope(bravo.id):
        async with database.session() as session:
            bravo_entry = await session.scalar(select(AuditEntry).limit(1))
    assert bravo_entry is not None
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            enqueue(session, rename_entry, entry_id=str(bravo_entry.id), action="stolen")
    await drain(jobs)
    assert [{"tenant": alpha.id, "found": False}] == RUNS
    with tenant_scope(bravo.id):
        async with database.session() as session:
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.id == bravo_entry.id))
    assert entry.action == bravo_entry.action


async def test_queueing_for_another_commune_is_refused(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha, bravo = await make_commune("alpha"), await make_commune("bravo")
    with tenant_scope(alpha.id), pytest.raises(CrossTenantAccess):
        async with database.transaction() as session:
            enqueue(session, record_visit, tenant_id=bravo.id, label="x")
    with pytest.raises(NoTenantScope):
        async with database.transaction() as session:
            enqueue(session, record_visit, label="x")
    with platform_scope("test"), pytest.raises(NoTenantScope, match="give tenant_id"):
        async with database.transaction() as session:
            enqueue(session, record_visit, label="x")


async def test_bad_job_arguments_and_unknown_jobs_are_refused(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            with pytest.raises(TypeError, match="JSON values"):
                enqueue(session, record_visit, label=object())
            with pytest.raises(LookupError, match="not a declared job"):
                enqueue(session, "tests.nothing")


async def test_the_platform_queues_jobs_for_any_commune_and_platform_jobs(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha, bravo = await make_commune("alpha"), await make_commune("bravo")
    with platform_scope("test: operator queues work"):
        async with database.transaction() as session:
            visit = enqueue(session, record_visit, tenant_id=bravo.id, label="from-platform")
            sweep = enqueue(session, platform_sweep)
    assert (visit.tenant_id, sweep.tenant_id) == (bravo.id, None)
    await drain(jobs)
    by_kind = {("visit" if "label" in run else "sweep"): run for run in RUNS}
    assert by_kind["visit"]["tenant"] == bravo.id
    assert by_kind["sweep"]["tenant"] is None
    assert by_kind["sweep"]["owners"] >= {alpha.id, bravo.id}
    with platform_scope("test: the operator follows both jobs"):
        async with database.session() as session:
            assert (await status(session, visit.id)).status is JobState.DONE
            assert (await status(session, sweep.id)).status is JobState.DONE
    with tenant_scope(bravo.id):
        async with database.session() as session:
            assert (await status(session, visit.id)).commune_id == bravo.id
            assert await status(session, sweep.id) is None  # platform jobs are the operator's


async def test_commit_wakes_the_relay_without_waiting_for_the_sweep(
    jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            enqueue(session, record_visit, label="prompt")
    for _ in range(100):  # the periodic sweep is 2 s; the wake-up after commit is immediate
        if RUNS:
            break
        await asyncio.sleep(0.01)
    assert [run["label"] for run in RUNS] == ["prompt"]
