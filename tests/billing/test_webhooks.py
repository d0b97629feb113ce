"""The Stripe webhook: only what Stripe signed is kept, once, and its processing is queued in
the same transaction."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from perron.billing import PayingBody
from perron.billing.jobs import PROCESS_EVENT_JOB
from perron.billing.models import BillingEvent
from perron.db.scope import platform_scope
from perron.jobs import PlatformJobRun
from perron.testing.harness import Harness, Tenant
from tests.billing.conftest import MODULE, BillingSite
from tests.billing.stripe_events import WEBHOOK_PATH, body_of, sign
from tests.identity.conftest import LogLines


async def _stored(site: Harness) -> tuple[int, int]:
    """(events kept, processing jobs queued)."""
    with platform_scope("test: count"):
        async with site.database.session() as session:
            events = await session.scalar(select(func.count()).select_from(BillingEvent))
            jobs = await session.scalar(
                select(func.count())
                .select_from(PlatformJobRun)
                .where(PlatformJobRun.job == PROCESS_EVENT_JOB)
            )
    return events or 0, jobs or 0


async def _an_event(site: BillingSite, alpha: Tenant) -> dict[str, Any]:
    price = await site.plan()
    scenario = await site.scenario(PayingBody("commune", alpha.id), price)
    return scenario.event("customer.subscription.created", scenario.subscription("active"))


async def _post(site: Harness, body: bytes, headers: dict[str, str]) -> Any:
    return await site.client("stripe.test").post(WEBHOOK_PATH, content=body, headers=headers)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong_secret", "bad_signature"),
        ("forged_body", "bad_signature"),
        ("stale", "stale_signature"),
        ("missing", "missing_signature"),
        ("malformed", "bad_signature"),
        ("not_json", "not_json"),
        ("not_an_event", "not_an_event"),
    ],
)
async def test_what_stripe_did_not_sign_is_refused_and_nothing_is_kept(
    site: BillingSite, alpha: Tenant, log_lines: LogLines, case: str, reason: str
) -> None:
    event = await _an_event(site, alpha)
    body = body_of(event)
    before = await _stored(site)
    headers = {"stripe-signature": sign(body)}
    if case == "wrong_secret":
        headers["stripe-signature"] = sign(body, secret="whsec_someone_else")
    elif case == "forged_body":
        body = body.replace(b'"active"', b'"trialing"')
    elif case == "stale":
        headers["stripe-signature"] = sign(body, timestamp=int(time.time()) - 301)
    elif case == "missing":
        headers = {}
    elif case == "malformed":
        headers["stripe-signature"] = "v1=deadbeef,t=yesterday"
    elif case == "not_json":
        body = b"<html>not json</html>"
        headers["stripe-signature"] = sign(body)
    elif case == "not_an_event":
        body = json.dumps({"id": "evt_x", "hello": "world"}).encode()
        headers["stripe-signature"] = sign(body)

    response = await _post(site, body, headers)

    assert response.status_code == 400
    assert response.json()["reason"] == reason
    assert await _stored(site) == before
    refused = log_lines.events("billing.webhook_refused")
    assert [line["reason"] for line in refused] == [reason]


async def test_a_signed_event_is_kept_once_with_its_job_and_a_replay_changes_nothing(
    site: BillingSite, alpha: Tenant
) -> None:
    event = await _an_event(site, alpha)
    events, queued = await _stored(site)

    first = await site.deliver(event)
    assert first.status_code == 200
    assert await _stored(site) == (events + 1, queued + 1)
    with platform_scope("test: read the event"):
        async with site.database.session() as session:
            kept = await session.get(BillingEvent, event["id"])
    assert kept is not None and kept.type == "customer.subscription.created"
    assert kept.subscription_ref == event["data"]["object"]["id"]

    replay = await site.deliver(event)
    assert replay.status_code == 200
    assert await _stored(site) == (events + 1, queued + 1)

    await site.run_jobs()
    after_run = await site.counts()
    assert (await site.deliver(event)).status_code == 200
    await site.run_jobs()
    assert await site.counts() == after_run


async def test_a_type_perron_does_not_act_on_is_kept_as_ignored_without_a_job(
    site: BillingSite, alpha: Tenant
) -> None:
    event = await _an_event(site, alpha)
    event["type"] = "customer.updated"
    before = await _stored(site)
    assert (await site.deliver(event)).status_code == 200
    assert await _stored(site) == (before[0] + 1, before[1])
    with platform_scope("test: read the event"):
        async with site.database.session() as session:
            kept = await session.get(BillingEvent, event["id"])
    assert kept is not None and kept.outcome == "ignored" and kept.processed_at is not None


async def test_the_webhook_answers_on_any_host_and_only_to_post(site: BillingSite, alpha: Tenant) -> None:
    event = await _an_event(site, alpha)
    assert (await site.deliver(event, host="no-such-commune.example")).status_code == 200
    assert (await site.client("alpha.test").get(WEBHOOK_PATH)).status_code == 405
    huge = b"x" * (600 * 1024)
    response = await _post(site, huge, {"stripe-signature": sign(huge)})
    assert response.status_code == 413


async def test_with_billing_off_the_webhook_does_not_exist_and_billable_modules_work(
    app_and_runtime: tuple[Any, Any], site: BillingSite
) -> None:
    # The suite's usual Perron bills nothing; a plan containing news exists in the database.
    await site.plan()
    plain = Harness(*app_and_runtime)
    tenant = await plain.commune("delta")
    await plain.enable(tenant, MODULE)
    body = b'{"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}}'
    before = await _stored(plain)
    response = await plain.client("delta.test").post(
        WEBHOOK_PATH, content=body, headers={"stripe-signature": sign(body)}
    )
    assert response.status_code == 404
    assert await _stored(plain) == before
    anonymous = plain.client(tenant)
    assert (await anonymous.get("/news")).status_code == 200
    assert "/news" in (await anonymous.get("/")).text
    # The same commune seen by the billing Perron: news is billable and nobody pays for it.
    assert (await site.client(tenant).get("/news")).status_code == 404
    await plain.close()
