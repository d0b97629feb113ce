"""``perron db``: schema migrations and the isolation self-check."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import create_engine

from perron.cli.common import fail, out, settings_from
from perron.config import Settings
from perron.db import migrate


@click.group()
def db() -> None:
    """Database schema: upgrade, inspect, check."""


@db.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Bring the schema up to date (the platform's and every module's migrations)."""
    settings = settings_from(ctx)
    target = settings.database_owner.render_as_string(hide_password=True)
    out.print(f"Upgrading {target} to {revision} …")
    try:
        applied = migrate.upgrade(settings, revision, on_step=lambda step: out.print(f"  applied {step}"))
    except Exception as error:
        fail(f"the upgrade stopped: {error}")
    if applied:
        out.print(f"Done: {len(applied)} migration(s) applied.")
    else:
        out.print("Already up to date: nothing to apply.")


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Show the schema's revisions and whether migrations are pending."""
    settings = settings_from(ctx)
    heads = migrate.current_heads(settings)
    expected = migrate.script_heads(settings)
    out.print(f"database: {', '.join(sorted(heads)) or 'empty'}")
    out.print(f"code:     {', '.join(sorted(expected))}")
    missing = migrate.missing_heads(settings, heads)
    out.print("up to date" if not missing else "migrations pending: run `perron db upgrade`")


@db.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check that the schema matches the models and that isolation holds for the app's role."""
    from perron.db.engine import Database
    from perron.models import metadata

    settings = settings_from(ctx)
    engine = create_engine(migrate.sync_url(settings.database_owner))
    with engine.connect() as connection:
        differences = migrate.drift(connection, metadata)
    engine.dispose()
    problems = [f"schema differs from the models: {difference}" for difference in differences]

    async def isolation() -> None:
        database = Database(settings.database, pooled=False)
        try:
            await database.verify_isolation()
        finally:
            await database.dispose()

    try:
        asyncio.run(isolation())
    except Exception as error:
        problems.append(str(error))
    if problems:
        fail("\n".join(problems))
    out.print(
        "Schema matches the models; row-level security holds for the application's role."
        if settings.is_postgres
        else "Schema matches the models (SQLite: isolation by the ORM and services)."
    )


@db.command()
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option(
    "--branch", default=migrate.PLATFORM_BRANCH, show_default=True, help="Branch (platform or a module)."
)
@click.option(
    "--version-path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the branch's migrations (needed to start a module's branch).",
)
@click.option("--empty", is_flag=True, help="Write an empty migration (no comparison with the models).")
@click.pass_context
def revision(ctx: click.Context, message: str, branch: str, version_path: Path | None, empty: bool) -> None:
    """Write a new migration from the difference between models and schema (developers).

    The schema must be up to date first (`perron db upgrade`). A module whose branch has no
    migration yet gets its first one (labelled with the branch, depending on the platform's
    first revision) in --version-path.
    """
    if not message.strip():
        raise click.BadParameter("say what the migration does", param_hint="-m/--message")
    settings = settings_from(ctx)
    if not empty and not migrate.pending(settings) and not _differences(settings):
        fail(
            "the models and the schema agree: there is nothing to migrate (save your model changes, "
            "or give --empty to write a migration by hand)"
        )
    try:
        scripts = migrate.branch_revision(
            settings, message, branch=branch, version_path=version_path, autogenerate=not empty
        )
    except migrate.RevisionRefused as error:
        fail(str(error))
    for script in scripts:
        out.print(f"wrote {_shown(Path(script.path))} (revision {script.revision} of branch {branch})")
    if _tidy([Path(script.path) for script in scripts]):
        out.print("formatted with ruff")


def _tidy(paths: list[Path]) -> bool:
    """Format new migrations like the code around them (unused imports out, the project's
    style), when ruff is installed; Alembic writes them in its own style."""
    beside = Path(sys.executable).with_name("ruff")
    ruff = shutil.which("ruff") or (str(beside) if beside.is_file() else None)
    if ruff is None or not paths:
        return False
    files = [str(path) for path in paths]
    fixed = subprocess.run(  # noqa: S603 - ruff, on files this command just wrote
        [ruff, "check", "--fix", "--quiet", "--select", "F401,I", *files], capture_output=True, check=False
    )
    formatted = subprocess.run(  # noqa: S603
        [ruff, "format", "--quiet", *files], capture_output=True, check=False
    )
    return fixed.returncode == 0 and formatted.returncode == 0


def _differences(settings: Settings) -> list[Any]:
    from perron.models import metadata

    engine = create_engine(migrate.sync_url(settings.database_owner))
    try:
        with engine.connect() as connection:
            return migrate.drift(connection, metadata)
    finally:
        engine.dispose()


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is below it (shorter, and copyable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
