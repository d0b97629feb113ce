"""``perron jobs``: follow background jobs, and deal with the ones that failed for good."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from uuid import UUID

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import acting_as, command_line_actor
from perron.cli.common import fail, out, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.db.scope import platform_scope
from perron.jobs.deadletters import (
    DeadLetter,
    discard_dead_letter,
    get_dead_letter,
    list_dead_letters,
    retry_dead_letter,
)
from perron.jobs.status import JobStatus, list_statuses
from perron.jobs.status import status as job_status
from perron.runtime import command_runtime
from perron.tenancy.models import Commune


@click.group()
def jobs() -> None:
    """Background jobs: their progress, and the ones that failed for good (dead letters)."""


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


async def _commune_id(session: AsyncSession, slug: str | None) -> UUID | None:
    if slug is None:
        return None
    commune_id = await session.scalar(select(Commune.id).where(Commune.slug == slug))
    if commune_id is None:
        fail(f"no commune has the slug {slug!r}")
    return commune_id


async def _slugs(session: AsyncSession, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Commune.id, Commune.slug).where(Commune.id.in_(ids)))
    return dict(rows.tuples().all())


def _progress(item: JobStatus) -> str:
    if item.total is None:
        return str(item.done) if item.done else "—"
    return f"{item.done}/{item.total} ({item.percent}%)"


@jobs.command()
@click.argument("job_id", type=click.UUID, required=False)
@click.option("--commune", "slug", help="Only this commune's jobs (slug).")
@click.option("--active", is_flag=True, help="Only jobs queued, running or waiting to retry.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="How many jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
@run_async
async def status(
    ctx: click.Context, job_id: UUID | None, slug: str | None, active: bool, limit: int, as_json: bool
) -> None:
    """Show one job's status and progress, or list the latest jobs."""
    async with command_runtime(settings_from(ctx)) as runtime:
        with acting_as(command_line_actor()), platform_scope("perron jobs status"):
            async with runtime.database.session() as session:
                if job_id is not None:
                    found = await job_status(session, job_id)
                    if found is None:
                        fail(f"no job has the id {job_id}")
                    assert found is not None
                    items = [found]
                else:
                    commune_id = await _commune_id(session, slug)
                    items = await list_statuses(
                        session, commune_id=commune_id, active_only=active, limit=limit
                    )
                slugs = await _slugs(session, {item.commune_id for item in items if item.commune_id})
    data = [
        {**item.as_json(), "commune": slugs.get(item.commune_id) if item.commune_id else None}
        for item in items
    ]
    if as_json:
        out.print_json(json.dumps(data[0] if job_id is not None else data))
        return
    if job_id is not None:
        _print_one(items[0], data[0]["commune"])
        return
    if not items:
        out.print("No job matches." if slug or active else "No job has been queued yet.")
        return
    for item, row in zip(items, data, strict=True):
        note = item.error if item.error and not item.finished else item.message
        out.print(
            f"{item.id}  {item.status.value:<8}  {_progress(item):<14}  {row['commune'] or '(platform)'}",
            markup=False,
        )
        out.print(
            f"    {item.job}, queued {_when(item.queued_at)} UTC{f' — {note}' if note else ''}", markup=False
        )
    out.print(f"{len(items)} job(s)")


def _print_one(item: JobStatus, commune: str | None) -> None:
    out.print(f"[bold]{item.job}[/] {item.id}", markup=True)
    out.print(f"commune: {commune or '(platform job)'}")
    attempt = f", attempt {item.attempts}" if item.attempts > 1 else ""
    out.print(f"status: {item.status.value}{attempt}")
    out.print(f"progress: {_progress(item)}")
    if item.message:
        out.print(f"message: {item.message}", markup=False)
    out.print(f"queued: {_when(item.queued_at)}; started: {_when(item.started_at)}", end="")
    out.print(f"; finished: {_when(item.finished_at)} (UTC)")
    if item.error:
        out.print(f"last error: {item.error}", markup=False)
    if item.result is not None:
        out.print(f"result: {json.dumps(item.result)}", markup=False)


