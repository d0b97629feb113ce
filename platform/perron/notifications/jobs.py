"""The notification jobs: fan-out in batches, and the daily summaries.

Both work in batches and queue their own continuation with a cursor, so one transaction
never holds more than a batch (SQLite has one write lock) and a failure retries one batch.
Both are idempotent: a delivery is unique per notification, person and channel, and a summary
takes only deliveries still waiting for one.
"""

from __future__ import annotations

from uuid import UUID

from perron.jobs import JobContext, enqueue, job
from perron.notifications.service import DIGEST_JOB, FAN_OUT_JOB, fan_out_batch, send_digests_batch


@job(FAN_OUT_JOB)
async def fan_out(ctx: JobContext, *, notification_id: str, after: str | None = None) -> None:
    """Deliver a notification to its audience, a batch at a time."""
    following = await fan_out_batch(ctx.session, UUID(notification_id), UUID(after) if after else None)
    if following is not None:
        enqueue(ctx.session, fan_out, notification_id=notification_id, after=str(following))


@job(DIGEST_JOB)
async def send_digests(ctx: JobContext, *, after: str | None = None) -> None:
    """Send every waiting daily summary of the commune, a batch of people at a time."""
    assert ctx.tenant_id is not None  # a per-commune job
    following = await send_digests_batch(ctx.session, ctx.tenant_id, UUID(after) if after else None)
    if following is not None:
        enqueue(ctx.session, send_digests, after=str(following))
