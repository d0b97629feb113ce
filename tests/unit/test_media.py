"""A commune's stored files: reachable only from its own scope, by names that cannot escape."""

from __future__ import annotations

import hashlib
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from perron.db.scope import NoTenantScope, platform_scope, tenant_scope
from perron.media import MediaError, MediaStore, media_type_of

ALPHA = UUID("01900000-0000-7000-8000-00000000000a")
BRAVO = UUID("01900000-0000-7000-8000-00000000000b")
PNG = b"\x89PNG\r\n\x1a\n pretend image"


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def test_put_names_files_by_content_and_reads_them_back(store: MediaStore, tmp_path: Path) -> None:
    with tenant_scope(ALPHA):
        name = store.put("logo", PNG, "image/png")
        assert name == f"logo/{hashlib.sha256(PNG).hexdigest()}.png"
        assert store.put("logo", PNG, "image/png") == name  # the same content is stored once
        assert store.read(name) == PNG
        with store.open(name) as file:
            assert file.read() == PNG
        assert store.exists(name)
        stat = store.stat(name)
        assert stat is not None and (stat.media_type, stat.size) == ("image/png", len(PNG))
        assert store.names("logo") == [name]
        assert media_type_of(name) == "image/png"
    files = [path for path in (tmp_path / "media").rglob("*") if path.is_file()]
    assert len(files) == 1
    assert files[0].is_relative_to(tmp_path / "media" / str(ALPHA))
    assert not any(path.name.startswith(".upload-") for path in files)


def test_delete_removes_the_file_once(store: MediaStore) -> None:
    with tenant_scope(ALPHA):
        name = store.put("photo", b"\xff\xd8\xff a photo", "image/jpeg")
        assert store.delete(name) is True
        assert store.delete(name) is False
        assert not store.exists(name)
        assert store.stat(name) is None
        with pytest.raises(FileNotFoundError):
            store.read(name)


def test_a_commune_cannot_reach_another_communes_files(store: MediaStore) -> None:
    with tenant_scope(ALPHA):
        name = store.put("logo", PNG, "image/png")
    with tenant_scope(BRAVO):
        # Bravo knows the exact name (names are not secrets): it still reaches only its own folder.
        assert not store.exists(name)
        assert store.stat(name) is None
        assert store.names("logo") == []
        with pytest.raises(FileNotFoundError):
            store.read(name)
        assert store.delete(name) is False
    with tenant_scope(ALPHA):
        assert store.read(name) == PNG


def test_files_need_a_commune_in_scope(store: MediaStore) -> None:
    with pytest.raises(NoTenantScope):
        store.put("logo", PNG, "image/png")
    with platform_scope("test: the platform has no files of its own"), pytest.raises(NoTenantScope):
        store.put("logo", PNG, "image/png")
    assert not store.root.exists()


@pytest.mark.parametrize(
    "name",
    [
        "../secret.png",
        "/etc/passwd",
        "logo/../../outside.png",
        f"logo/{'a' * 64}.png/../../x",
        f"logo/{'a' * 63}.png",
        f"LOGO/{'a' * 64}.png",
        f"logo/{'A' * 64}.png",
        f"logo/{'a' * 64}.exe",
        f"logo/{'a' * 64}.png\x00",
        f"a/b/{'a' * 64}.png",
        "",
    ],
)
def test_names_that_could_escape_are_refused_before_touching_files(
    store: MediaStore, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep me")
    with tenant_scope(ALPHA):
        for operation in (store.read, store.delete, store.exists, store.stat, store.open):
            with pytest.raises(MediaError):
                operation(name)
    assert outside.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("kind", "media_type"),
    [("../logo", "image/png"), ("Logo", "image/png"), ("", "image/png"), ("logo", "image/svg+xml")],
)
def test_bad_kinds_and_types_store_nothing(store: MediaStore, kind: str, media_type: str) -> None:
    with tenant_scope(ALPHA), pytest.raises(MediaError):
        store.put(kind, PNG, media_type)
    assert not store.root.exists() or not any(store.root.rglob("*.*"))


@pytest.fixture
def session() -> Session:
    engine = create_engine("sqlite://")
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_a_file_written_for_a_rolled_back_change_is_removed(store: MediaStore, session: Session) -> None:
    with tenant_scope(ALPHA):
        kept = store.put("logo", b"already there", "image/png")
        session.execute(text("SELECT 1"))
        written = store.put_for(session, "logo", PNG, "image/png")
        again = store.put_for(session, "logo", b"already there", "image/png")
        assert store.exists(written)
        session.rollback()
        assert not store.exists(written)
        assert again == kept and store.exists(kept)  # it existed before: not this change's to remove


def test_a_file_written_for_a_committed_change_stays(store: MediaStore, session: Session) -> None:
    with tenant_scope(ALPHA):
        session.execute(text("SELECT 1"))
        written = store.put_for(session, "logo", PNG, "image/png")
        session.commit()
        session.execute(text("SELECT 1"))
        session.rollback()  # a later rollback does not undo the committed change's file
        assert store.exists(written)


def test_files_a_change_stops_using_go_only_when_it_commits(store: MediaStore, session: Session) -> None:
    with tenant_scope(ALPHA):
        old = store.put("logo", PNG, "image/png")
        session.execute(text("SELECT 1"))
        store.delete_after_commit(session, old)
        session.rollback()
        assert store.exists(old)
        session.execute(text("SELECT 1"))
        store.delete_after_commit(session, old)
        assert store.exists(old)
        session.commit()
        assert not store.exists(old)
