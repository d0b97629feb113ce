"""Jobs that fail, retry, report progress, refuse work, and survive a broker outage.

Failures are real exceptions raised by real jobs run by dramatiq's worker (the in-memory
broker of the embedded mode, and a real Redis for the outage). Operators' commands are the
real ``perron jobs`` CLI.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import dramatiq
import pytest
import redis
from click.testing import CliRunner, Result
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from perron.audit import AuditEntry, PlatformAuditEntry
from perron.cli import main
from perron.config import Settings
from perron.db.engine import Database
from perron.db.scope import CrossTenantAccess, IsolationError, platform_scope, tenant_scope
from perron.errors import Invalid
from perron.jobs import (
    DeadLetter,
    JobContext,
    JobState,
    OutboxMessage,
    enqueue,
    job,
    list_dead_letters,
    list_statuses,
    status,
)
from perron.jobs.outbox import queue_message
from perron.jobs.runtime import RELAY_RETRY_MAX, Jobs, relay_delay
from perron.logging import configure_logging
from perron.tenancy import actions
from tests.conftest import MakeCommune, settings_env
from tests.isolation.conftest import locks_available, only_lock

_lock = threading.Lock()
ATTEMPTS: dict[str, list[int]] = defaultdict(list)
BROKEN = {"register": True}
GATES: dict[str, threading.Event] = {}
OUTAGE_RUNS: list[int] = []


def _attempted(label: str, attempt: int) -> None:
    with _lock:
        ATTEMPTS[label].append(attempt)


def _entry(action: str) -> AuditEntry:
    return AuditEntry(actor_kind="system", actor_label="job", action=action, object_type="job")


@job("tests.reliability.flaky", max_retries=3, min_backoff_ms=10, max_backoff_ms=40)
async def flaky(ctx: JobContext, *, label: str, failures: int) -> dict[str, Any]:
    """Fails its first ``failures`` attempts, then writes its effect."""
    _attempted(label, ctx.attempt)
    if ctx.attempt <= failures:
        raise ConnectionError(f"the register did not answer (attempt {ctx.attempt})")
    ctx.session.add(_entry(f"flaky.{label}"))
    return {"label": label, "attempt": ctx.attempt}


@job("tests.reliability.stubborn", max_retries=2, min_backoff_ms=10, max_backoff_ms=20)
async def stubborn(ctx: JobContext, *, label: str) -> None:
    """Fails every attempt while the register is broken."""
    _attempted(label, ctx.attempt)
    ctx.session.add(_entry(f"stubborn.{label}.attempt"))  # rolled back with the failure
    if BROKEN["register"]:
        raise RuntimeError(f"cannot reach the population register for {label}")
    ctx.session.add(_entry(f"stubborn.{label}"))


@job("tests.reliability.picky", max_retries=3, min_backoff_ms=10, max_backoff_ms=20)
async def picky(ctx: JobContext, *, street: str) -> None:
    _attempted(street, ctx.attempt)
    raise Invalid("street", f"no street is called {street!r}")


@job("tests.reliability.long", max_retries=0)
async def long_job(ctx: JobContext, *, label: str, steps: int) -> dict[str, int]:
    """Reports each step; after the first it waits until the test lets it go on."""
    await ctx.progress(0, steps, "starting")
    for step in range(1, steps + 1):
        ctx.session.add(_entry(f"long.{label}.{step}"))
        await ctx.progress(step, steps, f"step {step} of {steps}")
        if step == 1:
            await asyncio.to_thread(GATES[label].wait, 30)
    return {"steps": steps}


@job("tests.reliability.module_work", module="reliability_probe", max_retries=2, min_backoff_ms=10)
async def module_work(ctx: JobContext, *, label: str) -> None:
    _attempted(label, ctx.attempt)
    ctx.session.add(_entry(f"probe.{label}"))


@job("tests.reliability.too_slow", max_retries=0, time_limit_ms=200)
async def too_slow(ctx: JobContext, *, label: str) -> None:
    _attempted(label, ctx.attempt)
    ctx.session.add(_entry(f"slow.{label}"))
    await asyncio.sleep(30)


@job("tests.reliability.outage_effect", max_retries=20, min_backoff_ms=100, max_backoff_ms=1000)
async def outage_effect(ctx: JobContext, *, n: int) -> None:
    """Idempotent: writes its effect once, whatever the number of deliveries."""
    with _lock:
        OUTAGE_RUNS.append(n)
    action = f"outage.{n}"
    if await ctx.session.scalar(select(AuditEntry.id).where(AuditEntry.action == action)) is None:
        ctx.session.add(_entry(action))


@pytest.fixture
def jobs(runtime: Any) -> Jobs:
    ATTEMPTS.clear()
    OUTAGE_RUNS.clear()
    GATES.clear()
    BROKEN["register"] = True
    runtime.jobs.declare_actors()
    jobs: Jobs = runtime.jobs
    return jobs


async def drain(jobs: Jobs) -> None:
    """Hand the outbox to the broker and wait until every job, retries included, is done."""
    while await jobs.relay_once():
        pass
    await asyncio.to_thread(jobs.join)


@asynccontextmanager
async def relay_paused(jobs: Jobs) -> AsyncIterator[None]:
    """Stop the app's background relay (the test relays, or another broker must)."""
    await jobs.stop_relay()
    try:
        yield
    finally:
        jobs.start_relay()


Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
def cli(settings: Settings) -> Cli:
    env = settings_env(settings)

    async def invoke(*args: str) -> Result:
        def call() -> Result:
            return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

        try:
            return await asyncio.to_thread(call)
        finally:
            # The command sends the process's log lines to its own (now closed) stderr.
            configure_logging(settings.model_copy(update={"log_level": "WARNING"}))

    return invoke


