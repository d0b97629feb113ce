"""Deleting a commune for good, once an archive holds exactly what is deleted.

"Exactly" is checked, not assumed: in the deletion's own transaction the commune's current
content is fingerprinted the way an export writes it (every archived table's row count and
SHA-256, and its media files) and compared with the exports on record. The deletion goes
ahead only if one of them matches and its file is still intact (its SHA-256 is checked);
otherwise it says which tables changed since the latest export. On SQLite the write
transaction holds the database's one write lock, on PostgreSQL it is REPEATABLE READ: a
change committed by someone else meanwhile makes the deletion fail (nothing deleted)
instead of being lost unarchived.

The confirmation must be the commune's name, exactly as written in one of its languages.
Rows go in dependency order (every tenant table, transient ones included, then the
domains and the commune); the commune's audit log goes with it (it is in the archive; the
application's role cannot delete audit rows on PostgreSQL, so a database function owned by
the schema does it, and only when an export on record holds as many entries as the log).
The deletion is audited in the platform log; caches are invalidated, the Keycloak clients
are queued for retirement, and the media folder is removed once the deletion is committed.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.audit import AuditEntry
from perron.billing.models import BillingCustomer
from perron.cache import invalidate
from perron.config import Settings
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import Conflict, Invalid, NotFound
from perron.i18n import format_list, gettext
from perron.identity.jobs import commune_login_retired
from perron.logging import get_logger
from perron.media import MediaStore
from perron.tenancy.archive.export import export_path, list_exports, read_snapshot, sha256_of
from perron.tenancy.archive.models import CommuneExport
from perron.tenancy.archive.tables import CommuneState, current_state, tenant_models_for_deletion
from perron.tenancy.models import Commune, Domain

log = get_logger("perron.archive")

ERASE_AUDIT_FUNCTION = "perron_erase_commune_audit"
"""PostgreSQL function (migration ``0011_archive``) deleting a commune's audit entries."""


@dataclass(frozen=True)
class DeletionReport:
    commune_id: UUID
    slug: str
    export: CommuneExport
    """The archive that holds what was deleted."""
    rows: dict[str, int]
    """Rows deleted, per table (transient tables included)."""
    media_files: int


def _normal(value: str) -> str:
    return unicodedata.normalize("NFC", value.strip())


def check_confirmation(commune: Commune, confirmation: str) -> None:
    """Refuse (:class:`Invalid`) a confirmation that is not the commune's name exactly as
    written in one of its languages."""
    names = [_normal(name) for name in commune.names.values()]
    if not isinstance(confirmation, str) or _normal(confirmation) not in names:
        raise Invalid(
            "confirmation",
            gettext(
                "To delete %(slug)s, type its name exactly as it is written in one of its languages "
                "(%(names)s); “%(given)s” is not its name."
            )
            % {
                "slug": commune.slug,
                "names": format_list([f"“{name}”" for name in dict.fromkeys(names)], "or"),
                "given": confirmation[:200] if isinstance(confirmation, str) else "",
            },
        )


def _intact(settings: Settings, export: CommuneExport) -> bool:
    try:
        return sha256_of(export_path(settings, export)) == export.sha256
    except (NotFound, OSError):
        return False


def _changed(export: CommuneExport, state: CommuneState) -> list[str]:
    changed = sorted(
        name
        for name in set(export.tables) | set(state.tables)
        if name not in state.tables or export.tables.get(name) != state.tables[name].as_json()
    )
    if export.media_sha256 != state.media_sha256:
        changed.append(gettext("its media files"))
    return changed


async def _matching(
    settings: Settings, slug: str, exports: list[CommuneExport], state: CommuneState
) -> CommuneExport:
    """The newest export holding exactly the commune's current state, with its file intact."""
    matching = [export for export in exports if not _changed(export, state)]
    for export in matching:
        if await asyncio.to_thread(_intact, settings, export):
            return export
    if matching:
        raise Conflict(
            gettext(
                "The export of %(slug)s that holds its current state (%(file)s) is missing or "
                "damaged: export the commune again before deleting it."
            )
            % {"slug": slug, "file": matching[0].file_name}
        )
    latest = exports[0]
    raise Conflict(
        gettext(
            "%(slug)s changed since its latest export (%(file)s): %(tables)s. Export it again before "
            "deleting it (suspending it first keeps it from changing)."
        )
        % {"slug": slug, "file": latest.file_name, "tables": format_list(_changed(latest, state))}
    )


