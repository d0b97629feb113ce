"""Work that must happen only once a transaction is committed.

A change that causes a side effect (a cache to drop, a job to run, a signal to send) records
it with :func:`after_commit`. The callback runs right after the commit; a rollback forgets
it, so a change that did not happen causes nothing. Callbacks run synchronously inside
SQLAlchemy's commit and must only hand work over (wake a task, put in a queue), never block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from perron.logging import get_logger

log = get_logger("perron.db")

_KEY = "perron.after_commit"


def after_commit(session: Session | AsyncSession, callback: Callable[[], None]) -> None:
    target = session.sync_session if isinstance(session, AsyncSession) else session
    target.info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks: list[Callable[[], None]] = session.info.pop(_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("after_commit.failed", callback=getattr(callback, "__qualname__", repr(callback)))


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: Any) -> None:
    # Runs after after_commit has taken its callbacks; what is left was rolled back.
    # (A callback recorded inside a savepoint that alone rolls back still runs: keep side
    # effects out of savepoints.)
    if transaction.parent is None:
        session.info.pop(_KEY, None)