@jobs.command()
@click.argument("dead_letter_id", type=click.UUID, required=False)
@click.option("--commune", "slug", help="Only this commune's dead letters (slug).")
@click.option("--all", "include_retried", is_flag=True, help="Include the ones already retried.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
@run_async
async def failed(
    ctx: click.Context, dead_letter_id: UUID | None, slug: str | None, include_retried: bool, as_json: bool
) -> None:
    """List the jobs that failed for good (or show one, with its traceback)."""
    async with command_runtime(settings_from(ctx)) as runtime:
        with acting_as(command_line_actor()), platform_scope("perron jobs failed"):
            async with runtime.database.session() as session:
                if dead_letter_id is not None:
                    letters = [await get_dead_letter(session, dead_letter_id)]
                else:
                    commune_id = await _commune_id(session, slug)
                    letters = await list_dead_letters(
                        session, commune_id=commune_id, include_retried=include_retried
                    )
                slugs = await _slugs(session, {letter.commune_id for letter in letters if letter.commune_id})
    full = dead_letter_id is not None
    data = [_letter_json(letter, slugs, full=full) for letter in letters]
    if as_json:
        out.print_json(json.dumps(data[0] if full else data))
        return
    if full:
        _print_letter(letters[0], data[0])
        return
    if not letters:
        out.print("No failed job." if not slug else f"No failed job for {slug}.")
        return
    for letter, row in zip(letters, data, strict=True):
        retried = f"; retried as job {letter.retried_as}" if letter.retried_as else ""
        out.print(f"{letter.id}  {row['commune'] or '(platform)'}  {letter.job}", markup=False)
        out.print(
            f"    {row['reason']} after {letter.attempts} attempt(s), last {_when(letter.last_failed_at)} UTC"
            f"{retried}",
            markup=False,
        )
        out.print(f"    {letter.error_type}: {letter.error_message}"[:300], markup=False)
    out.print(
        f"{len(letters)} failed job(s). Retry one with `perron jobs retry ID`, or `perron jobs discard ID`."
    )


def _letter_json(letter: DeadLetter, slugs: dict[UUID, str], *, full: bool) -> dict[str, Any]:
    return letter.as_json(commune=slugs.get(letter.commune_id) if letter.commune_id else None, full=full)


def _print_letter(letter: DeadLetter, data: dict[str, Any]) -> None:
    out.print(f"[bold]{letter.job}[/] failed for good — dead letter {letter.id}", markup=True)
    out.print(f"commune: {data['commune'] or '(platform job)'}; job id: {data['job_id'] or '—'}")
    out.print(f"reason: {data['reason']} after {letter.attempts} attempt(s)")
    out.print(f"first failure: {_when(letter.first_failed_at)}; last: {_when(letter.last_failed_at)} (UTC)")
    out.print(f"arguments: {json.dumps(letter.arguments)}", markup=False)
    out.print(f"error: {letter.error_type}: {letter.error_message}", markup=False)
    if letter.retried_at:
        out.print(f"retried {_when(letter.retried_at)} as job {letter.retried_as}")
    out.print("traceback (end):")
    out.print(letter.traceback, markup=False)


@jobs.command()
@click.argument("dead_letter_id", type=click.UUID)
@click.pass_context
@run_async
async def retry(ctx: click.Context, dead_letter_id: UUID) -> None:
    """Queue a failed job again (as a new job) and mark its dead letter retried."""
    settings = settings_from(ctx)
    async with platform_transaction(settings, f"perron jobs retry {dead_letter_id}") as session:
        queued = await retry_dead_letter(session, dead_letter_id)
        letter = await get_dead_letter(session, dead_letter_id)
        slugs = await _slugs(session, {letter.commune_id} if letter.commune_id else set())
    where = f" for {slugs[letter.commune_id]}" if letter.commune_id else ""
    out.print(f"Queued {letter.job}{where} again as job {queued.id}; dead letter {letter.id} marked retried.")
    if settings.jobs_in_process:
        out.print("It runs as soon as the running `perron serve` relays it (within seconds).")


@jobs.command()
@click.argument("dead_letter_id", type=click.UUID)
@click.pass_context
@run_async
async def discard(ctx: click.Context, dead_letter_id: UUID) -> None:
    """Forget a failed job for good (it will not run)."""
    async with platform_transaction(settings_from(ctx), f"perron jobs discard {dead_letter_id}") as session:
        letter = await discard_dead_letter(session, dead_letter_id)
    out.print(f"Discarded dead letter {letter.id} ({letter.job}).")
