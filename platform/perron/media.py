"""Files a commune uploads: its logo today, photos and documents as modules need them.

Each commune's files live in their own folder, ``<data_dir>/media/<tenant_id>/``, and the
commune always comes from the scope in force (:mod:`perron.db.scope`), never from the
caller: code running for one commune has no way to name another's files. The platform scope
has no files of its own; operator code acting for a commune opens that commune's scope
around the call (after checking it may act on it, as every action does).

A stored file is named ``<kind>/<sha256 of the content>.<extension>``: the same content is
stored once, a name never changes meaning, and a URL built from it may be cached forever.
Names are checked against that exact shape before they touch the file system, so no name
(``../``, an absolute path, a NUL byte) can reach outside the commune's folder. Writes go
to a temporary file renamed into place, so a reader never sees half a file.

Inside a database transaction, :meth:`MediaStore.put_for` and
:meth:`MediaStore.delete_after_commit` keep files and rows in step: a file written for a
change that is rolled back is removed again, and a file the change stops using is deleted
only once the change is committed.

The API is deliberately small (put, open, read, delete) so that an object store can take
the place of the local folder when a deployment grows past one machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from perron.config import Settings
from perron.db.hooks import after_commit
from perron.db.scope import require_tenant_id
from perron.logging import get_logger

log = get_logger("perron.media")

MEDIA_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/x-icon": "ico",
    "application/pdf": "pdf",
}
"""What may be stored, with the extension its files get (the extension gives the type back)."""
_TYPES_BY_EXTENSION = {extension: media_type for media_type, extension in MEDIA_TYPES.items()}

_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
_NAME = re.compile(r"(?P<kind>[a-z][a-z0-9-]{0,31})/(?P<digest>[0-9a-f]{64})\.(?P<extension>[a-z0-9]{2,5})")
_ROLLBACK_KEY = "perron.media.discard_on_rollback"


class MediaError(ValueError):
    """A kind, name or media type that does not follow the rules; nothing was touched."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    media_type: str
    size: int


def media_type_of(name: str) -> str:
    """The media type of a stored file, from its name."""
    return _TYPES_BY_EXTENSION[_parse(name).group("extension")]


def _parse(name: str) -> re.Match[str]:
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None or match.group("extension") not in _TYPES_BY_EXTENSION:
        raise MediaError(f"{name!r} is not the name of a stored file")
    return match


class MediaStore:
    """The media folders of every commune under ``root``; each call reaches only the folder
    of the commune in scope."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @staticmethod
    def for_settings(settings: Settings) -> MediaStore:
        return _store_at(Path(settings.data_dir) / "media")

    # Where things are -------------------------------------------------------------------

    def _folder(self, tenant_id: UUID | None = None) -> Path:
        tenant = tenant_id if tenant_id is not None else require_tenant_id()
        return self.root / str(tenant)

    def _path(self, name: str, folder: Path | None = None) -> Path:
        match = _parse(name)
        digest = match.group("digest")
        base = folder if folder is not None else self._folder()
        path = base / match.group("kind") / digest[:2] / f"{digest}.{match.group('extension')}"
        # The name's shape already rules out escaping; this says so once more, cheaply.
        if not path.is_relative_to(self.root):
            raise MediaError(f"{name!r} is not the name of a stored file")
        return path

    # Reading and writing ----------------------------------------------------------------

    def put(self, kind: str, data: bytes, media_type: str) -> str:
        """Store ``data`` for the commune in scope; returns its name (``kind/<sha256>.ext``).
        Storing the same content again returns the same name and writes nothing."""
        return self._put(kind, data, media_type)[0]

    def _put(self, kind: str, data: bytes, media_type: str) -> tuple[str, bool]:
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise MediaError(f"{kind!r} is not a kind of media: use lower-case letters, digits and hyphens")
        extension = MEDIA_TYPES.get(media_type)
        if extension is None:
            raise MediaError(f"{media_type!r} cannot be stored; accepted: {', '.join(sorted(MEDIA_TYPES))}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MediaError("only bytes can be stored")
        name = f"{kind}/{hashlib.sha256(data).hexdigest()}.{extension}"
        path = self._path(name)
        if path.is_file():
            return name, False
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return name, True

    def open(self, name: str) -> BinaryIO:
        """The stored file for reading; :class:`FileNotFoundError` if the commune in scope has
        no file of that name."""
        return self._path(name).open("rb")

    def read(self, name: str) -> bytes:
        with self.open(name) as file:
            return file.read()

    def stat(self, name: str) -> StoredFile | None:
        try:
            size = self._path(name).stat().st_size
        except FileNotFoundError:
            return None
        return StoredFile(name, media_type_of(name), size)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> bool:
        """Remove a stored file of the commune in scope; returns whether it existed."""
        return _unlink(self._path(name))

    def names(self, kind: str) -> list[str]:
        """Every stored file of one kind, for the commune in scope."""
        if not _KIND.fullmatch(kind):
            raise MediaError(f"{kind!r} is not a kind of media")
        folder = self._folder() / kind
        if not folder.is_dir():
            return []
        return sorted(
            f"{kind}/{path.name}"
            for path in folder.glob("??/*.*")
            if not path.name.startswith(".") and _NAME.fullmatch(f"{kind}/{path.name}")
        )

    def every_name(self) -> list[str]:
        """Every stored file of the commune in scope, of every kind (commune archives)."""
        folder = self._folder()
        if not folder.is_dir():
            return []
        kinds = sorted(path.name for path in folder.iterdir() if path.is_dir() and _KIND.fullmatch(path.name))
        return [name for kind in kinds for name in self.names(kind)]

    def delete_all(self) -> int:
        """Remove the folder of the commune in scope with everything in it (the commune was
        deleted); returns how many stored files it held."""
        folder = self._folder()
        count = len(self.every_name())
        if folder.is_dir():
            shutil.rmtree(folder)
        return count

    # In step with a database transaction --------------------------------------------

    def put_for(self, session: AsyncSession | Session, kind: str, data: bytes, media_type: str) -> str:
        """:meth:`put`, for a change made in ``session``'s transaction: a file this call
        created is removed again if the transaction is rolled back."""
        name, created = self._put(kind, data, media_type)
        if created:
            target = session.sync_session if isinstance(session, AsyncSession) else session
            target.info.setdefault(_ROLLBACK_KEY, []).append(self._path(name))
        return name

    def delete_after_commit(self, session: AsyncSession | Session, name: str) -> None:
        """Delete a file of the commune in scope once ``session``'s transaction commits (a
        rolled-back change keeps it, as the rows still refer to it)."""
        path = self._path(name)

        def delete() -> None:
            _unlink(path, reason="no longer used")

        after_commit(session, delete)


def _unlink(path: Path, reason: str | None = None) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError:
        log.warning("media.delete_failed", path=str(path), reason=reason, exc_info=True)
        return False
    return True


@cache
def _store_at(root: Path) -> MediaStore:
    return MediaStore(root)


@event.listens_for(Session, "after_commit")
def _keep_committed_files(session: Session) -> None:
    session.info.pop(_ROLLBACK_KEY, None)


@event.listens_for(Session, "after_transaction_end")
def _discard_uncommitted_files(session: Session, transaction: Any) -> None:
    # After a commit, the list is gone (above); what is left belonged to a rolled-back change.
    if transaction.parent is None:
        for path in session.info.pop(_ROLLBACK_KEY, []):
            if _unlink(path):
                log.info("media.discarded", path=str(path), reason="the change was rolled back")
