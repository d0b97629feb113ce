"""A damaged, edited, foreign or colliding archive is refused with the reason, and the
deployment is left exactly as it was (rows and files)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from perron.db.engine import Database
from perron.db.guard import LOCKS
from perron.db.scope import IsolationError, platform_scope, tenant_scope
from perron.i18n import using_language
from perron.media import MediaStore
from perron.tenancy.archive import (
    ArchiveRefused,
    check_archive,
    delete_commune,
    export_commune,
    export_path,
    import_commune,
)
from perron.tenancy.archive import importing as importing_module
from tests.archive.conftest import Filled, count_everything, files_under, rewrite, write_members
from tests.conftest import POSTGRES, MakeCommune


@pytest.fixture
async def exported(filled: Filled, database: Database, settings: Any, tmp_path: Path) -> Path:
    """alpha's archive (copied out), with alpha deleted: the archive imports cleanly."""
    export = await export_commune(database, settings, "alpha")
    archive = tmp_path / "alpha.zip"
    archive.write_bytes(export_path(settings, export).read_bytes())
    await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    return archive


@pytest.fixture
def unchanged(database: Database, settings: Any) -> Any:
    """``async with unchanged():`` fails if the block changed a row or a media file."""
    from contextlib import asynccontextmanager

    media_root = MediaStore.for_settings(settings).root

    @asynccontextmanager
    async def watch() -> Any:
        rows, files = await count_everything(database), files_under(media_root)
        yield
        assert await count_everything(database) == rows
        assert files_under(media_root) == files

    return watch


async def refused(database: Database, settings: Any, path: Path) -> str:
    with using_language("en"), pytest.raises(ArchiveRefused) as refusal:
        await import_commune(database, settings, path)
    assert refusal.value.message.startswith("The archive cannot be imported; nothing was changed:")
    return "\n".join(refusal.value.problems)


async def test_the_clean_archive_imports(
    exported: Path, filled: Filled, database: Database, settings: Any
) -> None:
    """The archive the refusals below alter imports; a file an unfinished deletion left in
    the commune's media folder is removed with the import."""
    media = MediaStore.for_settings(settings)
    with tenant_scope(filled.alpha.id):
        stray = media.put("logo", b"\x89PNG left behind", "image/png")
    checked = await check_archive(database, settings, exported)
    assert checked.slug == "alpha" and checked.rows["news_articles"] == 2 and checked.warnings == []
    report = await import_commune(database, settings, exported, checked=checked)
    assert report.slug == "alpha" and report.leftovers_removed == 1
    with tenant_scope(filled.alpha.id):
        assert stray not in media.every_name() and len(media.every_name()) == 1


async def test_refusals_speak_the_persons_language(
    exported: Path, database: Database, settings: Any, tmp_path: Path
) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["format_version"] = 2

    with using_language("nl"), pytest.raises(ArchiveRefused) as refusal:
        await import_commune(database, settings, rewrite(exported, tmp_path / "v2.zip", manifest=edit))
    assert refusal.value.message == (
        "Het archief kan niet geïmporteerd worden; er werd niets gewijzigd:\n"
        "  - De formaatversie van het archief is 2; deze Perron leest alleen versie 1."
    )


async def test_a_changed_table_file_is_refused(
    exported: Path, database: Database, settings: Any, tmp_path: Path, unchanged: Any
) -> None:
    def edit(members: dict[str, bytes]) -> None:
        members["tables/accounts.json"] = members["tables/accounts.json"].replace(b"Seed", b"Evil")

    tampered = rewrite(exported, tmp_path / "tampered.zip", change=edit)
    async with unchanged():
        reason = await refused(database, settings, tampered)
    assert reason == (
        "tables/accounts.json does not match its checksum in the manifest: it was changed or damaged."
    )


async def test_a_wrong_checksum_is_refused(
    exported: Path, database: Database, settings: Any, tmp_path: Path, unchanged: Any
) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        entry = next(entry for entry in manifest["tables"] if entry["name"] == "brandings")
        entry["sha256"] = "0" * 64

    async with unchanged():
        reason = await refused(database, settings, rewrite(exported, tmp_path / "sum.zip", manifest=edit))
    assert "tables/brandings.json does not match its checksum" in reason


