"""Batch jobs over members, fanned out in chunks and aggregated in a :class:`JobRun`.

A run is one set-based selection of member ids (ascending), cut into chunks of
``fanout_chunk_size`` members (1–5,000), each chunk one arq job with the deterministic id
``<domain>:<action>:<period>:<chunk>`` (:data:`CHUNK_FUNCTION`), or run one after the other in
the caller's process (:func:`run_inline`: the CLI). Every chunk does its members one by one: a
member whose work fails is recorded in the run and skipped, the chunk carries on. A transient
fault (database connection lost, Redis timeout) stops the chunk instead, and the arq job is
tried again later (:class:`arq.Retry`); on its last try such a member is recorded as failed too.

A chunk is counted once: finishing it inserts a ``(run_id, chunk)`` row in the transaction
that adds its counts to the run, and a chunk found there is not run again. The work of one
member is itself idempotent (each domain's), so a chunk cut off half way and run again does
nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import structlog
from arq import Retry
from arq.connections import ArqRedis
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.errors import FieldError, NotFoundError, ValidationError
from loyalty.jobs import QUEUE_NAME
from loyalty.worker.context import JobContext
from loyalty.worker.models import JobRun, JobRunChunk, RunStatus

log = structlog.get_logger(__name__)

#: The arq function that runs one chunk (registered by the worker).
CHUNK_FUNCTION = "jobs_run_chunk"
#: Failures kept in ``JobRun.errors`` (the counts hold them all).
MAX_ERRORS = 100
#: Tries of a chunk job meeting transient faults before they count as member failures.
CHUNK_MAX_TRIES = 5
FAILED = "failed"


class ChunkWork(Protocol):
    """A domain's work on one chunk, prepared once per chunk (e.g. one SQL statement)."""

    async def member(self, member_id: int) -> str:
        """Do one member's work (idempotent); returns its outcome, e.g. ``expired``."""
        ...

    async def finish(self, outcomes: dict[int, str]) -> dict[str, int]:
        """After every member: follow-ups of the chunk; returns extra counts to add."""
        ...


@dataclass(frozen=True)
class Chunk:
    """One chunk of a run, as the domain sees it."""

    run_id: int
    number: int
    period: date
    member_ids: list[int]
    redis: ArqRedis | None = None


@dataclass(frozen=True)
class BatchJob:
    """A job fanned out over members: ``select`` returns every member id the run for a
    business date covers (ascending, one set-based statement); ``prepare`` builds a chunk's
    work."""

    name: str
    domain: str
    action: str
    description: str
    select: Callable[[date], Awaitable[list[int]]]
    prepare: Callable[[Chunk], Awaitable[ChunkWork]]

    def job_id(self, period: date, chunk: int) -> str:
        return f"{self.domain}:{self.action}:{period.isoformat()}:{chunk}"


JOBS: dict[str, BatchJob] = {}


def register(job: BatchJob) -> BatchJob:
    """Add a domain's batch job (importing the domain's ``tasks`` module does it)."""
    JOBS[job.name] = job
    return job


def get_job(name: str) -> BatchJob:
    """The batch job called ``name``; :class:`NotFoundError` if there is none."""
    if not JOBS:
        import loyalty.worker.settings  # noqa: F401  (imports every domain's jobs)
    job = JOBS.get(name)
    if job is None:
        raise NotFoundError("job", name)
    return job


@dataclass
class Launch:
    """What :func:`start` did: the run (None for a dry run), its chunks, whether it is new."""

    job: BatchJob
    period: date
    chunk_size: int
    chunks: list[list[int]]
    run: JobRun | None = None
    started: bool = False

    @property
    def members(self) -> int:
        return sum(len(c) for c in self.chunks)


def _check(period: date | None, chunk_size: int) -> date:
    if not 1 <= chunk_size <= 5_000:
        raise ValidationError(FieldError("chunk_size", "must be 1 to 5,000"))
    today = clock.today()
    if period is None:
        return today
    if period > today:
        raise ValidationError(FieldError("date", f"must not be after today ({today.isoformat()})"))
    return period


