"""Every model of the platform, imported so that ``Base.metadata`` is complete."""

from perron.audit import AuditEntry, PlatformAuditEntry
from perron.cache import CacheInvalidation
from perron.db.base import Base
from perron.jobs.outbox import OutboxMessage
from perron.tenancy.models import (
    Branding,
    Commune,
    CommuneSettings,
    Domain,
    Intercommunale,
    IntercommunaleSettings,
    ModuleActivation,
    PlatformSettings,
)

metadata = Base.metadata

__all__ = [
    "AuditEntry",
    "Base",
    "Branding",
    "CacheInvalidation",
    "Commune",
    "CommuneSettings",
    "Domain",
    "Intercommunale",
    "IntercommunaleSettings",
    "ModuleActivation",
    "OutboxMessage",
    "PlatformAuditEntry",
    "PlatformSettings",
    "metadata",
]
