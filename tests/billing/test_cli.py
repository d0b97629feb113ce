"""``perron billing``: the operator defines plans, synchronises them with Stripe (stripe-mock
here) and looks at what a body pays."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from perron.cli import main
from perron.config import Settings
from tests.billing.stripe_events import WEBHOOK_SECRET
from tests.conftest import settings_env


@pytest.fixture
def run(settings: Settings, stripe_url: str) -> Any:
    billing = {
        "PERRON_BILLING_ENABLED": "true",
        "PERRON_STRIPE_SECRET_KEY": "sk_test_perron",
        "PERRON_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PERRON_STRIPE_API_BASE": stripe_url,
    }

    async def invoke(*args: str, billing_on: bool = True) -> Result:
        # In a thread: the suite's running Perrons share the test's event loop, and must be
        # able to finish their transactions while the command waits for SQLite's lock.
        env = settings_env(settings) | (billing if billing_on else {"PERRON_BILLING_ENABLED": "false"})
        return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env, catch_exceptions=False)

    return invoke


async def test_an_operator_defines_synchronises_and_follows_plans(run: Any) -> None:
    defined = await run(
        "billing", "define-plan", "news-yearly", "--name", "fr=Actualités", "--name", "nl=Nieuws",
        "--module", "news", "--interval", "year", "--amount", "120,00", "--trial-days", "30",
    )  # fmt: skip
    assert defined.exit_code == 0, defined.output
    assert "Plan news-yearly is defined. Run `perron billing sync-plans`" in defined.output
    [plan] = json.loads((await run("billing", "plans", "--json")).output)
    assert (plan["unit_amount"], plan["trial_days"], plan["in_stripe"]) == (12000, 30, False)

    synced = await run("billing", "sync-plans")
    assert synced.exit_code == 0, synced.output
    assert "news-yearly: product prod_" in synced.output and "(new price)" in synced.output
    [plan] = json.loads((await run("billing", "plans", "--json")).output)
    assert plan["in_stripe"] and plan["stripe_price"].startswith("price_")
    assert "(up to date)" in (await run("billing", "sync-plans")).output

    created = await run(
        "tenants", "create", "hannut", "--nis", "64034", "--name", "fr=Hannut", "--language", "fr",
        "--domain", "hannut.test",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    customer = await run("billing", "customer", "--commune", "hannut")
    assert customer.exit_code == 0, customer.output
    assert customer.output.strip().startswith("cus_")
    assert (await run("billing", "customer", "--commune", "hannut")).output == customer.output
    overview = await run("billing", "overview", "--commune", "hannut")
    assert overview.exit_code == 0, overview.output
    assert customer.output.strip() in overview.output
    assert "No invoice yet." in (await run("billing", "invoices", "--commune", "hannut")).output
    assert "No event." in (await run("billing", "events")).output


async def test_wrong_input_and_billing_off_are_refused_in_words(run: Any) -> None:
    wrong = await run(
        "billing", "define-plan", "basic", "--name", "fr=Base", "--module", "news", "--interval", "month",
        "--amount", "douze",
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert "'douze' is not an amount" in wrong.output
    unknown = await run(
        "billing", "define-plan", "basic", "--name", "fr=Base", "--module", "weather", "--interval", "month",
        "--amount", "12",
    )  # fmt: skip
    assert unknown.exit_code == 1 and "no module named 'weather' is installed" in unknown.output
    assert "No plan yet" in (await run("billing", "plans")).output
    off = await run("billing", "sync-plans", billing_on=False)
    assert off.exit_code == 1 and "billing is switched off" in off.output
    missing = await run("billing", "overview")
    assert missing.exit_code == 1 and "--commune SLUG or --intercommunale SLUG" in missing.output