async def _find(session: AsyncSession, commune: str | UUID) -> Commune:
    query = select(Commune).where(
        Commune.id == commune if isinstance(commune, UUID) else Commune.slug == commune
    )
    found = await session.scalar(query)
    if found is None:
        raise NotFound(gettext("No commune is %(commune)s.") % {"commune": commune})
    return found


async def delete_commune(
    database: Database, settings: Settings, commune: str | UUID, *, confirmation: str
) -> DeletionReport:
    """Delete a commune (by slug or id) and everything it owns, after checking that
    ``confirmation`` is its name and that an intact export holds its current content.

    Raises :class:`NotFound` (no such commune), :class:`Invalid` (field ``confirmation``:
    not its name) or :class:`Conflict` (no export, the export file is damaged, or the
    commune changed since); in every case nothing is deleted. Acts as the current actor.
    """
    media = MediaStore.for_settings(settings)
    with platform_scope("delete a commune: check the request"):
        async with database.session() as session:
            found = await _find(session, commune)
            check_confirmation(found, confirmation)
            exports = await list_exports(session, commune_id=found.id, limit=20)
            pays = await session.scalar(
                select(BillingCustomer.id).where(BillingCustomer.commune_id == found.id)
            )
    commune_id, slug = found.id, found.slug
    if pays is not None:
        # Its customer, subscriptions and invoices are the deployment's accounts: they are kept,
        # and they name the commune.
        raise Conflict(
            gettext(
                "%(slug)s pays for its modules through Stripe: its billing records are kept for the "
                "accounts, so it cannot be deleted. Archive it instead."
            )
            % {"slug": slug}
        )
    if not exports:
        raise Conflict(gettext("%(slug)s has no export: export it first, then delete it.") % {"slug": slug})
    try:
        with platform_scope(f"delete commune {slug}"):
            async with database.transaction() as session:
                await read_snapshot(session, database.dialect)
                current = await _find(session, commune_id)
                with tenant_scope(commune_id):
                    media_names = media.every_name()
                state = await current_state(session, commune_id, media_names)
                export = await _matching(settings, slug, exports, state)
                rows = await _delete_rows(session, commune_id, database.dialect)
                invalidate(session, commune_id, hosts=True)
                commune_login_retired(session)
                audit.record_platform(
                    session,
                    action="commune.delete",
                    object_type="commune",
                    object_id=slug,
                    intercommunale_id=current.intercommunale_id,
                    changes={
                        "commune": [str(commune_id), None],
                        "names": [dict(current.names), None],
                        "nis_code": [current.nis_code, None],
                        "export": [str(export.id), None],
                        "archive": [export.file_name, None],
                        "rows": [sum(rows.values()), 0],
                        "media_files": [len(media_names), 0],
                    },
                )
    except (IntegrityError, DBAPIError) as error:
        if not isinstance(error, IntegrityError) and getattr(error.orig, "sqlstate", None) != "40001":
            raise
        raise Conflict(
            gettext("%(slug)s changed while it was being deleted; nothing was deleted. Export it again.")
            % {"slug": slug}
        ) from None
    with tenant_scope(commune_id):
        removed = await asyncio.to_thread(media.delete_all)
    log.info("commune.deleted", commune=slug, export=str(export.id), rows=sum(rows.values()), media=removed)
    return DeletionReport(commune_id, slug, export, rows, removed)


async def _delete_rows(session: AsyncSession, commune_id: UUID, dialect: str) -> dict[str, int]:
    rows: dict[str, int] = {}
    for model in tenant_models_for_deletion():
        name = model.__tablename__
        if model is AuditEntry and dialect == "postgresql":
            erased = await session.scalar(
                text(f"SELECT {ERASE_AUDIT_FUNCTION}(:commune)"), {"commune": commune_id}
            )
            rows[name] = int(erased or 0)
            continue
        result = await session.execute(
            delete(model).where(model.tenant_id == commune_id).execution_options(synchronize_session=False)  # type: ignore[attr-defined]
        )
        rows[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    for model, column in ((Domain, Domain.commune_id), (Commune, Commune.id)):
        result = await session.execute(
            delete(model).where(column == commune_id).execution_options(synchronize_session=False)
        )
        rows[model.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return rows
