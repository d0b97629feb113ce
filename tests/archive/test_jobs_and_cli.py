"""The console's way (jobs it queues and follows) and the operator's (``perron tenants``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from perron.audit import Actor, ActorKind, PlatformAuditEntry, acting_as
from perron.cli import main
from perron.db.engine import Database
from perron.db.scope import platform_scope
from perron.identity import jobs as identity_jobs
from perron.jobs import JobRun, JobState, list_statuses, status
from perron.tenancy.archive import (
    DELETE_JOB,
    EXPORT_JOB,
    IMPORT_JOB,
    archived_tables,
    delete_commune,
    export_commune,
    export_path,
    get_export,
    import_commune,
    imports_folder,
    queue_delete,
    queue_export,
    queue_import,
)
from perron.testing.harness import run_jobs
from tests.archive.conftest import Filled, assert_same, logo_png, snapshot
from tests.conftest import settings_env

ARCHIVED = [table.name for table in archived_tables()]
OPERATOR = Actor(ActorKind.PERSON, "operator:ann@perron.test")


async def _queue(database: Database, queue: Any, *arguments: Any) -> Any:
    with acting_as(OPERATOR), platform_scope("test: the console queues a job"):
        async with database.transaction() as session:
            return queue(session, *arguments)


async def _finish_seeded_job_runs(database: Database) -> None:
    """The isolation factories seed a job run "running"; run_jobs waits for every job."""
    with platform_scope("test: the seeded job runs are over"):
        async with database.transaction() as session:
            await session.execute(update(JobRun).values(status=JobState.DONE))


async def _finished(database: Database, job_id: Any) -> Any:
    with platform_scope("test: the console follows a job"):
        async with database.session() as session:
            return await status(session, job_id)


async def test_the_console_exports_deletes_and_imports_through_jobs(
    filled: Filled, runtime: Any, settings: Any
) -> None:
    database = runtime.database
    await _finish_seeded_job_runs(database)
    before = await snapshot(database, filled.alpha.id, ARCHIVED)

    export_job = await _queue(database, queue_export, filled.alpha.id)
    assert export_job.job == EXPORT_JOB
    await run_jobs(runtime)
    done = await _finished(database, export_job.id)
    assert done.status is JobState.DONE, done
    assert done.total == len(ARCHIVED) + 1 and done.done == done.total
    assert done.result["rows"] == sum(len(rows) for rows in before.values())
    with platform_scope("test"):
        async with database.session() as session:
            export = await get_export(session, UUID(done.result["export_id"]))
            logged = await session.scalar(
                select(PlatformAuditEntry).where(PlatformAuditEntry.action == "commune.export")
            )
    assert export.created_by == OPERATOR.label and export.job_id == export_job.id
    assert logged is not None and logged.actor_label == OPERATOR.label

    refused = await _queue(database, queue_delete, filled.alpha.id, "Alpha")
    await run_jobs(runtime)
    refusal = await _finished(database, refused.id)
    assert refusal.status is JobState.FAILED and "confirmation" in (refusal.error or "")

    deletion = await _queue(database, queue_delete, filled.alpha.id, "Alpha-sur-Meuse")
    assert deletion.job == DELETE_JOB
    await run_jobs(runtime)
    assert (await _finished(database, deletion.id)).status is JobState.DONE
    assert not any((await snapshot(database, filled.alpha.id, ARCHIVED)).values())

    imports_folder(settings).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        Path(settings.data_dir) / "exports" / export.file_name, imports_folder(settings) / "a.zip"
    )
    restore = await _queue(database, queue_import, "a.zip")
    assert restore.job == IMPORT_JOB
    await run_jobs(runtime)
    restored = await _finished(database, restore.id)
    assert restored.status is JobState.DONE and restored.result["slug"] == "alpha"
    assert_same(before, await snapshot(database, filled.alpha.id, ARCHIVED))


async def test_an_import_job_takes_only_a_file_of_the_imports_folder(runtime: Any) -> None:
    from perron.errors import Invalid

    for name in ("../secret.zip", "/etc/passwd", ".hidden.zip", ""):
        with pytest.raises(Invalid):
            await _queue(runtime.database, queue_import, name)


async def test_deleting_queues_the_retirement_of_its_login_clients(
    filled: Filled, runtime: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where login is on, the deletion queues the platform job that disables the commune's
    Keycloak clients (the commune is gone, so it is not a per-commune job); importing it
    back queues the update that brings them back."""
    database = runtime.database
    await _finish_seeded_job_runs(database)
    export = await export_commune(database, settings, "alpha")
    monkeypatch.setattr(identity_jobs, "login_enabled", lambda: True)
    await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    assert await _queued(database) == [(identity_jobs.RETIRE_CLIENTS_JOB, None)]
    await import_commune(database, settings, export_path(settings, export))
    assert await _queued(database) == [
        (identity_jobs.RETIRE_CLIENTS_JOB, None),
        (identity_jobs.SYNC_COMMUNE_JOB, filled.alpha.id),
    ]
    # The server's relay may run them at once; let them finish (login is off in the tests'
    # settings, so they only say so) before the next test empties the tables.
    await run_jobs(runtime)