async def queue(database: Database, commune: UUID | None, target: Any, **arguments: Any) -> UUID:
    scope = tenant_scope(commune) if commune else platform_scope("test: queue a platform job")
    with scope:
        async with database.transaction() as session:
            return enqueue(session, target, **arguments).id


async def status_of(database: Database, commune: UUID | None, job_id: UUID) -> Any:
    scope = tenant_scope(commune) if commune else platform_scope("test: read a job status")
    with scope:
        async with database.session() as session:
            return await status(session, job_id)


async def dead_letters(database: Database) -> list[DeadLetter]:
    with platform_scope("test: read dead letters"):
        async with database.session() as session:
            return await list_dead_letters(session, include_retried=True)


async def actions_done(database: Database, commune: UUID, prefix: str) -> list[str]:
    with tenant_scope(commune):
        async with database.session() as session:
            found = await session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.startswith(prefix))
            )
            return sorted(found)


def counted(job_name: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("perron_jobs_total", {"job": job_name, "outcome": outcome}) or 0.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {seconds:g} s: {what}")
        await asyncio.sleep(0.02)


# -- retries and dead letters -----------------------------------------------------------


async def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(
    jobs: Jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    job_id = await queue(database, alpha.id, flaky, label="a", failures=2)
    await drain(jobs)

    assert ATTEMPTS["a"] == [1, 2, 3]
    assert await actions_done(database, alpha.id, "flaky.") == ["flaky.a"]
    done = await status_of(database, alpha.id, job_id)
    assert done.status is JobState.DONE
    assert done.attempts == 3
    assert done.result == {"label": "a", "attempt": 3}
    assert done.error == "ConnectionError: the register did not answer (attempt 2)"
    assert await dead_letters(database) == []
    options = jobs.broker.get_actor("tests.reliability.flaky").options
    assert (options["max_retries"], options["min_backoff"], options["max_backoff"]) == (3, 10, 40)


async def test_a_job_failing_every_retry_is_a_dead_letter_an_operator_can_retry(
    jobs: Jobs, database: Database, make_commune: MakeCommune, cli: Cli
) -> None:
    alpha = await make_commune("alpha")
    await make_commune("bravo")
    job_id = await queue(database, alpha.id, stubborn, label="census")
    await drain(jobs)

    assert ATTEMPTS["census"] == [1, 2, 3]  # the first run and max_retries=2 retries
    assert await actions_done(database, alpha.id, "stubborn.") == []  # each failure rolled back
    failed = await status_of(database, alpha.id, job_id)
    assert failed.status is JobState.FAILED
    assert failed.attempts == 3
    assert failed.error == "RuntimeError: cannot reach the population register for census"

    listed = await cli("jobs", "failed", "--json")
    assert listed.exit_code == 0, listed.output
    [letter] = json.loads(listed.stdout)
    assert letter["job"] == "tests.reliability.stubborn"
    assert letter["commune"] == "alpha"
    assert letter["job_id"] == str(job_id)
    assert letter["reason"] == "exhausted"
    assert letter["attempts"] == 3
    assert letter["arguments"] == {"label": "census"}
    assert letter["error_type"] == "RuntimeError"
    assert letter["error_message"] == "cannot reach the population register for census"
    assert letter["first_failed_at"] < letter["last_failed_at"]
    assert json.loads((await cli("jobs", "failed", "--commune", "bravo", "--json")).stdout) == []

    shown = await cli("jobs", "failed", letter["id"])
    assert shown.exit_code == 0, shown.output
    assert "cannot reach the population register for census" in shown.stdout
    assert "in stubborn" in shown.stdout  # the traceback names the failing function
    table = await cli("jobs", "failed")
    assert letter["id"] in table.stdout and "1 failed job(s)" in table.stdout

    BROKEN["register"] = False  # the operator fixed the cause
    retried = await cli("jobs", "retry", letter["id"])
    assert retried.exit_code == 0, retried.output
    assert "Queued tests.reliability.stubborn for alpha again as job" in retried.stdout
    await drain(jobs)
    assert ATTEMPTS["census"] == [1, 2, 3, 1]
    assert await actions_done(database, alpha.id, "stubborn.") == [
        "stubborn.census",
        "stubborn.census.attempt",
    ]

    assert json.loads((await cli("jobs", "failed", "--json")).stdout) == []
    [kept] = json.loads((await cli("jobs", "failed", "--all", "--json")).stdout)
    assert kept["retried_at"] is not None
    rerun = await status_of(database, alpha.id, UUID(kept["retried_as"]))
    assert rerun.status is JobState.DONE
    assert (await status_of(database, alpha.id, job_id)).status is JobState.FAILED  # history is kept

    again = await cli("jobs", "retry", letter["id"])
    assert again.exit_code == 1
    assert "already retried" in again.output
    await drain(jobs)
    assert ATTEMPTS["census"] == [1, 2, 3, 1]

    with platform_scope("test: read the platform audit log"):
        async with database.session() as session:
            audited = list(await session.scalars(select(PlatformAuditEntry)))
    [retry_entry] = [entry for entry in audited if entry.action == "job.retry"]
    assert retry_entry.object_id == letter["id"]
    assert retry_entry.actor_label.startswith("cli:")
    assert retry_entry.changes["retried_as"] == [None, kept["retried_as"]]


async def test_an_operator_discards_a_dead_letter(
    jobs: Jobs, database: Database, make_commune: MakeCommune, cli: Cli
) -> None:
    alpha = await make_commune("alpha")
    await queue(database, alpha.id, stubborn, label="obsolete")
    await drain(jobs)
    [letter] = await dead_letters(database)

    discarded = await cli("jobs", "discard", str(letter.id))
    assert discarded.exit_code == 0, discarded.output
    assert f"Discarded dead letter {letter.id} (tests.reliability.stubborn)." in discarded.stdout
    assert await dead_letters(database) == []
    with platform_scope("test: read the platform audit log"):
        async with database.session() as session:
            entry = await session.scalar(
                select(PlatformAuditEntry).where(PlatformAuditEntry.action == "job.discard")
            )
    assert entry is not None and entry.object_id == str(letter.id)
    assert entry.changes["job"] == ["tests.reliability.stubborn", None]

    unknown = await cli("jobs", "discard", str(uuid.uuid4()))
    assert unknown.exit_code == 1
    assert "no dead letter has the id" in unknown.output
    malformed = await cli("jobs", "retry", "not-an-id")
    assert malformed.exit_code == 2
    assert "not a valid UUID" in malformed.output
    assert (await cli("jobs", "failed", "--commune", "nowhere")).exit_code == 1
    lost = await cli("jobs", "status", str(uuid.uuid4()))
    assert lost.exit_code == 1
    assert "no job has the id" in lost.output


async def test_a_job_refusing_its_input_is_not_retried(
    jobs: Jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    job_id = await queue(database, alpha.id, picky, street="Rue Inconnue")
    await drain(jobs)
    assert ATTEMPTS["Rue Inconnue"] == [1]  # max_retries=3, but the same input fails the same way
    [letter] = await dead_letters(database)
    assert (letter.reason.value, letter.attempts, letter.error_type) == (
        "invalid",
        1,
        "perron.errors.Invalid",
    )
    assert letter.error_message == "street: no street is called 'Rue Inconnue'"
    assert (await status_of(database, alpha.id, job_id)).status is JobState.FAILED


async def test_a_message_its_job_cannot_take_is_a_dead_letter_without_retries(
    jobs: Jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            with pytest.raises(TypeError, match="does not take these arguments"):
                enqueue(session, flaky, label="x")  # failures is missing
            with pytest.raises(TypeError, match="does not take these arguments"):
                enqueue(session, flaky, label="x", failures=0, colour="red")
    # A message queued by an older version of the job, whose arguments have since changed:
    with platform_scope("test: a message from before an upgrade"):
        async with database.transaction() as session:
            stale = queue_message(
                session,
                name="tests.reliability.flaky",
                queue="default",
                tenant_id=alpha.id,
                arguments={"label": "old", "retries": 2},
            )
    await drain(jobs)
    assert "old" not in ATTEMPTS
    [letter] = await dead_letters(database)
    assert (letter.reason.value, letter.attempts, letter.job_id) == ("invalid", 1, stale.id)
    assert "does not take these arguments" in letter.error_message
    assert (await status_of(database, alpha.id, stale.id)).status is JobState.FAILED


async def test_a_redelivered_message_of_a_finished_job_runs_nothing(
    jobs: Jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    job_id = await queue(database, alpha.id, flaky, label="once", failures=0)
    await drain(jobs)
    skipped_before = counted("tests.reliability.flaky", "skipped")
    redelivered: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="default",
        actor_name="tests.reliability.flaky",
        args=(),
        kwargs={"tenant_id": str(alpha.id), "arguments": {"label": "once", "failures": 0}},
        options={},
        message_id=str(job_id),
    )
    jobs.broker.enqueue(redelivered)
    await asyncio.to_thread(jobs.join)
    assert ATTEMPTS["once"] == [1]
    assert await actions_done(database, alpha.id, "flaky.") == ["flaky.once"]
    assert counted("tests.reliability.flaky", "skipped") == skipped_before + 1


async def test_a_job_past_its_time_limit_is_interrupted_and_recorded(
    jobs: Jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    job_id = await queue(database, alpha.id, too_slow, label="late")
    while await jobs.relay_once():
        pass
    try:
        await asyncio.to_thread(jobs.broker.join, "default", fail_fast=False)

        async def recorded() -> bool:
            return bool(await dead_letters(database))

        await eventually(recorded, "the interrupted job's dead letter")
    finally:
        # dramatiq also keeps the interrupted message in the in-memory broker's dead letters.
        jobs.broker.dead_letters_by_queue.clear()  # type: ignore[attr-defined]
    [letter] = await dead_letters(database)
    assert (letter.error_type, letter.error_message) == (
        "TimeoutError",
        "the job ran past its time limit of 0.2 s",
    )
    assert ATTEMPTS["late"] == [1]
    assert (await status_of(database, alpha.id, job_id)).status is JobState.FAILED
    assert await actions_done(database, alpha.id, "slow.") == []


# -- progress ---------------------------------------------------------------------------


async def test_progress_is_visible_while_the_job_runs_and_only_to_its_commune(
    jobs: Jobs, database: Database, make_commune: MakeCommune, cli: Cli
) -> None:
    alpha, bravo = await make_commune("alpha"), await make_commune("bravo")
    GATES["report"] = threading.Event()
    async with relay_paused(jobs):
        job_id = await queue(database, alpha.id, long_job, label="report", steps=3)
        queued = await status_of(database, alpha.id, job_id)
        assert (queued.status, queued.done, queued.started_at) == (JobState.QUEUED, 0, None)
        while await jobs.relay_once():
            pass
    try:

        async def at_first_step() -> bool:
            seen = await status_of(database, alpha.id, job_id)
            return seen is not None and seen.done == 1

        await eventually(at_first_step, "the job to report its first step")
        running = await status_of(database, alpha.id, job_id)
        assert (running.status, running.done, running.total, running.percent) == (JobState.RUNNING, 1, 3, 33)
        assert running.message == "step 1 of 3"
        # What a report says is done is committed: the first step's work is visible already.
        assert await actions_done(database, alpha.id, "long.") == ["long.report.1"]
        assert await status_of(database, bravo.id, job_id) is None
        with tenant_scope(bravo.id):
            async with database.session() as session:
                assert await list_statuses(session) == []

        shown = await cli("jobs", "status", str(job_id), "--json")
        assert shown.exit_code == 0, shown.output
        seen = json.loads(shown.stdout)
        assert seen["status"] == "running"
        assert seen["progress"] == {"done": 1, "total": 3, "percent": 33}
        assert seen["commune"] == "alpha"
        listed = await cli("jobs", "status", "--active", "--commune", "alpha")
        assert str(job_id) in listed.stdout and "1/3 (33%)" in listed.stdout
    finally:
        GATES["report"].set()
    await drain(jobs)
    finished = await status_of(database, alpha.id, job_id)
    assert (finished.status, finished.done, finished.total) == (JobState.DONE, 3, 3)
    assert finished.result == {"steps": 3}
    assert finished.finished_at is not None and finished.finished_at >= finished.started_at
    assert await actions_done(database, alpha.id, "long.") == [
        "long.report.1",
        "long.report.2",
        "long.report.3",
    ]


async def test_progress_reports_must_make_sense(database: Database) -> None:
    reports: list[tuple[int, int | None, str]] = []

    async def record(done: int, total: int | None, message: str) -> None:
        reports.append((done, total, message))

    async with database.session() as session:
        ctx = JobContext(None, session, "direct", 1, None, record)
        for done, total in [(-1, None), (5, 3), (1.5, None), (True, None)]:
            with pytest.raises(ValueError, match="progress"):
                await ctx.progress(done, total)  # type: ignore[arg-type]
        await ctx.progress(2, 4, "  half way " + "x" * 600)
    assert len(reports) == 1
    done, total, message = reports[0]
    assert (done, total, len(message)) == (2, 4, 500)
    assert message.startswith("half way") and message.endswith("…")


# -- modules ----------------------------------------------------------------------------


async def test_a_module_job_is_refused_where_the_module_is_off_and_runs_once_enabled(
    jobs: Jobs, database: Database, make_commune: MakeCommune
) -> None:
    alpha = await make_commune("alpha")
    refused_before = counted("tests.reliability.module_work", "refused")
    first = await queue(database, alpha.id, module_work, label="never-enabled")
    await drain(jobs)
    assert "never-enabled" not in ATTEMPTS
    refused = await status_of(database, alpha.id, first)
    assert refused.status is JobState.REFUSED
    assert refused.message == "module 'reliability_probe' is not enabled for this commune"
    assert refused.finished_at is not None
    assert await dead_letters(database) == []
    assert counted("tests.reliability.module_work", "refused") == refused_before + 1

    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            await actions.set_module_enabled(session, alpha.id, "reliability_probe", True)
    second = await queue(database, alpha.id, module_work, label="enabled")
    await drain(jobs)
    assert ATTEMPTS["enabled"] == [1]
    assert (await status_of(database, alpha.id, second)).status is JobState.DONE

    # Queued while on, switched off before it ran: refused as well.
    with tenant_scope(alpha.id):
        async with database.transaction() as session:
            enqueue(session, module_work, label="switched-off")
            await actions.set_module_enabled(session, alpha.id, "reliability_probe", False)
    await drain(jobs)
    assert "switched-off" not in ATTEMPTS
    assert await actions_done(database, alpha.id, "probe.") == ["probe.enabled"]
    assert counted("tests.reliability.module_work", "refused") == refused_before + 2


# -- isolation --------------------------------------------------------------------------


@pytest.mark.parametrize("lock", locks_available())
async def test_each_lock_alone_keeps_a_communes_job_statuses_from_another(
    jobs: Jobs, database: Database, make_commune: MakeCommune, lock: str
) -> None:
    alpha, bravo = await make_commune("alpha"), await make_commune("bravo")
    async with relay_paused(jobs):
        await queue(database, alpha.id, flaky, label="mine", failures=0)
        theirs = await queue(database, bravo.id, flaky, label="theirs", failures=0)
        with only_lock(lock), tenant_scope(alpha.id):
            async with database.session() as session:
                try:
                    found = await status(session, theirs)
                except IsolationError:
                    found = None
                try:
                    listed = {item.commune_id for item in await list_statuses(session)}
                except IsolationError:
                    listed = set()
        assert found is None
        assert bravo.id not in listed
        with only_lock(None), tenant_scope(alpha.id):  # proof that the attack is real
            async with database.session() as session:
                assert (await status(session, theirs)) is not None
        with platform_scope("test: clear the outbox"):
            async with database.transaction() as session:
                for row in await session.scalars(select(OutboxMessage)):
                    await session.delete(row)


async def test_dead_letters_are_for_operators_only(database: Database, make_commune: MakeCommune) -> None:
    alpha = await make_commune("alpha")
    with tenant_scope(alpha.id), pytest.raises(CrossTenantAccess, match="operator"):
        async with database.session() as session:
            await list_dead_letters(session)


# -- the relay --------------------------------------------------------------------------


def test_the_relay_backs_off_after_failures_but_never_beyond_a_few_seconds() -> None:
    delays = [relay_delay(failures, 2.0) for failures in range(12)]
    assert delays[:7] == [2.0, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert max(delays) == RELAY_RETRY_MAX == 5.0


async def test_a_broker_failing_midway_keeps_only_the_unsent_messages_with_a_mock_broker(
    jobs: Jobs, database: Database, make_commune: MakeCommune, settings: Settings
) -> None:
    """The broker here is dramatiq's in-memory one, made to fail on its third message."""
    alpha = await make_commune("alpha")
    relay = Jobs(settings, database, run_worker=False)
    relay.declare_actors()
    handed: list[str] = []
    enqueue_for_real = relay.broker.enqueue

    def failing_enqueue(message: dramatiq.Message[Any], *, delay: int | None = None) -> Any:
        if len(handed) == 2:
            raise ConnectionError("the broker went away")
        handed.append(message.message_id)
        return enqueue_for_real(message, delay=delay)

    relay.broker.enqueue = failing_enqueue  # type: ignore[method-assign]
    async with relay_paused(jobs):
        ids = [await queue(database, alpha.id, flaky, label=f"m{n}", failures=0) for n in range(5)]
        with pytest.raises(ConnectionError):
            await relay.relay_once()
        with platform_scope("test: look at the outbox"):
            async with database.session() as session:
                waiting = set(await session.scalars(select(OutboxMessage.id)))
        assert handed == [str(ids[0]), str(ids[1])]
        assert waiting == set(ids[2:])
        relay.broker.enqueue = enqueue_for_real  # type: ignore[method-assign]
        assert await relay.relay_once() == 3
    relay.broker.close()


# -- a real broker outage ---------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start") from None
            time.sleep(0.05)
    client.close()
    return process


@pytest.fixture
def redis_broker() -> Any:
    """A broker on PERRON_TEST_REDIS_URL, in a namespace of its own (removed afterwards)."""
    from perron.jobs.broker import RecoveringRedisBroker
    from tests.conftest import REDIS_URL

    namespace = f"perron-test-{uuid.uuid4().hex[:12]}"
    broker = RecoveringRedisBroker(url=REDIS_URL, namespace=namespace)
    yield broker
    for key in broker.client.keys(f"{namespace}:*"):
        broker.client.delete(key)
    broker.close()


def _message(queue_name: str) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue_name, actor_name="probe", args=(), kwargs={}, options={})


def _drain_consumer(consumer: Any) -> list[str]:
    found: list[str] = []
    misses = 0
    while misses < 3:
        proxy = next(consumer)
        if proxy is None:
            misses += 1
            continue
        found.append(proxy.message_id)
        consumer.ack(proxy)
    return found


@pytest.mark.redis
def test_messages_a_broken_consumer_had_fetched_go_back_to_the_queue(redis_broker: Any) -> None:
    """dramatiq keeps them in the process's unacknowledged set until the process is gone; a
    consumer restarted after a connection error (here: simply asked for again) gives them back."""
    redis_broker.declare_queue("default")
    sent = [redis_broker.enqueue(_message("default")).message_id for _ in range(4)]
    consumer = redis_broker.consume("default", prefetch=4, timeout=50)
    handed_to_a_worker = next(consumer)
    assert handed_to_a_worker is not None and len(consumer.message_cache) == 3  # fetched, held in memory

    restarted = redis_broker.consume("default", prefetch=4, timeout=50)
    assert sorted(_drain_consumer(restarted)) == sorted(set(sent) - {handed_to_a_worker.message_id})
    # The message a worker thread took is not given twice; it acknowledges itself.
    restarted.ack(handed_to_a_worker)
    assert (
        redis_broker.client.scard(f"{redis_broker.namespace}:__acks__.{redis_broker.broker_id}.default") == 0
    )


@pytest.mark.redis
def test_messages_of_a_fetch_whose_answer_was_lost_go_back_to_the_queue(redis_broker: Any) -> None:
    redis_broker.declare_queue("default")
    sent = [redis_broker.enqueue(_message("default")).message_id for _ in range(3)]
    consumer = redis_broker.consume("default", prefetch=1, timeout=50)
    running = next(consumer)
    assert running is not None
    redis_broker.do_fetch("default", 2)  # Redis moved two more to this process; the answer never came

    restarted = redis_broker.consume("default", prefetch=4, timeout=50)
    assert sorted(_drain_consumer(restarted)) == sorted(set(sent) - {running.message_id})


@pytest.mark.redis
def test_delayed_messages_a_broken_consumer_held_go_back_to_the_delay_queue(redis_broker: Any) -> None:
    redis_broker.declare_queue("default")
    delayed = redis_broker.enqueue(_message("default"), delay=60_000)
    consumer = redis_broker.consume("default.DQ", prefetch=2, timeout=50)
    held = next(consumer)
    assert held is not None and held.message_id == delayed.message_id  # held in memory until its time

    restarted = redis_broker.consume("default.DQ", prefetch=2, timeout=50)
    assert _drain_consumer(restarted) == [delayed.message_id]


@pytest.mark.redis
@pytest.mark.slow
async def test_a_broker_outage_loses_no_job(
    jobs: Jobs, database: Database, make_commune: MakeCommune, settings: Settings, tmp_path: Path
) -> None:
    """Redis is killed while jobs are being queued, and restarted on the same port: every
    job queued before, during and after the outage runs, and its effect exists once."""
    alpha = await make_commune("alpha")
    port = _free_port()
    server = _start_redis(port, tmp_path)
    broker_settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    worker = Jobs(broker_settings, database, run_worker=True)

    async def outbox_size() -> int:
        with platform_scope("test: look at the outbox"):
            async with database.session() as session:
                return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)

    async def effects() -> list[str]:
        return await actions_done(database, alpha.id, "outage.")

    try:
        async with relay_paused(jobs):  # the app's in-memory broker must not take these jobs
            await worker.start(relay_interval=0.5)
            for n in range(20):  # a burst: the worker holds a backlog when Redis dies
                await queue(database, alpha.id, outage_effect, n=n)
            server.kill()
            server.wait()
            for n in range(20, 40):  # a few seconds of outage: the relay fails and backs off
                await queue(database, alpha.id, outage_effect, n=n)
                await asyncio.sleep(0.15)
            assert await outbox_size() >= 20  # nothing queued during the outage reached the broker
            outage_ended = time.monotonic()
            server = _start_redis(port, tmp_path)

            async def relayed() -> bool:
                return await outbox_size() == 0

            # No commit wakes the relay now: its own backoff must bring it back.
            await eventually(relayed, "the relay to hand over what waited in the outbox", 60)
            print(f"outbox relayed {time.monotonic() - outage_ended:.1f} s after Redis came back")
            for n in range(40, 50):
                await queue(database, alpha.id, outage_effect, n=n)

            async def all_ran() -> bool:
                return len(set(await effects())) == 50

            try:
                await eventually(all_ran, "every job's effect", 120)
            except AssertionError as error:
                missing = sorted(set(range(50)) - {int(action.split(".")[1]) for action in await effects()})
                client = redis.Redis(port=port)
                keys = {key.decode(): client.type(key).decode() for key in client.keys("*")}
                sizes = {
                    key: client.llen(key) if kind == "list" else client.scard(key) if kind == "set" else kind
                    for key, kind in keys.items()
                }
                client.close()
                raise AssertionError(f"{error}; missing {missing}; redis: {sizes}") from None
            await worker.stop()
    finally:
        if worker.worker is not None:
            await worker.stop()
        server.kill()
        server.wait()

    found = await effects()
    print(f"{len(OUTAGE_RUNS)} runs for 50 jobs")
    assert sorted(found) == sorted(f"outage.{n}" for n in range(50))  # each effect exactly once
    assert set(OUTAGE_RUNS) == set(range(50))
    with tenant_scope(alpha.id):
        async with database.session() as session:
            statuses = await list_statuses(session, limit=100)
    assert len(statuses) == 50
    assert {item.status for item in statuses} == {JobState.DONE}
    assert await dead_letters(database) == []
