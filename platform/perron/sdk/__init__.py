"""Perron's module SDK: everything a module may use, in one place.

A module imports from ``perron.sdk`` (and ``perron.sdk.testing`` in its tests) only; what is
not exported here is the platform's business and may change. First-party modules follow
the same rule, so a third party can build anything they build.
"""

from perron import signals
from perron.audit import record as audit
from perron.db.base import Base, TenantModel, TenantOwned, new_id, utcnow
from perron.db.repository import TenantRepository, ensure_owned
from perron.errors import Conflict, Invalid, NotFound, PerronError
from perron.i18n import TranslatedText, gettext, lazy, ngettext, pick
from perron.identity.models import Assurance
from perron.identity.sessions import CurrentUser
from perron.jobs.outbox import enqueue
from perron.jobs.registry import JobContext, job
from perron.modules.context import (
    current_language,
    current_site,
    module_settings,
    page,
    reading,
    refresh_public_pages,
    writing,
)
from perron.modules.manifest import (
    Action,
    HookContext,
    ModuleManifest,
    NavEntry,
    Receiver,
    Widget,
    WidgetContext,
)
from perron.modules.web import requires
from perron.notifications.service import Audience, notify
from perron.signals import SignalContext
from perron.tenancy.site import TenantSite
from perron.territory import service as territory
from perron.web.auth import Forbidden, LoginRequired, current_user, require_user, staff_guard
from perron.web.page_cache import PUBLIC_PAGE
from perron.web.pages import READ_ONLY

__all__ = [
    "PUBLIC_PAGE",
    "READ_ONLY",
    "Action",
    "Assurance",
    "Audience",
    "Base",
    "Conflict",
    "CurrentUser",
    "Forbidden",
    "HookContext",
    "Invalid",
    "JobContext",
    "LoginRequired",
    "ModuleManifest",
    "NavEntry",
    "NotFound",
    "PerronError",
    "Receiver",
    "SignalContext",
    "TenantModel",
    "TenantOwned",
    "TenantRepository",
    "TenantSite",
    "TranslatedText",
    "Widget",
    "WidgetContext",
    "audit",
    "current_language",
    "current_site",
    "current_user",
    "enqueue",
    "ensure_owned",
    "gettext",
    "job",
    "lazy",
    "module_settings",
    "new_id",
    "ngettext",
    "notify",
    "page",
    "pick",
    "reading",
    "refresh_public_pages",
    "require_user",
    "requires",
    "signals",
    "staff_guard",
    "territory",
    "utcnow",
    "writing",
]
