"""Notifications: modules tell people things, through the inbox and e-mail.

``notify(session, module=..., audience=Audience.neighbourhoods([...]), title={...}, body={...})``
records a notification in the caller's transaction; jobs deliver it to each person of the
audience, by the channels they chose for that module. See :mod:`perron.notifications.service`.
"""

from perron.notifications import jobs as _jobs
from perron.notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    EmailFrequency,
    Notification,
    Preference,
)
from perron.notifications.service import CORE, Audience, default_frequency, notify

assert _jobs.fan_out is not None  # the jobs are declared whenever notifications are imported

__all__ = [
    "CORE",
    "Audience",
    "Channel",
    "Delivery",
    "DeliveryStatus",
    "EmailFrequency",
    "Notification",
    "Preference",
    "default_frequency",
    "notify",
]
