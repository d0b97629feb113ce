"""Export → delete → import gives back the commune exactly, table by table, and never
touches another commune."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from perron.audit import PlatformAuditEntry
from perron.db.engine import Database
from perron.db.scope import platform_scope
from perron.errors import Conflict, Invalid
from perron.i18n import using_language
from perron.media import MediaStore
from perron.tenancy import actions
from perron.tenancy.archive import (
    FORMAT_VERSION,
    archived_tables,
    delete_commune,
    export_commune,
    export_path,
    import_commune,
    left_out_tables,
    list_exports,
)
from perron.tenancy.models import Commune
from perron.testing.database import reset_schema, wipe
from tests.archive.conftest import (
    Filled,
    assert_same,
    commune_tables,
    media_files,
    snapshot,
)
from tests.conftest import POSTGRES, ClientFactory, base_settings

ARCHIVED = [table.name for table in archived_tables()]


def english() -> Any:
    return using_language("en")


async def platform_log(database: Database, action: str) -> list[PlatformAuditEntry]:
    with platform_scope("test: read the platform log"):
        async with database.session() as session:
            return list(
                await session.scalars(select(PlatformAuditEntry).where(PlatformAuditEntry.action == action))
            )


async def test_export_delete_import_restores_the_commune_exactly(
    filled: Filled, database: Database, settings: Any, client_for: ClientFactory
) -> None:
    alpha, bravo = filled.alpha, filled.bravo
    media = MediaStore.for_settings(settings)
    before = await snapshot(database, alpha.id, ARCHIVED)
    transient = await snapshot(database, alpha.id, ["web_sessions", "login_attempts", "job_runs"])
    bravo_before = await snapshot(database, bravo.id)
    alpha_files = media_files(media, alpha.id)
    assert len(alpha_files) == 1 and all(before[name] for name in ARCHIVED), "every table holds rows"
    logo = await client_for("alpha.test").get("/logo")
    assert logo.status_code == 200

    with english(), pytest.raises(Conflict, match="alpha has no export: export it first"):
        await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")

    export = await export_commune(database, settings, "alpha")
    assert export.tables["news_articles"]["rows"] == 2  # the factory's and ours
    assert export.media_files == 1 and export.rows == sum(len(before[name]) for name in ARCHIVED)

    with english(), pytest.raises(Invalid, match="type its name exactly") as refused:
        await delete_commune(database, settings, "alpha", confirmation="alpha")
    assert "“Alpha-sur-Meuse” or “Alfa aan de Maas”" in refused.value.reason
    with english(), pytest.raises(Invalid):
        await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-meuse")
    assert_same(before, await snapshot(database, alpha.id, ARCHIVED))

    report = await delete_commune(database, settings, "alpha", confirmation=" Alfa aan de Maas ")
    assert report.export.id == export.id and report.media_files == 1
    assert report.rows["communes"] == 1 and report.rows["web_sessions"] >= 1
    gone = await snapshot(database, alpha.id)
    # Kept on purpose: the record of its archives, and the cache notices of its deletion.
    assert {name for name, rows in gone.items() if rows} == {"commune_exports", "cache_invalidations"}
    assert media_files(media, alpha.id) == {}
    assert not (media.root / str(alpha.id)).exists()
    assert (await client_for("alpha.test").get("/")).status_code == 404
    assert_same(bravo_before, await snapshot(database, bravo.id))
    [deleted] = await platform_log(database, "commune.delete")
    assert deleted.object_id == "alpha" and deleted.changes["export"] == [str(export.id), None]

    imported = await import_commune(database, settings, export_path(settings, export))
    assert imported.warnings == [] and imported.media_files == 1
    assert_same(before, await snapshot(database, alpha.id, ARCHIVED))
    assert all(transient.values())
    left_out = await snapshot(database, alpha.id, list(transient))
    assert {name: rows for name, rows in left_out.items() if rows} == {}, "transient rows are not restored"
    assert media_files(media, alpha.id) == alpha_files
    assert_same(bravo_before, await snapshot(database, bravo.id))
    assert len(await platform_log(database, "commune.import")) == 1

    site = client_for("alpha.test")
    home = await site.get("/")
    assert home.status_code == 200 and "/logo?v=" in home.text and "Bienvenue à alpha" in home.text
    restored_logo = await site.get("/logo")
    assert restored_logo.status_code == 200 and restored_logo.content == logo.content
    assert (await client_for("www.alpha.test").get("/")).status_code == 301


async def test_a_commune_that_changed_since_its_export_is_not_deleted(
    filled: Filled, database: Database, settings: Any
) -> None:
    alpha = filled.alpha
    await export_commune(database, settings, "alpha")
    with platform_scope("test: a staff member changes the branding"):
        async with database.transaction() as session:
            await actions.update_branding(session, alpha.id, tagline={"fr": "Nouveau slogan"})
    before = await snapshot(database, alpha.id, ARCHIVED)
    with (
        english(),
        pytest.raises(
            Conflict, match=r"alpha changed since its latest export .*: audit_entries and brandings"
        ),
    ):
        await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    assert_same(before, await snapshot(database, alpha.id, ARCHIVED))

    second = await export_commune(database, settings, "alpha")
    export_path(settings, second).write_bytes(b"damaged")
    with english(), pytest.raises(Conflict, match="is missing or damaged"):
        await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    assert_same(before, await snapshot(database, alpha.id, ARCHIVED))

    third = await export_commune(database, settings, "alpha")
    report = await delete_commune(database, settings, "alpha", confirmation="Alpha-sur-Meuse")
    assert report.export.id == third.id


async def test_the_archive_holds_what_the_manifest_says_and_nothing_of_another_commune(
    filled: Filled, database: Database, settings: Any
) -> None:
    alpha, bravo = filled.alpha, filled.bravo
    export = await export_commune(database, settings, bravo.id)
    with platform_scope("test"):
        async with database.session() as session:
            assert [e.id for e in await list_exports(session, commune_id=bravo.id)] == [export.id]
            assert await list_exports(session, commune_id=alpha.id) == []
    path = export_path(settings, export)
    assert path.parent == Path(settings.data_dir) / "exports" and path.name.startswith("bravo-")
    assert not list(path.parent.glob(".export-*")), "no temporary file is left"
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        members = {name: archive.read(name) for name in archive.namelist()}
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["commune"]["id"] == str(bravo.id) and manifest["commune"]["intercommunale"] is None
    assert manifest["left_out"] == left_out_tables()
    assert set(manifest["left_out"]) >= {"web_sessions", "login_attempts", "job_runs", "outbox_messages"}
    assert [entry["name"] for entry in manifest["tables"]] == ARCHIVED
    assert "news_articles" in ARCHIVED and "web_sessions" not in ARCHIVED
    assert set(members) == {"manifest.json"} | {e["file"] for e in manifest["tables"] + manifest["media"]}
    forbidden = [str(alpha.id).encode(), alpha.id.hex.encode(), b"alpha.test", b"Alpha-sur-Meuse"]
    for name, data in members.items():
        for needle in forbidden:
            assert needle not in data, f"{name} holds {needle!r}"
    for entry in manifest["tables"]:
        lines = members[entry["file"]].decode().splitlines()
        header = json.loads(lines[0].removesuffix(',"rows":[') + "}")
        owner = [name for name, _ in header["columns"]].index(
            {"communes": "id", "domains": "commune_id"}.get(entry["name"], "tenant_id")
        )
        rows = [json.loads(line.removesuffix(",")) for line in lines[1:-1]]
        assert len(rows) == entry["rows"] and all(row[owner] == str(bravo.id) for row in rows)
    street = members["tables/territory_streets.json"].decode()
    assert repr(5.0812345678901234) in street, "floats keep every digit"
    assert json.loads(members["tables/commune_settings.json"].decode().splitlines()[0][:-9] + "}")[
        "columns"
    ] == [["tenant_id", "uuid"], ["namespace", "string"], ["values", "json"], ["updated_at", "datetime"]]


async def test_import_into_an_empty_deployment(
    filled: Filled, database: Database, settings: Any, tmp_path: Path
) -> None:
    alpha = filled.alpha
    before = await snapshot(database, alpha.id, ARCHIVED)
    files = media_files(MediaStore.for_settings(settings), alpha.id)
    export = await export_commune(database, settings, "alpha")
    archive = tmp_path / "alpha.zip"
    archive.write_bytes(export_path(settings, export).read_bytes())

    # A second deployment: its own data folder and, on SQLite, its own fresh database. The
    # PostgreSQL pass has one database: emptied, it is the same as a fresh deployment's.
    empty = base_settings(tmp_path / "second")
    if POSTGRES:
        wipe(settings)
    else:
        reset_schema(empty)
    second = Database(empty.database)
    try:
        with english():
            report = await import_commune(second, empty, archive)
        assert report.warnings and "intercommunale bep does not exist here" in report.warnings[0]
        after = await snapshot(second, alpha.id, ARCHIVED)
        expected = dict(before)
        [key] = expected["communes"]
        expected["communes"] = {key: {**expected["communes"][key], "intercommunale_id": None}}
        assert_same(expected, after)
        assert media_files(MediaStore.for_settings(empty), alpha.id) == files
        with platform_scope("test"):
            async with second.session() as session:
                assert [c.slug for c in await session.scalars(select(Commune))] == ["alpha"]
    finally:
        await second.dispose()


def test_every_table_about_a_commune_is_archived_or_left_out_with_a_reason() -> None:
    archived = set(ARCHIVED)
    left_out = left_out_tables()
    assert not archived & set(left_out)
    for table in commune_tables():
        assert table.name in archived or left_out.get(table.name), table.name
