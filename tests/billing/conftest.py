"""Fixtures of the billing tests: stripe-mock, and a Perron that bills through it.

* ``stripe_url``: stripe-mock's address. With ``PERRON_TEST_STRIPE_URL`` set (``make
  test`` sets it) the tests **fail** when it does not answer. Without it (a developer
  running one file) they start it with ``infra/stripe/stripe-mock.sh start``, which builds
  it with Go the first time, and stop it afterwards; they skip, saying why, only when it
  cannot be started (no Go).
* ``site``: a :class:`~perron.testing.Harness` over a Perron built with billing on, Stripe's
  API at stripe-mock and a known webhook secret, with helpers to define and synchronise a
  plan, subscribe a body and deliver signed events (:class:`BillingSite`).
* ``log_lines``: the JSON log lines written during the test (the identity tests' fixture).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from perron.audit import SYSTEM, acting_as
from perron.billing import PayingBody
from perron.billing.models import (
    BillingCustomer,
    BillingEvent,
    BillingInvoice,
    BillingSubscription,
    ModuleEntitlement,
)
from perron.billing.plans import define_plan, sync_plans
from perron.config import Settings
from perron.db.scope import platform_scope
from perron.testing.database import wipe
from perron.testing.harness import Harness, Tenant
from tests.billing.stripe_events import WEBHOOK_PATH, WEBHOOK_SECRET, Fixtures, Scenario, body_of, sign
from tests.identity.conftest import LogLines, log_lines

__all__ = ["LogLines", "log_lines"]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "stripe" / "stripe-mock.sh"
PLAN = "news-yearly"
MODULE = "news"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/customers", auth=("sk_test_perron", ""), timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def stripe_url() -> Iterator[str]:
    configured = os.environ.get("PERRON_TEST_STRIPE_URL")
    if configured:
        if not _answers(configured):
            pytest.fail(
                f"PERRON_TEST_STRIPE_URL={configured} does not answer: start stripe-mock with "
                "infra/stripe/stripe-mock.sh start"
            )
        yield configured.rstrip("/")
        return
    printed = subprocess.run([SCRIPT, "env"], capture_output=True, text=True, check=True).stdout
    url = next(line.split("=", 1)[1] for line in printed.splitlines() if "PERRON_TEST_STRIPE_URL" in line)
    if _answers(url):
        yield url
        return
    started = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, timeout=900)
    if started.returncode != 0 or not _answers(url):
        pytest.skip(f"stripe-mock could not be started ({SCRIPT} start): {started.stderr.strip()[-500:]}")
    try:
        yield url
    finally:
        subprocess.run([SCRIPT, "stop"], capture_output=True, check=False)


@pytest.fixture(scope="session")
def fixtures(stripe_url: str) -> Fixtures:
    return Fixtures.fetch(stripe_url)


def billing_settings(settings: Settings, stripe_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "billing_enabled": True,
        "stripe_secret_key": SecretStr("sk_test_perron"),
        "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "stripe_api_base": stripe_url,
        "stripe_timeout_seconds": 5.0,
        "billing_grace_days": 14,
    }
    return settings.model_copy(update=values | overrides)


@pytest.fixture(scope="package")
async def billing_app(settings: Settings, stripe_url: str) -> AsyncIterator[tuple[Any, Any]]:
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan

    app, runtime = build(billing_settings(settings, stripe_url))
    stop = await _start_lifespan(app)
    yield app, runtime
    await stop()


class BillingSite(Harness):
    """The harness, plus what billing tests do over and over."""

    fixtures: Fixtures

    @property
    def billing(self) -> Any:
        return self.runtime.billing

    async def plan(
        self, code: str = PLAN, *, modules: tuple[str, ...] = (MODULE,), trial_days: int = 0
    ) -> str:
        """Define a plan and synchronise it with stripe-mock; returns its Stripe price."""
        with platform_scope("test: define a plan"), acting_as(SYSTEM):
            async with self.database.transaction() as session:
                await define_plan(
                    session,
                    code=code,
                    names={"fr": f"Plan {code}"},
                    modules=modules,
                    interval="year",
                    unit_amount=12000,
                    trial_days=trial_days,
                )
            results = await sync_plans(self.runtime.settings, self.database)
        await self.run_jobs()
        price = next(result.price for result in results if result.code == code)
        assert price
        return price

    async def customer_of(self, body: PayingBody) -> str:
        with platform_scope("test: read a customer"):
            async with self.database.session() as session:
                column = (
                    BillingCustomer.commune_id
                    if body.kind == "commune"
                    else BillingCustomer.intercommunale_id
                )
                found = await session.scalar(
                    select(BillingCustomer.stripe_customer_id).where(column == body.id)
                )
        assert found, f"{body.key} has no customer"
        return found

    async def scenario(self, body: PayingBody, price: str, plan: str = PLAN) -> Scenario:
        """The body's customer (created at stripe-mock) and a subscription's events to come."""
        customer = await self.billing.ensure_customer(body)
        return Scenario(self.fixtures, customer, body.key, price, plan)

    async def deliver(
        self, event: dict[str, Any], *, host: str = "stripe.test", **options: Any
    ) -> httpx.Response:
        body = body_of(event)
        client = self.client(host)
        return await client.post(
            WEBHOOK_PATH,
            content=body,
            headers={"stripe-signature": sign(body, **options), "content-type": "application/json"},
        )

    async def deliver_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            response = await self.deliver(event)
            assert response.status_code == 200, response.text
        await self.run_jobs()

    async def counts(self) -> dict[str, int]:
        with platform_scope("test: count billing rows"):
            async with self.database.session() as session:
                return {
                    model.__tablename__: await session.scalar(select(func.count()).select_from(model)) or 0
                    for model in (
                        BillingEvent,
                        BillingCustomer,
                        BillingSubscription,
                        BillingInvoice,
                        ModuleEntitlement,
                    )
                }


@pytest.fixture
async def site(
    billing_app: tuple[Any, Any], settings: Settings, fixtures: Fixtures
) -> AsyncIterator[BillingSite]:
    app, runtime = billing_app
    harness = BillingSite(app, runtime)
    harness.fixtures = fixtures
    yield harness
    await harness.close()
    await harness.quiesce()
    await asyncio.to_thread(wipe, settings)
    runtime.resolver.invalidate(None)


@pytest.fixture
async def alpha(site: BillingSite) -> Tenant:
    """Commune ``alpha`` with the news module switched on."""
    tenant = await site.commune("alpha")
    await site.enable(tenant, MODULE)
    return tenant
