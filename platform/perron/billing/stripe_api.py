"""Talking to Stripe: one client per operation, and Stripe's failures in Perron's words.

* Stripe unreachable, overloaded or failing (network error, 429, 5xx):
  :class:`StripeUnavailable`, a *temporary* error: a job raising it is retried with
  backoff, and a person is told that nothing was changed and to try again later.
* Stripe refusing the request (wrong key, unknown price, bad parameter):
  :class:`StripeRefused`, not temporary: retrying would fail the same way, the operator
  must fix the configuration (the log says what Stripe answered).

A client (and its HTTP connection pool) is made for each operation and closed after it:
requests and jobs run on different event loops, and a pool belongs to one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import stripe

from perron.config import Settings
from perron.errors import PerronError
from perron.i18n import gettext
from perron.logging import get_logger

log = get_logger("perron.billing")


class BillingOff(PerronError):
    """Billing is switched off on this deployment (``PERRON_BILLING_ENABLED``)."""

    status_code = 404

    def __init__(self) -> None:
        super().__init__(gettext("Billing is switched off on this platform."))


class StripeUnavailable(PerronError):
    """Stripe could not be reached or failed: nothing was changed; try again later."""

    status_code = 503
    temporary = True

    def __init__(self) -> None:
        super().__init__(
            gettext("Stripe cannot be reached; nothing was changed; try again in a few minutes.")
        )


class StripeRefused(PerronError):
    """Stripe refused the request: the platform's Stripe configuration needs the operator."""

    status_code = 502

    def __init__(self) -> None:
        super().__init__(
            gettext(
                "Stripe refused the request; nothing was changed. "
                "The platform's operator has been told what Stripe answered."
            )
        )


_TEMPORARY = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


@asynccontextmanager
async def stripe_client(settings: Settings, purpose: str) -> AsyncIterator[stripe.StripeClient]:
    """A Stripe client for one operation; Stripe's errors come out as Perron's."""
    if settings.stripe_secret_key is None:
        raise BillingOff()
    http = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds)
    addresses: dict[str, Any] = {"api": settings.stripe_api_base} if settings.stripe_api_base else {}
    client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=addresses,  # type: ignore[arg-type]
        http_client=http,
        max_network_retries=2,
    )
    try:
        yield client
    except _TEMPORARY as error:
        log.warning("billing.stripe_unavailable", purpose=purpose, error=str(error).strip()[:300])
        raise StripeUnavailable() from error
    except stripe.StripeError as error:
        status = getattr(error, "http_status", None)
        if isinstance(status, int) and status >= 500:
            log.warning("billing.stripe_unavailable", purpose=purpose, status=status)
            raise StripeUnavailable() from error
        log.error(
            "billing.stripe_refused",
            purpose=purpose,
            status=status,
            code=getattr(error, "code", None),
            error=str(error).strip()[:500],
        )
        raise StripeRefused() from error
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
