"""Schema migrations with Alembic: the platform's branch and one branch per module.

The platform's revisions carry the branch label ``perron``; each module ships its own branch
(its first revision ``depends_on`` the platform's), found through its manifest. ``upgrade``
goes to every head. Migrations run as the schema's owner (``PERRON_DATABASE_OWNER_URL`` on
PostgreSQL), inside the platform scope, and end by granting the application role what it
needs and no more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from advanced_alchemy.types import GUID
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, Engine

from perron.config import Settings

PLATFORM_BRANCH = "perron"
_extra_version_locations: list[Path] = []


def add_version_location(path: Path) -> None:
    """Register a module's migration folder (called when modules are loaded)."""
    if path not in _extra_version_locations:
        _extra_version_locations.append(path)


def sync_url(url: URL) -> URL:
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    return url.set(drivername="postgresql+psycopg")


def platform_versions() -> Path:
    return Path(str(resources.files("perron.migrations") / "versions"))


def alembic_config(settings: Settings, *, url: URL | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("perron.migrations")))
    locations = [platform_versions(), *_extra_version_locations]
    config.set_main_option("version_locations", " ".join(str(path) for path in locations))
    config.set_main_option("path_separator", "space")
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["perron_url"] = sync_url(url or settings.database_owner)
    config.attributes["perron_settings"] = settings
    return config


def owner_engine(settings: Settings) -> Engine:
    return create_engine(sync_url(settings.database_owner))


def _ensure_sqlite_folder(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(
    settings: Settings, target: str = "heads", *, on_step: Callable[[str], None] | None = None
) -> list[str]:
    """Bring the schema to ``target``; returns the revisions applied, in order."""
    _ensure_sqlite_folder(settings.database_owner)
    config = alembic_config(settings)
    applied: list[str] = []

    def record(step: str) -> None:
        applied.append(step)
        if on_step:
            on_step(step)

    config.attributes["on_step"] = record
    command.upgrade(config, target)
    grant_application_role(settings)
    return applied


def current_heads(settings: Settings) -> set[str]:
    engine = owner_engine(settings)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def script_heads(settings: Settings) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


def missing_heads(settings: Settings, applied_heads: set[str]) -> set[str]:
    """Heads of the code's migrations the database has not reached. A module branch that
    ``depends_on`` the platform's leaves only its own head recorded, so heads are compared
    through ancestry, not as sets."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    reached: set[str] = set()
    if applied_heads:
        reached = {revision.revision for revision in script.iterate_revisions(tuple(applied_heads), "base")}
    return set(script.get_heads()) - reached


def pending(settings: Settings) -> bool:
    return bool(missing_heads(settings, current_heads(settings)))


def grant_application_role(settings: Settings) -> None:
    """Let the application's role use the tables the owner just created, without owning them."""
    if not settings.is_postgres or settings.database_owner_url is None:
        return
    app_role = settings.database.username
    owner_role = settings.database_owner.username
    if not app_role or app_role == owner_role:
        return
    engine = owner_engine(settings)
    quoted = '"' + app_role.replace('"', '""') + '"'
    try:
        with engine.begin() as connection:
            connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
            connection.execute(
                text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}")
            )
            connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
            # The audit trail is append-only for the application.
            connection.execute(
                text(f"REVOKE UPDATE, DELETE ON audit_entries, platform_audit_entries FROM {quoted}")
            )
            connection.execute(text(f"REVOKE ALL ON alembic_version FROM {quoted}"))
            connection.execute(text(f"GRANT SELECT ON alembic_version TO {quoted}"))
    finally:
        engine.dispose()


def drift(connection: Connection, metadata: Any) -> list[Any]:
    """Differences between the models and the migrated schema (empty when they agree)."""
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": compare_type,
            "compare_server_default": False,
            "include_object": include_object,
        },
    )
    return list(compare_metadata(context, metadata))


def compare_type(
    context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """SQLite reflects GUID's BINARY(16) as NUMERIC: not a difference. Others: Alembic decides."""
    if isinstance(metadata_type, GUID):
        return type(inspected_type).__name__.upper() not in {"NUMERIC", "BINARY", "UUID", "CHAR", "VARBINARY"}
    return None


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name == "alembic_version")