async def start(
    *,
    name: str,
    period: date | None = None,
    chunk_size: int,
    trigger: str = "cron",
    dry_run: bool = False,
) -> Launch:
    """Select the members of a run of ``name`` for business date ``period`` (default today)
    and record the run; nothing is done to any member yet (see :func:`dispatch`,
    :func:`run_inline`).

    A run of the same job and date still RUNNING is returned as it is (``started`` False), so
    a repeated cron tick or a double click starts nothing twice. ``dry_run`` only selects:
    nothing is written. Raises :class:`NotFoundError` (unknown job) and
    :class:`ValidationError` (a date after today, a chunk size outside 1–5,000).
    """
    job = get_job(name)
    period = _check(period, chunk_size)
    if not dry_run:
        running = await JobRun.filter(
            name=name, period=period.isoformat(), status=RunStatus.RUNNING
        ).first()
        if running is not None:
            return Launch(job, period, running.chunk_size, [], running, started=False)
    ids = await job.select(period)
    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    launch = Launch(job, period, chunk_size, chunks)
    if dry_run:
        return launch
    now = clock.now()
    launch.run = await JobRun.create(
        name=name,
        period=period.isoformat(),
        trigger=trigger,
        members_total=len(ids),
        chunk_size=chunk_size,
        chunks_total=len(chunks),
        status=RunStatus.RUNNING if chunks else RunStatus.SUCCEEDED,
        started_at=now,
        finished_at=None if chunks else now,
    )
    launch.started = True
    log.info("jobs.run.started", job=name, period=period.isoformat(), run_id=launch.run.id,
             members=len(ids), chunks=len(chunks))  # fmt: skip
    return launch


async def dispatch(launch: Launch, redis: ArqRedis) -> int:
    """Queue one arq job per chunk of a new run; returns how many arq accepted."""
    if launch.run is None or not launch.started:
        return 0
    queued = 0
    for number, member_ids in enumerate(launch.chunks):
        job = await redis.enqueue_job(
            CHUNK_FUNCTION,
            launch.run.id,
            number,
            member_ids,
            _job_id=launch.job.job_id(launch.period, number),
            _queue_name=QUEUE_NAME,
        )
        queued += job is not None
    return queued


async def run_inline(launch: Launch, redis: ArqRedis | None = None) -> JobRun | None:
    """Run every chunk of a new run here, one after the other; returns the finished run."""
    if launch.run is None or not launch.started:
        return launch.run
    for number, member_ids in enumerate(launch.chunks):
        for attempt in range(1, CHUNK_MAX_TRIES + 1):
            try:
                await run_chunk(
                    run_id=launch.run.id,
                    number=number,
                    member_ids=member_ids,
                    redis=redis,
                    last_try=attempt == CHUNK_MAX_TRIES,
                )
                break
            except TransientFault:
                await asyncio.sleep(0.2 * attempt)
    return await JobRun.get(id=launch.run.id)


class TransientFault(Exception):
    """A member's work met a fault that may pass (connection lost, timeout): try later."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a lost connection or a timeout."""
    import redis.exceptions

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(
            current,
            ConnectionError
            | TimeoutError
            | redis.exceptions.ConnectionError
            | redis.exceptions.TimeoutError,
        ):
            return True
        state = str(getattr(current, "sqlstate", "") or "")
        if state.startswith("08") or state in {"57P01", "57P02", "57P03"}:
            return True
        if type(current).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"}:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@dataclass
class ChunkResult:
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    counted: bool = False


