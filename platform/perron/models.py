"""Every model of the platform, imported so that ``Base.metadata`` is complete."""

from perron.adoption.models import ActivityDay
from perron.audit import AuditEntry, PlatformAuditEntry
from perron.billing.models import (
    BillingCustomer,
    BillingEvent,
    BillingInvoice,
    BillingPlan,
    BillingSubscription,
    ModuleEntitlement,
)
from perron.cache import CacheInvalidation
from perron.console.models import (
    BulkOnboarding,
    ConsoleLoginAttempt,
    ConsoleSession,
    IntercommunaleModule,
    Onboarding,
)
from perron.db.base import Base
from perron.identity.models import Account, WebSession
from perron.jobs.deadletters import DeadLetter
from perron.jobs.outbox import OutboxMessage
from perron.jobs.status import JobRun, PlatformJobRun
from perron.mail.models import OutgoingEmail
from perron.notifications.models import Delivery, Notification, Preference
from perron.tenancy.archive.models import CommuneExport
from perron.tenancy.legal import LegalTexts
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
from perron.territory.models import (
    Neighbourhood,
    NeighbourhoodStreet,
    Street,
    TerritoryChange,
    TerritoryState,
    Zone,
)

metadata = Base.metadata

__all__ = [
    "Account",
    "ActivityDay",
    "AuditEntry",
    "Base",
    "BillingCustomer",
    "BillingEvent",
    "BillingInvoice",
    "BillingPlan",
    "BillingSubscription",
    "Branding",
    "BulkOnboarding",
    "CacheInvalidation",
    "Commune",
    "CommuneExport",
    "CommuneSettings",
    "ConsoleLoginAttempt",
    "ConsoleSession",
    "DeadLetter",
    "Delivery",
    "Domain",
    "Intercommunale",
    "IntercommunaleModule",
    "IntercommunaleSettings",
    "JobRun",
    "LegalTexts",
    "ModuleActivation",
    "ModuleEntitlement",
    "Neighbourhood",
    "NeighbourhoodStreet",
    "Notification",
    "Onboarding",
    "OutboxMessage",
    "OutgoingEmail",
    "PlatformAuditEntry",
    "PlatformJobRun",
    "PlatformSettings",
    "Preference",
    "Street",
    "TerritoryChange",
    "TerritoryState",
    "WebSession",
    "Zone",
    "metadata",
]