def revision(
    settings: Settings,
    message: str,
    *,
    branch: str = PLATFORM_BRANCH,
    head: str | None = None,
    version_path: Path | None = None,
    autogenerate: bool = True,
) -> Iterable[Any]:
    config = alembic_config(settings)
    result = command.revision(
        config,
        message=message,
        autogenerate=autogenerate,
        head=head or f"{branch}@head",
        version_path=str(version_path) if version_path else None,
    )
    return result if isinstance(result, list) else [result]


FIRST_PLATFORM_REVISION = "0001"
"""What every module branch ``depends_on``: the platform revision that creates ``communes``."""


class RevisionRefused(Exception):
    """A migration that cannot be written as asked; the message says what to do instead."""


def _numbered(branch: str) -> re.Pattern[str]:
    """Revision ids of a branch: ``0007`` (or ``0007_jobs``) for the platform, ``<branch>_0002``
    for a module."""
    if branch == PLATFORM_BRANCH:
        return re.compile(r"^(\d{4})(?:_\w+)?$")
    return re.compile(rf"^{re.escape(branch)}_(\d{{4}})(?:_\w+)?$")


def branch_revision(
    settings: Settings,
    message: str,
    *,
    branch: str = PLATFORM_BRANCH,
    version_path: Path | None = None,
    autogenerate: bool = True,
) -> list[Any]:
    """Write the next migration of ``branch``, or its first one when it has none yet.

    A new branch is a module's: its first revision starts from nothing, carries the branch
    label and ``depends_on`` the platform's first revision (which creates ``communes``), and
    goes to ``version_path``, the module's migrations folder. Ids are numbered within their
    branch (``0007``, ``<module>_0002``) as long as the branch's ids follow that pattern;
    otherwise Alembic picks one.
    """
    from alembic.util import CommandError

    config = alembic_config(settings)
    if version_path is not None:
        version_path = version_path.resolve()
        locations = config.get_main_option("version_locations", "") or ""
        if version_path not in {Path(location).resolve() for location in locations.split()}:
            config.set_main_option("version_locations", f"{locations} {version_path}".strip())
    script = ScriptDirectory.from_config(config)
    revisions = [rev for rev in script.walk_revisions() if branch in rev.branch_labels]
    known = {rev.revision for rev in script.walk_revisions()}
    options: dict[str, Any] = {}
    if revisions:
        numbers = [_numbered(branch).match(rev.revision) for rev in revisions]
        head = f"{branch}@head"
        if all(numbers):
            following = max(int(match.group(1)) for match in numbers if match) + 1
            candidate = f"{following:04d}" if branch == PLATFORM_BRANCH else f"{branch}_{following:04d}"
            options["rev_id"] = None if candidate in known else candidate
    else:
        if branch == PLATFORM_BRANCH:
            raise RevisionRefused("the platform's branch has no revision: Perron's installation is damaged")
        if not re.fullmatch(r"[a-z][a-z0-9_]{1,40}", branch):
            raise RevisionRefused(
                f"there is no branch {branch!r}, and it cannot start one: a module's branch is named "
                "after the module (lower-case letters, digits and '_', starting with a letter)"
            )
        if version_path is None:
            raise RevisionRefused(
                f"there is no branch {branch!r} yet: to start it, give --version-path, the module's "
                "migrations folder (the one its manifest names in `migrations`)"
            )
        head = "base"
        candidate = f"{branch}_0001"
        options = {
            "branch_label": branch,
            "depends_on": FIRST_PLATFORM_REVISION,
            "rev_id": None if candidate in known else candidate,
        }
    try:
        result = command.revision(
            config,
            message=message,
            autogenerate=autogenerate,
            head=head,
            version_path=str(version_path) if version_path else None,
            **options,
        )
    except CommandError as error:
        reason = str(error).rstrip(".")
        hint = ": run `perron db upgrade` first" if "not up to date" in reason else ""
        raise RevisionRefused(f"{reason}{hint}") from None
    return result if isinstance(result, list) else [result]
