"""Adoption: how many citizens use a commune's site and its modules, week by week.

* :mod:`~perron.adoption.recording` - activity days written from the request path
  (:class:`ActivityRecorder`, one per process as ``runtime.activity``).
* :mod:`~perron.adoption.report` - :func:`adoption_report` (one commune) and
  :func:`adoption_overview` (many communes at once, for the console).
* :mod:`~perron.adoption.charts` - :func:`adoption_view` and :func:`weekly_chart`: what the
  macros of ``perron/adoption/charts.html`` (``adoption_dashboard``, ``weekly_chart``) draw.
"""

from perron.adoption.charts import AdoptionView, Figure, WeeklyChart, adoption_view, weekly_chart
from perron.adoption.models import RETENTION_DAYS, SITE, ActivityDay, week_of
from perron.adoption.recording import ActivityRecorder, activity_of, brussels_today, prune_activity
from perron.adoption.report import (
    AdoptionReport,
    CommuneAdoption,
    Comparison,
    ModuleUsage,
    adoption_overview,
    adoption_report,
)

__all__ = [
    "RETENTION_DAYS",
    "SITE",
    "ActivityDay",
    "ActivityRecorder",
    "AdoptionReport",
    "AdoptionView",
    "CommuneAdoption",
    "Comparison",
    "Figure",
    "ModuleUsage",
    "WeeklyChart",
    "activity_of",
    "adoption_overview",
    "adoption_report",
    "adoption_view",
    "brussels_today",
    "prune_activity",
    "week_of",
    "weekly_chart",
]
