"""arq worker: one WorkerSettings with start-up/shut-down hooks and the cron schedule."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import structlog
from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker, func

from loyalty import clock, db, fanout, hooks, redis_embedded
from loyalty.benefits.tasks import benefits_release_expired, benefits_release_reservation
from loyalty.events.tasks import events_publish, events_reconcile
from loyalty.jobs import QUEUE_NAME
from loyalty.observability import configure_logging
from loyalty.points.tasks import points_activate_pending, points_expire_due
from loyalty.settings import Settings, get_settings
from loyalty.tiers.tasks import tiers_reevaluate, tiers_review

log = structlog.get_logger(__name__)

# Fire-and-forget jobs keep no result: their effect lives in the database.
FUNCTIONS: list[Function | WorkerCoroutine] = [
    func(events_publish, keep_result=0, max_tries=5),
    func(events_reconcile, keep_result=0),
    func(tiers_review, keep_result=0),
    func(tiers_reevaluate, keep_result=0),
    func(benefits_release_reservation, keep_result=0),
    func(benefits_release_expired, keep_result=0),
    func(points_expire_due, keep_result=0),
    func(points_activate_pending, keep_result=0),
    # One chunk of a batch run; transient faults retry it (Retry), up to its max tries.
    func(fanout.jobs_run_chunk, keep_result=0, max_tries=fanout.CHUNK_MAX_TRIES),
    func(fanout.jobs_reconcile, keep_result=0),
]

CRON_JOBS = [
    cron(events_reconcile, second={0, 30}, unique=True, run_at_startup=False),
    # Chunks of batch runs whose job was lost are sent again (or given up) after their lease.
    cron(fanout.jobs_reconcile, second={20}, unique=True, run_at_startup=False),
    cron(tiers_review, hour={2}, minute={15}, second={0}, unique=True, run_at_startup=False),
    cron(benefits_release_expired, second={5}, unique=True, run_at_startup=False),
    cron(points_expire_due, minute={10}, second={0}, unique=True, run_at_startup=False),
    cron(points_activate_pending, minute={5, 35}, second={0}, unique=True, run_at_startup=False),
]


def register(*functions: Function | WorkerCoroutine) -> None:
    """Domains add their jobs here (importing this module lists them all)."""
    FUNCTIONS.extend(functions)


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    hooks.load()
    clock.configure(settings.business_timezone)
    if not ctx.get("external_db"):
        from tortoise import Tortoise

        # Keep the context object: on_shutdown runs in another task and must close *this*.
        ctx["tortoise"] = await Tortoise.init(config=db.config_from_settings(settings))
    log.info("worker.started")


async def on_shutdown(ctx: dict[str, Any]) -> None:
    tortoise_ctx = ctx.pop("tortoise", None)
    if tortoise_ctx is not None:
        await tortoise_ctx.close_connections()
    log.info("worker.stopped")


def _redis_settings() -> RedisSettings:
    settings = get_settings()
    target = None
    if not settings.redis_url:
        target = redis_embedded.published(settings.data_dir)
    if target is None:
        target = redis_embedded.resolve(settings.redis_url, settings.data_dir)
    return target.arq_settings()


class WorkerSettings:
    """``arq loyalty.worker.settings.WorkerSettings`` (or ``loyalty worker``)."""

    functions: ClassVar[list[Any]] = FUNCTIONS
    cron_jobs: ClassVar[list[Any]] = CRON_JOBS
    on_startup = on_startup
    on_shutdown = on_shutdown
    queue_name = QUEUE_NAME
    max_jobs = 100
    poll_delay = 0.05
    job_timeout = 300
    keep_result = 3600
    health_check_interval = 10
    timezone = ZoneInfo(get_settings().business_timezone)
    # The arq CLI reads this at start; `loyalty worker` resolves the same thing itself.
    redis_settings = _redis_settings() if get_settings().redis_url else None


def build_worker(
    redis: ArqRedis,
    settings: Settings,
    *,
    burst: bool = False,
    external_db: bool = False,
    handle_signals: bool = True,
    cron_jobs: bool = True,
    job_completion_wait: int = 0,
) -> Worker:
    """A worker bound to ``redis``; ``external_db`` means the caller's Tortoise context is used."""
    return Worker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS if cron_jobs else None,
        redis_pool=redis,
        queue_name=QUEUE_NAME,
        burst=burst,
        poll_delay=0.05 if burst else WorkerSettings.poll_delay,
        max_jobs=settings.worker_max_jobs,
        job_timeout=WorkerSettings.job_timeout,
        keep_result=WorkerSettings.keep_result,
        health_check_interval=WorkerSettings.health_check_interval,
        handle_signals=handle_signals,
        job_completion_wait=job_completion_wait,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        ctx={"settings": settings, "external_db": external_db},
        # Cron schedules (e.g. the 02:15 tier review) follow the business time zone.
        timezone=ZoneInfo(settings.business_timezone),
    )


def run_worker_in_background(redis: ArqRedis, settings: Settings) -> asyncio.Task[Any]:
    """Run the worker (and its cron) inside the API's event loop: the embedded default.

    One process means one SQLite writer, so the API and the worker never meet
    "database is locked".
    """
    worker = build_worker(redis, settings, external_db=True, handle_signals=False)
    return asyncio.create_task(worker.async_run(), name="loyalty-worker")


async def run_standalone(settings: Settings) -> None:
    """``loyalty worker``: own Redis pool and database, stops cleanly on SIGTERM/SIGINT.

    On a signal the worker takes no new job, lets running ones finish for up to the job
    timeout (arq re-queues any it then has to cancel), closes its connections and returns,
    so the process exits 0.
    """
    from arq.connections import create_pool

    target = None if settings.redis_url else redis_embedded.published(settings.data_dir)
    owns_embedded = target is None and not settings.redis_url
    if target is None:
        target = redis_embedded.resolve(settings.redis_url, settings.data_dir)
    configure_logging(settings)
    try:
        redis = await create_pool(target.arq_settings(), default_queue_name=QUEUE_NAME)
        worker = build_worker(redis, settings, job_completion_wait=WorkerSettings.job_timeout)
        try:
            # arq's signal handler cancels the task that async_run() creates: it must own
            # the main task, or nothing is there to cancel and the signal is ignored.
            await worker.async_run()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this coroutine itself was cancelled, not arq's main task
            log.info("worker.stopping", reason="signal")
        finally:
            await worker.close()
    finally:
        if owns_embedded:
            redis_embedded.stop(settings.data_dir)