async def run_chunk(
    *,
    run_id: int,
    number: int,
    member_ids: list[int],
    redis: ArqRedis | None = None,
    last_try: bool = True,
) -> ChunkResult:
    """Do one chunk of a run and add its counts to the run, once.

    A chunk already counted is not run again (``counted`` False). Raises
    :class:`TransientFault` on a transient fault unless ``last_try``, where it is recorded as
    that member's failure.
    """
    result = ChunkResult()
    run = await JobRun.get_or_none(id=run_id)
    if run is None or await JobRunChunk.exists(run_id=run_id, chunk=number):
        return result
    job = get_job(run.name)
    period = date.fromisoformat(run.period)
    work = await job.prepare(Chunk(run_id, number, period, member_ids, redis))
    outcomes: dict[int, str] = {}
    for member_id in member_ids:
        try:
            outcome = await work.member(member_id)
        except Exception as exc:  # one member must not hold up the others
            if is_transient(exc) and not last_try:
                raise TransientFault(str(exc)) from exc
            log.exception("jobs.member.failed", job=run.name, run_id=run_id, member_id=member_id)
            outcome = FAILED
            if len(result.errors) < MAX_ERRORS:
                result.errors.append(
                    {"member_id": member_id, "error": f"{type(exc).__name__}: {exc}"[:500]}
                )
        outcomes[member_id] = outcome
        result.counts[outcome] = result.counts.get(outcome, 0) + 1
    for key, value in (await work.finish(outcomes)).items():
        result.counts[key] = result.counts.get(key, 0) + value
    result.counted = await _complete(run_id, number, result)
    return result


@db.retry_conflicts
async def _complete(run_id: int, number: int, result: ChunkResult) -> bool:
    try:
        async with in_transaction() as conn:
            await JobRunChunk.create(
                run_id=run_id,
                chunk=number,
                counts=result.counts,
                finished_at=clock.now(),
                using_db=conn,
            )
            run = await JobRun.filter(id=run_id).select_for_update().using_db(conn).get()
            counts = dict(run.counts)
            for key, value in result.counts.items():
                counts[key] = int(counts.get(key, 0)) + value
            run.counts = counts
            run.errors = [*run.errors, *result.errors][:MAX_ERRORS]
            run.chunks_done += 1
            if run.chunks_done >= run.chunks_total:
                run.finished_at = clock.now()
                failed = int(counts.get(FAILED, 0))
                run.status = (
                    RunStatus.SUCCEEDED
                    if failed == 0
                    else RunStatus.FAILED
                    if failed >= run.members_total
                    else RunStatus.PARTIAL
                )
            await run.save(using_db=conn)
    except IntegrityError:
        return False  # the same chunk finished elsewhere first: counted there
    if run.finished_at is not None:
        log.info("jobs.run.finished", job=run.name, run_id=run_id, status=run.status.value,
                 counts=run.counts)  # fmt: skip
    return True


async def jobs_run_chunk(
    ctx: dict[str, Any], run_id: int, number: int, member_ids: list[int]
) -> None:
    """arq: one chunk of a run (see :func:`run_chunk`); transient faults retry later."""
    job = JobContext.of(ctx)
    try:
        await run_chunk(
            run_id=run_id,
            number=number,
            member_ids=member_ids,
            redis=job.redis,
            last_try=job.job_try >= CHUNK_MAX_TRIES,
        )
    except Exception as exc:
        if job.job_try < CHUNK_MAX_TRIES and (isinstance(exc, TransientFault) or is_transient(exc)):
            log.warning("jobs.chunk.retry", run_id=run_id, chunk=number, try_=job.job_try)
            raise Retry(defer=5 * job.job_try) from exc
        raise


async def launch_from_cron(ctx: dict[str, Any], name: str) -> int:
    """A cron tick: start today's run of ``name`` and queue its chunks; returns the run id."""
    job = JobContext.of(ctx)
    try:
        launch = await start(name=name, chunk_size=job.settings.fanout_chunk_size, trigger="cron")
        if job.redis is not None:
            await dispatch(launch, job.redis)
        else:
            await run_inline(launch)
    except Exception as exc:
        if is_transient(exc) and job.job_try < CHUNK_MAX_TRIES:
            raise Retry(defer=5 * job.job_try) from exc
        raise
    assert launch.run is not None
    return int(launch.run.id)
