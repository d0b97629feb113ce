"""Background jobs: declare with :func:`job`, queue with :func:`enqueue` (after commit),
follow with :func:`status`; operators handle failures through the dead letters."""

from perron.jobs.deadletters import (
    DeadLetter,
    DeadLetterReason,
    discard_dead_letter,
    get_dead_letter,
    list_dead_letters,
    retry_dead_letter,
)
from perron.jobs.outbox import OutboxMessage, QueuedJob, enqueue
from perron.jobs.registry import JOBS, JobContext, job
from perron.jobs.status import JobRun, JobState, JobStatus, PlatformJobRun, list_statuses, status

__all__ = [
    "JOBS",
    "DeadLetter",
    "DeadLetterReason",
    "JobContext",
    "JobRun",
    "JobState",
    "JobStatus",
    "OutboxMessage",
    "PlatformJobRun",
    "QueuedJob",
    "discard_dead_letter",
    "enqueue",
    "get_dead_letter",
    "job",
    "list_dead_letters",
    "list_statuses",
    "retry_dead_letter",
    "status",
]
