"""Job queues: RQ on Redis when REDIS_URL is set, otherwise the same jobs run in-process (the embedded default)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.settings import Settings

SYNC_QUEUE = "sync"
SCORE_QUEUE = "score"


def writeback_queues() -> list[str]:
    """One write-back queue per vendor (connectors/registry.py), dequeued round-robin by the workers."""
    from connectors.registry import all_connectors

    return [c.writeback_queue for c in all_connectors()]


def all_queues() -> tuple[str, ...]:
    return (SCORE_QUEUE, *writeback_queues(), SYNC_QUEUE)


@dataclass
class InlineJob:
    id: str
    result: Any


class InlineQueue:
    """Runs a job the moment it is enqueued, in this process: what `cse demo` and a Redis-less install use."""

    def __init__(self, name: str) -> None:
        self.name = name

    def enqueue(self, func: Callable, *args: Any, job_id: str | None = None, **options: Any) -> InlineJob:
        return InlineJob(job_id or uuid.uuid4().hex, func(*args))


def redis_connection(settings: Settings):
    """A Redis client whose every wait is bounded (CSE_REDIS_TIMEOUT_SECONDS): connecting, reading, and the health
    check of an idle pooled connection. A dropped connection (Redis restarting) is retried a few times with an
    exponential backoff; a timeout (Redis frozen) is not, so a caller waits one timeout, not several."""
    from redis import ConnectionError as RedisConnectionError
    from redis import Redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    timeout = settings.redis_timeout_seconds
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3, supported_errors=(RedisConnectionError,))
    return Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout,
                          health_check_interval=30, socket_keepalive=True, retry=retry)  # fmt: skip


def get_queue(settings: Settings, name: str, connection=None):
    """The named queue: RQ when Redis is configured, in-process otherwise."""
    if not settings.redis_url:
        return InlineQueue(name)
    from rq import Queue

    return Queue(name, connection=connection or redis_connection(settings))


def job_alive(settings: Settings, job_id: str, connection=None) -> bool:
    """Whether RQ still holds the job as waiting or running; a lost job (worker killed, Redis restarted) is not."""
    if not settings.redis_url:
        return False
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        status = Job.fetch(job_id, connection=connection or redis_connection(settings)).get_status(refresh=True)
    except NoSuchJobError:
        return False
    return status in {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED, "rate_limited"}