async def test_an_unknown_format_version_is_refused(
    exported: Path, database: Database, settings: Any, tmp_path: Path, unchanged: Any
) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["format_version"] = 99

    async with unchanged():
        reason = await refused(database, settings, rewrite(exported, tmp_path / "v99.zip", manifest=edit))
    assert reason == "The archive's format version is 99; this Perron reads version 1 only."


async def test_another_schema_is_refused_naming_both(
    exported: Path, database: Database, settings: Any, tmp_path: Path, unchanged: Any
) -> None:
    here = json.loads(zipfile.ZipFile(exported).read("manifest.json"))["schema_revisions"]

    def edit(manifest: dict[str, Any]) -> None:
        manifest["schema_revisions"] = ["0005_branding", "news_0001"]

    async with unchanged():
        reason = await refused(database, settings, rewrite(exported, tmp_path / "old.zip", manifest=edit))
    assert "made with the database schema at 0005_branding, news_0001" in reason
    assert f"this deployment is at {', '.join(here)}" in reason


async def test_what_is_not_an_archive_is_refused(
    exported: Path, database: Database, settings: Any, tmp_path: Path, unchanged: Any
) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    no_manifest = write_members(tmp_path / "empty.zip", {"tables/accounts.json": b"{}"})
    extra = rewrite(exported, tmp_path / "extra.zip", change=lambda members: members.update({"x.txt": b"?"}))
    async with unchanged():
        assert "is not a zip archive" in await refused(database, settings, junk)
        assert "has no manifest.json" in await refused(database, settings, no_manifest)
        assert "x.txt is in the archive but not in its manifest" in await refused(database, settings, extra)
        assert "There is no file" in await refused(database, settings, tmp_path / "missing.zip")


async def test_a_resigned_archive_carrying_another_communes_row_is_refused(
    exported: Path, filled: Filled, database: Database, settings: Any, tmp_path: Path, unchanged: Any
) -> None:
    forged = _forged(exported, tmp_path, str(filled.bravo.id))
    async with unchanged():
        reason = await refused(database, settings, forged)
    assert "tables/news_articles.json, row 1, belongs to another commune" in reason


def _forged(exported: Path, tmp_path: Path, owner: str) -> Path:
    """alpha's archive whose first news article is given to ``owner``, checksums redone."""

    def edit(members: dict[str, bytes]) -> None:
        lines = members["tables/news_articles.json"].decode().split("\n")
        row = json.loads(lines[1].removesuffix(","))
        row[0] = owner
        lines[1] = json.dumps(row, separators=(",", ":")) + ("," if lines[1].endswith(",") else "")
        members["tables/news_articles.json"] = "\n".join(lines).encode()

    return rewrite(exported, tmp_path / "forged.zip", change=edit, resign=True)


