"""Activity days: who used a commune's site on which day, and which module.

One row per person, per module, per day (``module`` empty: "used the site"), written at most
once a day by the request path (:mod:`perron.adoption.recording`). The rows are personal data:
they go with the account (foreign key, ``ON DELETE CASCADE``, in the deleting transaction),
appear in the person's data download and are deleted after :data:`RETENTION_DAYS`.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from sqlalchemy import Date, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from perron.db.base import Base, TenantOwned

SITE = ""
"""``module`` of the row saying the person used the site at all (any page)."""

RETENTION_DAYS = 396
"""About 13 months: the longest view (52 weeks, with the current one) stays complete, and
nothing older is kept."""


def week_of(day: dt.date) -> dt.date:
    """The Monday of ``day``'s ISO week (weeks are named by their Monday, so 28 December 2026
    and 3 January 2027 fall in the same week)."""
    return day - dt.timedelta(days=day.weekday())


class ActivityDay(TenantOwned, Base):
    """A person used the commune's site (``module`` empty) or one module on a Brussels day."""

    __tablename__ = "activity_days"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name="fk_activity_days_account",
            ondelete="CASCADE",
        ),
        Index("ix_activity_days_account", "tenant_id", "account_id"),
    )

    # The key's order serves the reports: one commune, a range of weeks, grouped by week and
    # module, counting distinct people (an index-only scan on PostgreSQL).
    week: Mapped[dt.date] = mapped_column(
        Date, primary_key=True, comment="Monday of the day's ISO week (Europe/Brussels)"
    )
    module: Mapped[str] = mapped_column(
        String(63), primary_key=True, comment="module used; empty for any page of the site"
    )
    account_id: Mapped[UUID] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True, comment="day in Europe/Brussels")
