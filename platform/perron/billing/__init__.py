"""Billing with Stripe: a customer per paying body (a commune, or an intercommunale paying for
its member communes), plans whose subscriptions cover modules, webhooks verified and
processed by jobs, and entitlements that decide what citizens may use.

Switched off by default (``PERRON_BILLING_ENABLED``): then every module a commune switches
on works as it always did.

What other parts of Perron call:

* ``runtime.billing`` (:class:`Billing`): ``start_checkout``, ``portal_url``,
  ``invoices_of``, ``billing_overview``, ``plans``, ``ensure_customer``;
* :func:`ensure_customer` in jobs (a commune's onboarding);
* :func:`perron.billing.jobs.membership_changed` when a commune changes intercommunale.
"""

from perron.billing.bodies import PayingBody
from perron.billing.service import (
    Billing,
    BillingOverview,
    Charge,
    CommuneAccess,
    InvoiceView,
    ModuleAccess,
    PlanView,
    SubscriptionView,
    ensure_customer,
)
from perron.billing.stripe_api import BillingOff, StripeRefused, StripeUnavailable

__all__ = [
    "Billing",
    "BillingOff",
    "BillingOverview",
    "Charge",
    "CommuneAccess",
    "InvoiceView",
    "ModuleAccess",
    "PayingBody",
    "PlanView",
    "StripeRefused",
    "StripeUnavailable",
    "SubscriptionView",
    "ensure_customer",
]