async def _queued(database: Database) -> list[tuple[str, UUID | None]]:
    """Jobs queued since the seeded ones, oldest first (from their status records, which
    stay when the relay has handed the message over)."""
    with platform_scope("test: which jobs were queued"):
        async with database.session() as session:
            found = await list_statuses(session)
    return [(run.job, run.commune_id) for run in reversed(found) if run.job != "seed.job"]


async def test_the_retirement_job_disables_the_clients_of_communes_that_are_gone(
    filled: Filled, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _finish_seeded_job_runs(runtime.database)
    seen: list[set[str]] = []

    async def disable(settings: Any, slugs: set[str]) -> list[str]:
        seen.append(slugs)
        return ["citizens/commune-gone"]

    import perron.identity.keycloak as keycloak

    monkeypatch.setattr(keycloak, "disable_orphan_clients", disable)
    monkeypatch.setattr(identity_jobs, "login_settings", lambda name: runtime.settings)
    with platform_scope("test"):
        async with runtime.database.transaction() as session:
            from perron.jobs import enqueue

            queued = enqueue(session, identity_jobs.RETIRE_CLIENTS_JOB)
    await run_jobs(runtime)
    done = await _finished(runtime.database, queued.id)
    assert done.status is JobState.DONE and done.result == ["citizens/commune-gone"]
    assert seen == [{"alpha", "bravo"}]


# The command line ---------------------------------------------------------------------


@pytest.fixture
def run(settings: Any) -> Any:
    env = settings_env(settings)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def test_the_commands_export_delete_and_import(run: Any, settings: Any, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(logo_png("#0b5e3c"))
    created = run(
        "tenants", "create", "hannut", "--nis", "64034", "--name", "fr=Hannut", "--name", "nl=Hannuit",
        "--language", "fr", "--language", "nl", "--domain", "hannut.test", "--active",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert run("tenants", "branding", "hannut", "--logo", str(logo)).exit_code == 0

    early = run("tenants", "delete", "hannut", "--confirm", "Hannut")
    assert early.exit_code == 1 and "hannut has no export: export it first" in early.output

    copy = tmp_path / "out" / "hannut.zip"
    exported = run("tenants", "export", "hannut", "--output", str(copy))
    assert exported.exit_code == 0, exported.output
    assert "Exported hannut:" in exported.output and "1 media file(s)" in exported.output
    assert copy.is_file()
    listed = json.loads(run("tenants", "exports", "hannut", "--json").output)
    assert [entry["slug"] for entry in listed] == ["hannut"]
    assert Path(listed[0]["file"]).read_bytes() == copy.read_bytes()

    wrong = run("tenants", "delete", "hannut", "--confirm", "hannut")
    assert wrong.exit_code == 1 and "type its name exactly" in wrong.output
    deleted = run("tenants", "delete", "hannut", "--confirm", "Hannuit")
    assert deleted.exit_code == 0, deleted.output
    assert "Deleted hannut:" in deleted.output
    assert run("tenants", "show", "hannut").exit_code == 1

    broken = tmp_path / "broken.zip"
    broken.write_bytes(copy.read_bytes()[:-200])
    refused = run("tenants", "import", str(broken))
    assert refused.exit_code == 1 and "The archive cannot be imported; nothing was changed" in refused.output

    checked = run("tenants", "import", str(copy), "--check")
    assert (
        checked.exit_code == 0
        and "can be imported" in checked.output
        and "Nothing was written" in checked.output
    )
    assert run("tenants", "show", "hannut").exit_code == 1
    imported = run("tenants", "import", str(copy))
    assert imported.exit_code == 0, imported.output
    assert "Imported hannut:" in imported.output
    shown = json.loads(run("tenants", "show", "hannut", "--json").output)
    assert shown["names"] == {"fr": "Hannut", "nl": "Hannuit"} and shown["status"] == "active"
    again = run("tenants", "import", str(copy))
    assert again.exit_code == 1 and "already has the slug hannut" in again.output
