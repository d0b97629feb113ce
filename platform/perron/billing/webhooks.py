"""Stripe's webhook: ``POST /_stripe/webhook`` on any host (the dispatcher answers it before
looking at the host, like the back-channel logout).

1. Billing off: 404, as if the endpoint did not exist.
2. The ``Stripe-Signature`` header is verified with the stripe library against
   ``PERRON_STRIPE_WEBHOOK_SECRET``, with Stripe's tolerance of five minutes. A missing,
   malformed, forged or stale signature, a body that is not JSON or not an event: 400,
   a ``billing.webhook_refused`` log line with the reason, and nothing stored.
3. A verified event is stored once (its Stripe id is the key) and, in the same transaction,
   the job that processes it is queued (the outbox). An event seen before answers 200 and
   changes nothing. Types Perron does not act on are stored as ``ignored``.
"""

from __future__ import annotations

import json
from typing import Any

import stripe
from sqlalchemy.exc import IntegrityError

from perron.billing.ledger import HANDLED, data_object, moment, ref, subscription_of
from perron.billing.models import BillingEvent
from perron.db.base import utcnow
from perron.db.scope import platform_scope
from perron.jobs import enqueue
from perron.logging import get_logger

log = get_logger("perron.billing")

PATH = "/_stripe/webhook"
MAX_BODY = 512 * 1024
"""Stripe's events are a few kilobytes; an invoice with many lines stays far below this."""
TOLERANCE_SECONDS = 300


class Refused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def verify(body: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event in a request Stripe signed, or :class:`Refused` with the reason."""
    if not signature:
        raise Refused("missing_signature", "no Stripe-Signature header")
    try:
        # First the signature alone, then its age: the reason says which failed.
        stripe.WebhookSignature.verify_header(body, signature, secret, tolerance=None)
    except UnicodeDecodeError:
        raise Refused("not_json", "the body is not UTF-8 text") from None
    except stripe.SignatureVerificationError as error:
        raise Refused("bad_signature", str(error)) from None
    try:
        stripe.WebhookSignature.verify_header(body, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as error:
        raise Refused("stale_signature", str(error)) from None
    try:
        event = json.loads(body)
    except ValueError:
        raise Refused("not_json", "the body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= 100
        and moment(event.get("created")) is not None
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise Refused("not_an_event", "the JSON is not a Stripe event")
    return event


async def handle(runtime: Any, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
    """Answer one webhook request: (HTTP status, JSON body)."""
    settings = runtime.settings
    if not settings.billing_enabled or settings.stripe_webhook_secret is None:
        return 404, {"error": "not_found"}
    try:
        event = verify(body, signature, settings.stripe_webhook_secret.get_secret_value())
    except Refused as refused:
        log.warning("billing.webhook_refused", reason=refused.reason, detail=str(refused)[:300])
        return 400, {"error": "invalid_request", "reason": refused.reason}
    stored = await store(runtime.database, event)
    log.info("billing.webhook_received", stripe_event=event["id"], type=event["type"], replay=not stored)
    return 200, {"received": True}


async def store(database: Any, event: dict[str, Any]) -> bool:
    """Keep a verified event and queue its processing; False when it was already kept."""
    obj = data_object(event)
    created = moment(event["created"])
    assert created is not None
    handled = event["type"] in HANDLED
    with platform_scope("billing: keep a Stripe event"):
        try:
            async with database.transaction() as session:
                if await session.get(BillingEvent, event["id"]) is not None:
                    return False
                session.add(
                    BillingEvent(
                        stripe_event_id=event["id"],
                        type=event["type"],
                        created=created,
                        object_id=ref(obj.get("id")),
                        subscription_ref=subscription_of(event["type"], obj),
                        livemode=bool(event.get("livemode")),
                        payload=event,
                        processed_at=None if handled else utcnow(),
                        outcome=None if handled else "ignored",
                    )
                )
                if handled:
                    from perron.billing.jobs import process_event

                    enqueue(session, process_event, event_id=event["id"])
        except IntegrityError:
            return False  # the same event, delivered twice at once: the other delivery kept it
    return True
