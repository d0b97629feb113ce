"""Background jobs: declare with :func:`job`, queue with :func:`enqueue` (after commit)."""

from perron.jobs.outbox import OutboxMessage, enqueue
from perron.jobs.registry import JOBS, JobContext, job

__all__ = ["JOBS", "JobContext", "OutboxMessage", "enqueue", "job"]
