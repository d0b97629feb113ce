"""Stripe webhook events as Stripe would send them, built for the tests.

The objects start from stripe-mock's own fixtures (a subscription, an invoice, a Checkout
session retrieved from it once), so they have every field of the API version stripe-mock
speaks; the tests then set what the scenario needs (ids, status, customer, prices, times).
Events are signed the way Stripe signs them: ``Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of
"<ts>.<body>" with the endpoint's secret>``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

WEBHOOK_SECRET = "whsec_perron_tests_0123456789abcdef"
WEBHOOK_PATH = "/_stripe/webhook"

_ids = itertools.count(1)


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


@dataclass
class Fixtures:
    """stripe-mock's fixture objects, fetched once."""

    subscription: dict[str, Any]
    invoice: dict[str, Any]
    checkout_session: dict[str, Any]

    @classmethod
    def fetch(cls, stripe_url: str) -> Fixtures:
        with httpx.Client(base_url=stripe_url, auth=("sk_test_perron", ""), timeout=10) as client:
            objects = [
                client.get(path).raise_for_status().json()
                for path in (
                    "/v1/subscriptions/sub_fixture",
                    "/v1/invoices/in_fixture",
                    "/v1/checkout/sessions/cs_fixture",
                )
            ]
        return cls(*objects)


@dataclass
class Scenario:
    """One paying body's subscription to one plan, and the events Stripe sends about it.

    ``at`` is the Stripe time of the next event (seconds); each event moves it on by
    ``step`` so that every event of a scenario has its own second."""

    fixtures: Fixtures
    customer: str
    body_key: str
    price: str
    plan: str
    subscription_id: str = field(default_factory=lambda: f"sub_test{next(_ids)}")
    at: int = field(default_factory=lambda: int(time.time()) - 3600)
    step: int = 60
    period: int = 365 * 86400

    def _tick(self, at: int | None) -> int:
        if at is not None:
            return at
        self.at += self.step
        return self.at

    def event(self, kind: str, obj: dict[str, Any], at: int | None = None) -> dict[str, Any]:
        return {
            "id": f"evt_test{next(_ids)}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": self._tick(at),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
            "data": {"object": obj},
        }

    def subscription(
        self,
        status: str,
        *,
        cancel_at_period_end: bool = False,
        period_end: int | None = None,
        canceled_at: int | None = None,
        ended_at: int | None = None,
        trial_end: int | None = None,
    ) -> dict[str, Any]:
        obj = copy.deepcopy(self.fixtures.subscription)
        start = self.at
        end = period_end or start + self.period
        item = obj["items"]["data"][0]
        item["price"] = {**item["price"], "id": self.price, "metadata": {"perron_plan": self.plan}}
        item["subscription"] = self.subscription_id
        item["current_period_start"], item["current_period_end"] = start, end
        obj["items"]["data"] = [item]
        obj.update(
            id=self.subscription_id,
            customer=self.customer,
            status=status,
            metadata={"perron_body": self.body_key, "perron_plan": self.plan},
            cancel_at_period_end=cancel_at_period_end,
            cancel_at=end if cancel_at_period_end else None,
            canceled_at=canceled_at,
            ended_at=ended_at,
            trial_end=trial_end,
            latest_invoice=None,
        )
        return obj

    def invoice(
        self, invoice_id: str, status: str, *, number: str | None = None, total: int = 12000
    ) -> dict[str, Any]:
        obj = copy.deepcopy(self.fixtures.invoice)
        obj.update(
            id=invoice_id,
            customer=self.customer,
            status=status,
            number=number,
            currency="eur",
            total=total,
            amount_due=total,
            amount_paid=total if status == "paid" else 0,
            period_start=self.at,
            period_end=self.at + self.period,
            created=self.at,
            hosted_invoice_url=f"https://invoice.stripe.com/i/{invoice_id}" if status != "draft" else None,
            invoice_pdf=f"https://pay.stripe.com/invoice/{invoice_id}/pdf" if status != "draft" else None,
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": self.subscription_id},
            },
        )
        return obj

    def checkout_completed(self, at: int | None = None) -> dict[str, Any]:
        obj = copy.deepcopy(self.fixtures.checkout_session)
        obj.update(
            id=f"cs_test{next(_ids)}",
            mode="subscription",
            status="complete",
            payment_status="paid",
            customer=self.customer,
            subscription=self.subscription_id,
            client_reference_id=self.body_key,
            metadata={"perron_body": self.body_key, "perron_plan": self.plan},
        )
        return self.event("checkout.session.completed", obj, at)

    # A subscription's life, as lists of events --------------------------------------------

    def subscribe(self) -> list[dict[str, Any]]:
        """Checkout completed, the subscription created active, its first invoice paid."""
        invoice = f"in_test{next(_ids)}"
        return [
            self.checkout_completed(),
            self.event("customer.subscription.created", self.subscription("active")),
            self.event("invoice.created", self.invoice(invoice, "draft")),
            self.event("invoice.finalized", self.invoice(invoice, "open", number=f"PERRON-{invoice[-4:]}")),
            self.event("invoice.paid", self.invoice(invoice, "paid", number=f"PERRON-{invoice[-4:]}")),
        ]

    def payment_fails(self) -> tuple[str, list[dict[str, Any]]]:
        """A renewal invoice whose payment fails; the subscription turns past_due."""
        invoice = f"in_test{next(_ids)}"
        number = f"PERRON-{invoice[-4:]}"
        return invoice, [
            self.event("invoice.created", self.invoice(invoice, "draft")),
            self.event("invoice.finalized", self.invoice(invoice, "open", number=number)),
            self.event("invoice.payment_failed", self.invoice(invoice, "open", number=number)),
            self.event("customer.subscription.updated", self.subscription("past_due")),
        ]

    def payment_succeeds(self, invoice: str) -> list[dict[str, Any]]:
        number = f"PERRON-{invoice[-4:]}"
        return [
            self.event("invoice.paid", self.invoice(invoice, "paid", number=number)),
            self.event("customer.subscription.updated", self.subscription("active")),
        ]


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