async def test_the_isolation_locks_hold_during_the_import(
    exported: Path,
    filled: Filled,
    database: Database,
    settings: Any,
    tmp_path: Path,
    unchanged: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the row check skipped, the import's own scope still stops a row of another
    commune: the ORM lock on both databases, and on PostgreSQL row-level security alone."""
    forged = _forged(exported, tmp_path, str(filled.bravo.id))
    monkeypatch.setattr(importing_module, "_check_rows", lambda *arguments: None)
    async with unchanged():
        with pytest.raises(IsolationError):
            await import_commune(database, settings, forged)
    if POSTGRES:
        LOCKS.orm = LOCKS.service = False
        async with unchanged():
            reason = await refused(database, settings, forged)
        assert "refused by row-level security" in reason


async def test_a_colliding_commune_is_refused_naming_each_collision(
    filled: Filled,
    database: Database,
    settings: Any,
    tmp_path: Path,
    make_commune: MakeCommune,
    unchanged: Any,
) -> None:
    export = await export_commune(database, settings, "alpha")
    archive = export_path(settings, export)
    async with unchanged():
        reason = await refused(database, settings, archive)
    assert f"This deployment already has the commune alpha with the same id ({filled.alpha.id})" in reason
    assert "A commune of this deployment already has the slug alpha." in reason
    assert f"NIS code {filled.alpha.nis_code} already belongs to the commune alpha here." in reason
    assert "The domain alpha.test already belongs to the commune alpha here." in reason
    assert "The domain www.alpha.test already belongs to the commune alpha here." in reason

    nis = filled.alpha.nis_code
    await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    await make_commune("other", nis_code=nis, domains=["other.test", "www.alpha.test"])
    await make_commune("alpha", domains=["new-alpha.test"])
    async with unchanged():
        reason = await refused(database, settings, archive)
    assert reason.splitlines() == [
        "A commune of this deployment already has the slug alpha.",
        f"NIS code {nis} already belongs to the commune other here.",
        "The domain www.alpha.test already belongs to the commune other here.",
    ]


async def test_a_collision_found_while_writing_rolls_everything_back(
    exported: Path,
    filled: Filled,
    database: Database,
    settings: Any,
    make_commune: MakeCommune,
    unchanged: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A domain taken between the check and the insert: the database refuses, the
    transaction rolls back, and the media files already written are removed again."""
    await make_commune("late", domains=["www.alpha.test"])

    async def no_conflicts(*arguments: Any) -> list[str]:
        return []

    monkeypatch.setattr(importing_module, "_conflicts", no_conflicts)
    media = MediaStore.for_settings(settings)
    async with unchanged():
        reason = await refused(database, settings, exported)
    assert reason.startswith("The archive collides with data of this deployment (")
    with tenant_scope(filled.alpha.id):
        assert media.every_name() == []


@pytest.mark.postgres
async def test_the_audit_log_stays_append_only_for_the_application(
    filled: Filled, database: Database
) -> None:
    """The deletion's database function erases a commune's log only in the platform scope
    and only when an export holds all of it; the application still cannot delete entries."""
    alpha = filled.alpha.id
    with tenant_scope(alpha), pytest.raises(DBAPIError, match="permission denied"):
        async with database.transaction() as session:
            await session.execute(text("DELETE FROM audit_entries"))
    with tenant_scope(alpha), pytest.raises(DBAPIError, match="needs the platform scope"):
        async with database.transaction() as session:
            await session.execute(text("SELECT perron_erase_commune_audit(:id)"), {"id": alpha})
    with platform_scope("test"), pytest.raises(DBAPIError, match="holds its whole audit log"):
        async with database.transaction() as session:
            await session.execute(text("SELECT perron_erase_commune_audit(:id)"), {"id": alpha})


@pytest.mark.postgres
async def test_a_change_committed_during_the_deletion_stops_it(
    filled: Filled, database: Database, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An article written by someone else after the deletion compared the commune with its
    archive: the deletion fails and deletes nothing, rather than lose the unarchived row."""
    from perron_news.models import Article

    from perron.tenancy.archive import deletion as deletion_module
    from perron.tenancy.archive.deletion import current_state
    from tests.archive.conftest import snapshot

    await export_commune(database, settings, "alpha")

    async def then_a_late_article(*arguments: Any) -> Any:
        state = await current_state(*arguments)
        with tenant_scope(filled.alpha.id):
            async with database.transaction() as session:
                session.add(Article(tenant_id=filled.alpha.id, title={"fr": "Écrit pendant ce temps"}))
        return state

    monkeypatch.setattr(deletion_module, "current_state", then_a_late_article)
    before = await snapshot(database, filled.alpha.id)
    from perron.errors import Conflict

    with using_language("en"), pytest.raises(Conflict, match="alpha changed while it was being deleted"):
        await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    after = await snapshot(database, filled.alpha.id)
    assert len(after["news_articles"]) == len(before["news_articles"]) + 1
    assert after["communes"] == before["communes"] and after["audit_entries"] == before["audit_entries"]


async def test_a_commune_paying_through_stripe_is_not_deleted(
    filled: Filled, database: Database, settings: Any, unchanged: Any
) -> None:
    """Its Stripe customer, subscriptions and invoices are the deployment's accounts."""
    from perron.billing.models import BillingCustomer
    from perron.errors import Conflict

    with platform_scope("test: alpha pays itself"):
        async with database.transaction() as session:
            session.add(BillingCustomer(stripe_customer_id="cus_alpha", commune_id=filled.alpha.id))
    await export_commune(database, settings, "alpha")
    async with unchanged():
        with using_language("en"), pytest.raises(Conflict) as refusal:
            await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    assert "pays for its modules through Stripe" in refusal.value.message
