"""Adoption figures: how many citizens use a commune's site and its modules, week by week.

* :func:`adoption_report` - one commune: weekly series (active citizens, people per enabled
  module, new accounts), totals, and each figure for the period shown against the same
  number of days just before it. Four small queries; the activity ones read one range of
  ``activity_days``' primary key. Run it in the commune's scope (its admins) or the platform
  scope (the console).
* :func:`adoption_overview` - many communes at once (the console's table): active citizens
  in the last 30 days and the 30 before, accounts and verified residents, in two grouped
  queries. Platform scope.

Weeks are ISO weeks in Brussels time, named by their Monday; the last week shown is the
current one, so far. "Active citizens" are distinct citizen accounts that used the site;
staff are never counted (see :mod:`perron.adoption.recording`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import ColumnElement, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.adoption.models import SITE, ActivityDay, week_of
from perron.adoption.recording import brussels_today
from perron.db.repository import ensure_tenant
from perron.errors import Invalid
from perron.i18n import TIME_ZONE, gettext
from perron.identity.models import Account, AccountKind

MAX_WEEKS = 52
OVERVIEW_DAYS = 30


@dataclass(frozen=True, slots=True)
class Comparison:
    """A figure for a period and for the same number of days before it.

    ``previous`` is None when nothing was measured yet at the start of the previous period
    (or its days are past the retention): no comparison is then made up."""

    current: int
    previous: int | None

    @property
    def change(self) -> float | None:
        """Relative change (0.25 for +25 %); None without a previous figure or from zero."""
        if not self.previous:
            return None
        return (self.current - self.previous) / self.previous


@dataclass(frozen=True, slots=True)
class ModuleUsage:
    module: str
    weekly: tuple[int, ...]
    """Distinct citizens who used the module, each week."""
    period: Comparison


@dataclass(frozen=True, slots=True)
class AdoptionReport:
    commune_id: UUID
    today: dt.date
    weeks: tuple[dt.date, ...]
    """The Mondays of the weeks shown, oldest first; the last is the current week."""
    active_citizens: tuple[int, ...]
    """Distinct citizens who used the site, each week."""
    modules: tuple[ModuleUsage, ...]
    new_accounts: tuple[int, ...]
    """Citizen accounts created each week (still existing: deleted ones leave no trace)."""
    period_active: Comparison
    period_new_accounts: Comparison
    accounts: int
    """Citizen accounts open today."""
    residents: int
    """Of which with verified residency."""
    measured_since: dt.date | None
    """The oldest day still recorded (None: nothing recorded yet)."""

    @property
    def start(self) -> dt.date:
        return self.weeks[0]

    @property
    def previous_start(self) -> dt.date:
        return self.start - (self.today - self.start + dt.timedelta(days=1))


def local_midnight(day: dt.date) -> dt.datetime:
    """The moment a Brussels day begins, in UTC (what the database stores)."""
    return dt.datetime.combine(day, dt.time(), TIME_ZONE).astimezone(dt.UTC)


def check_weeks(weeks: object) -> int:
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise Invalid("weeks", gettext("Choose a period of 1 to %(max)s weeks.") % {"max": MAX_WEEKS})
    return weeks


async def adoption_report(
    session: AsyncSession,
    commune_id: UUID,
    *,
    weeks: int = 26,
    today: dt.date | None = None,
    modules: Sequence[str] | None = None,
) -> AdoptionReport:
    """The commune's adoption over the last ``weeks`` ISO weeks (the current one included).

    ``modules`` defaults to the commune's enabled modules that have citizen pages."""
    ensure_tenant(commune_id)
    count = check_weeks(weeks)
    today = today or brussels_today()
    mondays = tuple(week_of(today) - dt.timedelta(weeks=count - 1 - index) for index in range(count))
    start = mondays[0]
    previous_start = start - (today - start + dt.timedelta(days=1))
    names = list(modules) if modules is not None else await _citizen_modules(session, commune_id)

    measured_since = await session.scalar(
        select(ActivityDay.day)
        .where(ActivityDay.tenant_id == commune_id)
        .order_by(ActivityDay.week, ActivityDay.day)
        .limit(1)
    )
    weekly = await _weekly(session, commune_id, mondays, today, [SITE, *names])
    periods = await _periods(session, commune_id, previous_start, start, today, [SITE, *names])
    compared = measured_since is not None and measured_since <= previous_start

    def period(module: str) -> Comparison:
        current, previous = periods.get(module, (0, 0))
        return Comparison(current, previous if compared else None)

    new_accounts, new_current, new_previous, accounts, residents = await _accounts(
        session, commune_id, previous_start, mondays, today
    )
    return AdoptionReport(
        commune_id=commune_id,
        today=today,
        weeks=mondays,
        active_citizens=tuple(weekly.get((monday, SITE), 0) for monday in mondays),
        modules=tuple(
            ModuleUsage(name, tuple(weekly.get((monday, name), 0) for monday in mondays), period(name))
            for name in names
        ),
        new_accounts=new_accounts,
        period_active=period(SITE),
        period_new_accounts=Comparison(new_current, new_previous),
        accounts=accounts,
        residents=residents,
        measured_since=measured_since,
    )


async def _citizen_modules(session: AsyncSession, commune_id: UUID) -> list[str]:
    from perron.modules.activation import enabled_modules
    from perron.modules.registry import registry

    enabled = await enabled_modules(session, commune_id)
    return [manifest.name for manifest in registry.ordered(enabled) if manifest.routes]


