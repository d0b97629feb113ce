"""Two communes full of data, and the means to compare a commune table by table.

``filled`` gives ``alpha`` (member of the intercommunale ``bep``) and ``bravo`` a row in every
tenant-owned table (the isolation suite's factories, so a new table is covered the day it
gets its factory), news articles, an audit trail, a street with coordinates and a logo each.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from perron_news.models import Article
from PIL import Image
from sqlalchemy import func, select

from perron.db.base import TENANT_TABLES, Base
from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.media import MediaStore
from perron.tenancy import actions
from perron.tenancy.models import Commune
from perron.territory.models import Street
from tests.conftest import MakeCommune
from tests.isolation.conftest import FACTORIES

Snapshot = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


def logo_png(colour: str) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (300, 100), colour).save(output, "PNG")
    return output.getvalue()


@dataclass
class Filled:
    alpha: Commune
    bravo: Commune


async def fill(database: Database, media: MediaStore, commune: Commune, colour: str) -> None:
    with platform_scope("test: fill a commune"):
        async with database.transaction() as session:
            for factory in FACTORIES.values():
                await factory(session, commune.id)
                await session.flush()
            session.add(
                Article(
                    tenant_id=commune.id,
                    title={"fr": f"Travaux à {commune.slug}", "nl": "Werken"},
                    summary={"fr": "Résumé — « accents » ✓"},
                    body={"fr": "Texte\nsur deux lignes"},
                )
            )
            session.add(
                Street(
                    tenant_id=commune.id,
                    names={"fr": f"Rue de {commune.slug}"},
                    postcode="4280",
                    match_key=f"rue de {commune.slug}",
                    lon=5.0812345678901234,
                    lat=50.6712345678901234,
                )
            )
            await actions.update_branding(session, commune.id, tagline={"fr": f"Bienvenue à {commune.slug}"})
            await actions.set_logo(session, commune.id, logo_png(colour), "logo.png", media=media)


@pytest.fixture
async def filled(make_commune: MakeCommune, database: Database, settings: Any) -> Filled:
    with platform_scope("test: an intercommunale"):
        async with database.transaction() as session:
            await actions.create_intercommunale(session, slug="bep", names={"fr": "BEP"})
    alpha = await make_commune(
        "alpha",
        languages=["fr", "nl"],
        names={"fr": "Alpha-sur-Meuse", "nl": "Alfa aan de Maas"},
        domains=["alpha.test", "www.alpha.test"],
        intercommunale="bep",
    )
    bravo = await make_commune("bravo")
    media = MediaStore.for_settings(settings)
    await fill(database, media, alpha, "#0b5e3c")
    await fill(database, media, bravo, "#7a1f3d")
    return Filled(alpha, bravo)


def _owner(table: Any) -> Any:
    if table.name == "communes":
        return table.c.id
    if "tenant_id" in table.c:
        return table.c.tenant_id
    return table.c.commune_id


def commune_tables() -> list[Any]:
    """Every table holding rows of a commune: tenant-owned, or a platform table naming it."""
    return [
        table
        for table in Base.metadata.sorted_tables
        if table.name == "communes" or table.name in TENANT_TABLES or "commune_id" in table.c
    ]


async def snapshot(database: Database, commune_id: UUID, tables: list[str] | None = None) -> Snapshot:
    """Every row of the commune, every column, by table and primary key."""
    result: Snapshot = {}
    with platform_scope("test: read a commune whole"):
        async with database.session() as session:
            for table in commune_tables():
                if tables is not None and table.name not in tables:
                    continue
                rows = await session.execute(select(table).where(_owner(table) == commune_id))
                keys = [column.name for column in table.primary_key.columns]
                result[table.name] = {
                    tuple(row[key] for key in keys): dict(row) for row in (r._mapping for r in rows)
                }
    return result


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs, table by table, row by row, column by column (empty when identical)."""
    problems: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, {}), after.get(name, {})
        for key in sorted(set(old) - set(new), key=str):
            problems.append(f"{name}: row {key} is missing")
        for key in sorted(set(new) - set(old), key=str):
            problems.append(f"{name}: row {key} is new")
        for key in sorted(set(old) & set(new), key=str):
            for column in old[key]:
                if old[key][column] != new[key].get(column):
                    problems.append(
                        f"{name}: row {key}, {column}: {old[key][column]!r} != {new[key].get(column)!r}"
                    )
    return problems


def assert_same(before: Snapshot, after: Snapshot) -> None:
    problems = differences(before, after)
    assert not problems, "the commune differs:\n  " + "\n  ".join(problems[:50])


def media_files(media: MediaStore, commune_id: UUID) -> dict[str, bytes]:
    with tenant_scope(commune_id):
        return {name: media.read(name) for name in media.every_name()}


async def count_everything(database: Database) -> dict[str, int]:
    """Rows in every table of the deployment (to prove a refusal wrote nothing)."""
    with platform_scope("test: count every table"):
        async with database.session() as session:
            return {
                table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }


def files_under(root: Path) -> list[str]:
    return (
        sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
        if root.exists()
        else []
    )


# Rewriting archives (tampering) ----------------------------------------------------------


def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def rewrite(
    source: Path,
    target: Path,
    *,
    change: Callable[[dict[str, bytes]], None] | None = None,
    manifest: Callable[[dict[str, Any]], None] | None = None,
    resign: bool = False,
) -> Path:
    """A copy of an archive with members changed, its manifest edited, and (``resign``) the
    sizes and checksums recomputed, as a forger would."""
    import hashlib

    members = read_members(source)
    if change is not None:
        change(members)
    document = json.loads(members["manifest.json"])
    if resign:
        for entry in [*document["tables"], *document["media"]]:
            data = members[entry["file"]]
            entry["size"] = len(data)
            entry["sha256"] = hashlib.sha256(data).hexdigest()
    if manifest is not None:
        manifest(document)
    members["manifest.json"] = json.dumps(document).encode()
    return write_members(target, members)