async def _weekly(
    session: AsyncSession,
    commune_id: UUID,
    mondays: Sequence[dt.date],
    today: dt.date,
    modules: Sequence[str],
) -> dict[tuple[dt.date, str], int]:
    rows = await session.execute(
        select(ActivityDay.week, ActivityDay.module, func.count(distinct(ActivityDay.account_id)))
        .where(
            ActivityDay.tenant_id == commune_id,
            ActivityDay.week >= mondays[0],
            ActivityDay.week <= mondays[-1],
            ActivityDay.day <= today,
            ActivityDay.module.in_(modules),
        )
        .group_by(ActivityDay.week, ActivityDay.module)
    )
    return {(week, module): int(people) for week, module, people in rows.tuples()}


def _distinct_people_from(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(distinct(case((condition, ActivityDay.account_id))))


async def _periods(
    session: AsyncSession,
    commune_id: UUID,
    previous_start: dt.date,
    start: dt.date,
    today: dt.date,
    modules: Sequence[str],
) -> dict[str, tuple[int, int]]:
    """Distinct people per module in the period shown and in the one before."""
    rows = await session.execute(
        select(
            ActivityDay.module,
            _distinct_people_from(ActivityDay.day >= start),
            _distinct_people_from(ActivityDay.day < start),
        )
        .where(
            ActivityDay.tenant_id == commune_id,
            ActivityDay.week >= week_of(previous_start),
            ActivityDay.week <= week_of(today),
            ActivityDay.day >= previous_start,
            ActivityDay.day <= today,
            ActivityDay.module.in_(modules),
        )
        .group_by(ActivityDay.module)
    )
    return {module: (int(current), int(previous)) for module, current, previous in rows.tuples()}


def _created_before(moment: dt.datetime) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((Account.created_at < moment, 1), else_=0)), 0)


async def _accounts(
    session: AsyncSession,
    commune_id: UUID,
    previous_start: dt.date,
    mondays: Sequence[dt.date],
    today: dt.date,
) -> tuple[tuple[int, ...], int, int, int, int]:
    """New citizen accounts per week and per period, and today's totals, in one row: how
    many accounts were created before each boundary (Brussels midnights, in UTC)."""
    bounds = [previous_start, *mondays, today + dt.timedelta(days=1)]
    open_account = Account.disabled.is_(False)
    row = (
        await session.execute(
            select(
                *(_created_before(local_midnight(day)) for day in bounds),
                func.coalesce(func.sum(case((open_account, 1), else_=0)), 0),
                func.coalesce(
                    func.sum(case((open_account & Account.residency_verified_at.is_not(None), 1), else_=0)),
                    0,
                ),
            ).where(Account.tenant_id == commune_id, Account.kind == AccountKind.CITIZEN)
        )
    ).one()
    before = [int(value) for value in row[: len(bounds)]]
    weekly = tuple(before[index + 1] - before[index] for index in range(1, len(bounds) - 1))
    return weekly, before[-1] - before[1], before[1] - before[0], int(row[-2]), int(row[-1])


@dataclass(frozen=True, slots=True)
class CommuneAdoption:
    """One commune's line in the console's overview."""

    commune_id: UUID
    active_citizens: Comparison
    """Distinct citizens who used the site in the last ``days`` days, and the ``days`` before."""
    accounts: int
    residents: int


async def adoption_overview(
    session: AsyncSession,
    commune_ids: Iterable[UUID],
    *,
    days: int = OVERVIEW_DAYS,
    today: dt.date | None = None,
) -> dict[UUID, CommuneAdoption]:
    """Active citizens (last ``days`` days, today included), accounts and residents of each
    commune, in two grouped queries. Run it in the platform scope (a commune's scope may ask
    only for itself). Every commune asked for gets a line, zeros included."""
    ids = [ensure_tenant(commune_id) for commune_id in dict.fromkeys(commune_ids)]
    if not ids:
        return {}
    if not 1 <= days <= 183:
        raise Invalid("days", gettext("Choose a period of 1 to %(max)s days.") % {"max": 183})
    today = today or brussels_today()
    start = today - dt.timedelta(days=days - 1)
    previous_start = start - dt.timedelta(days=days)
    activity = await session.execute(
        select(
            ActivityDay.tenant_id,
            _distinct_people_from(ActivityDay.day >= start),
            _distinct_people_from(ActivityDay.day < start),
        )
        .where(
            ActivityDay.tenant_id.in_(ids),
            ActivityDay.week >= week_of(previous_start),
            ActivityDay.week <= week_of(today),
            ActivityDay.day >= previous_start,
            ActivityDay.day <= today,
            ActivityDay.module == SITE,
        )
        .group_by(ActivityDay.tenant_id)
    )
    active = {tenant: (int(current), int(previous)) for tenant, current, previous in activity.tuples()}
    open_account = Account.disabled.is_(False)
    totals = await session.execute(
        select(
            Account.tenant_id,
            func.count(),
            func.coalesce(func.sum(case((Account.residency_verified_at.is_not(None), 1), else_=0)), 0),
        )
        .where(Account.tenant_id.in_(ids), Account.kind == AccountKind.CITIZEN, open_account)
        .group_by(Account.tenant_id)
    )
    counted = {tenant: (int(accounts), int(residents)) for tenant, accounts, residents in totals.tuples()}
    return {
        commune_id: CommuneAdoption(
            commune_id,
            Comparison(*active.get(commune_id, (0, 0))),
            *counted.get(commune_id, (0, 0)),
        )
        for commune_id in ids
    }
