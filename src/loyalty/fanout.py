"""Batch jobs over members, fanned out in chunks and aggregated in a :class:`JobRun`.

A run is one set-based selection of member ids (ascending), cut into chunks of
``fanout_chunk_size`` members (1–5,000). The run and one :class:`JobRunChunk` row per chunk,
holding the chunk's member ids, are written in one transaction: a chunk can be sent again
from the database alone. Each chunk is one arq job ``jobs_run_chunk(run_id, number)`` with the
deterministic id ``<domain>:<action>:<period>:<chunk>``, or run one after the other in the
caller's process (:func:`run_inline`: the CLI). Every chunk does its members one by one: a
member whose work fails is recorded in the run and skipped, the chunk carries on. A transient
fault (database connection lost, Redis timeout) stops the chunk instead, and the arq job is
tried again later (:class:`arq.Retry`); on its last try such a member is recorded as failed too.

A chunk is counted once: finishing it turns its row from PENDING to DONE (a guarded update) in
the transaction that adds its counts to the run, and a DONE chunk is not run again. The work
of one member is itself idempotent (each domain's), so a chunk cut off half way and run again
does nothing twice.

A chunk job can be lost (Redis flushed, a worker killed after arq gave up, a dispatch that
failed after the run was written). :func:`reconcile` (a cron every minute) sends every chunk
not done whose lease (``fanout_chunk_lease_seconds`` since its last send) ran out again, with
the same job id; after ``fanout_chunk_max_resends`` re-sends its members are recorded as failed
and the chunk done, so the run finishes. :func:`retry` re-runs the failed members of a
finished run as a new run (``retry_of``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

import structlog
from arq import Retry
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.errors import FieldError, NotFoundError, ValidationError
from loyalty.jobs import QUEUE_NAME
from loyalty.worker.context import JobContext
from loyalty.worker.models import ChunkStatus, JobRun, JobRunChunk, RunStatus

log = structlog.get_logger(__name__)

#: The arq function that runs one chunk (registered by the worker).
CHUNK_FUNCTION = "jobs_run_chunk"
#: Failures kept in ``JobRun.errors`` (the counts hold them all, the chunks every member).
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
    and record the run with its chunks; nothing is done to any member yet (see
    :func:`dispatch`, :func:`run_inline`).

    A run of the same job and date still RUNNING is returned as it is (``started`` False), so
    a repeated cron tick or a double click starts nothing twice. ``dry_run`` only selects:
    nothing is written. Raises :class:`NotFoundError` (unknown job) and
    :class:`ValidationError` (a date after today, a chunk size outside 1–5,000).
    """
    job = get_job(name)
    period = _check(period, chunk_size)
    if not dry_run:
        running = await _running(name, period)
        if running is not None:
            return Launch(job, period, running.chunk_size, [], running, started=False)
    ids = await job.select(period)
    launch = Launch(job, period, chunk_size, _cut(ids, chunk_size))
    if dry_run:
        return launch
    return await _record(launch, trigger=trigger)


async def _running(name: str, period: date) -> JobRun | None:
    return await JobRun.filter(
        name=name, period=period.isoformat(), status=RunStatus.RUNNING
    ).first()


def _cut(ids: list[int], chunk_size: int) -> list[list[int]]:
    return [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]


async def _record(launch: Launch, *, trigger: str, retry_of: int | None = None) -> Launch:
    """Write the run and its PENDING chunks in one transaction; the lease of every chunk
    starts now (whoever started the run sends or runs them)."""
    now = clock.now()
    chunks = launch.chunks
    async with in_transaction() as conn:
        launch.run = await JobRun.create(
            name=launch.job.name,
            period=launch.period.isoformat(),
            trigger=trigger,
            members_total=launch.members,
            chunk_size=launch.chunk_size,
            chunks_total=len(chunks),
            status=RunStatus.RUNNING if chunks else RunStatus.SUCCEEDED,
            retry_of=retry_of,
            started_at=now,
            finished_at=None if chunks else now,
            using_db=conn,
        )
        await JobRunChunk.bulk_create(
            [
                JobRunChunk(run_id=launch.run.id, chunk=n, member_ids=ids, last_sent_at=now)
                for n, ids in enumerate(chunks)
            ],
            batch_size=100,
            using_db=conn,
        )
    launch.started = True
    log.info("jobs.run.started", job=launch.job.name, period=launch.period.isoformat(),
             run_id=launch.run.id, members=launch.members, chunks=len(chunks),
             retry_of=retry_of)  # fmt: skip
    return launch


async def dispatch(launch: Launch, redis: ArqRedis) -> int:
    """Queue one arq job per chunk of a new run; returns how many arq accepted."""
    if launch.run is None or not launch.started:
        return 0
    queued = 0
    for number in range(len(launch.chunks)):
        queued += await _send(redis, launch.job, launch.period, launch.run.id, number)
    return queued


async def _send(redis: ArqRedis, job: BatchJob, period: date, run_id: int, number: int) -> bool:
    """Queue the chunk's job and start its lease; False when arq already holds that job id
    (queued, deferred or running: the lease starts again, no send is counted)."""
    queued = await redis.enqueue_job(
        CHUNK_FUNCTION,
        run_id,
        number,
        _job_id=job.job_id(period, number),
        _queue_name=QUEUE_NAME,
    )
    chunk = JobRunChunk.filter(run_id=run_id, chunk=number, status=ChunkStatus.PENDING)
    if queued is None:
        await chunk.update(last_sent_at=clock.now())
        return False
    await chunk.update(sends=F("sends") + 1, last_sent_at=clock.now())
    return True


async def run_inline(launch: Launch, redis: ArqRedis | None = None) -> JobRun | None:
    """Run every chunk of a new run here, one after the other; returns the finished run.

    Before each chunk the lease of the chunks still to do starts again, so the reconciler
    leaves them alone while this process works through them (and takes them over if it dies).
    """
    if launch.run is None or not launch.started:
        return launch.run
    run_id = launch.run.id
    for number in range(len(launch.chunks)):
        await JobRunChunk.filter(run_id=run_id, status=ChunkStatus.PENDING).update(
            last_sent_at=clock.now()
        )
        for attempt in range(1, CHUNK_MAX_TRIES + 1):
            try:
                await run_chunk(
                    run_id=run_id,
                    number=number,
                    redis=redis,
                    last_try=attempt == CHUNK_MAX_TRIES,
                )
                break
            except TransientFault:
                await asyncio.sleep(0.2 * attempt)
    return await JobRun.get(id=run_id)


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
    failed_ids: list[int] = field(default_factory=list)
    counted: bool = False


async def run_chunk(
    *,
    run_id: int,
    number: int,
    redis: ArqRedis | None = None,
    last_try: bool = True,
) -> ChunkResult:
    """Do one chunk of a run (its members read from its row) and add its counts to the run,
    once.

    A chunk already done (or unknown) is not run again (``counted`` False). Raises
    :class:`TransientFault` on a transient fault unless ``last_try``, where it is recorded as
    that member's failure.
    """
    result = ChunkResult()
    run = await JobRun.get_or_none(id=run_id)
    chunk = await JobRunChunk.get_or_none(run_id=run_id, chunk=number)
    if run is None or chunk is None or chunk.status is ChunkStatus.DONE:
        return result
    member_ids = [int(m) for m in chunk.member_ids]
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
            result.failed_ids.append(member_id)
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


def _status(counts: dict[str, Any], members_total: int) -> RunStatus:
    failed = int(counts.get(FAILED, 0))
    if failed == 0:
        return RunStatus.SUCCEEDED
    return RunStatus.FAILED if failed >= members_total else RunStatus.PARTIAL


@db.retry_conflicts
async def _complete(run_id: int, number: int, result: ChunkResult) -> bool:
    """Mark the chunk DONE and add its counts to the run, in one transaction; False (and
    nothing written) when it was done already, elsewhere."""
    async with in_transaction() as conn:
        done = (
            await JobRunChunk.filter(run_id=run_id, chunk=number, status=ChunkStatus.PENDING)
            .using_db(conn)
            .update(
                status=ChunkStatus.DONE,
                counts=result.counts,
                failed_ids=result.failed_ids,
                member_ids=[],
                finished_at=clock.now(),
            )
        )
        if not done:
            return False
        run = await JobRun.filter(id=run_id).select_for_update().using_db(conn).get()
        counts = dict(run.counts)
        for key, value in result.counts.items():
            counts[key] = int(counts.get(key, 0)) + value
        run.counts = counts
        run.errors = [*run.errors, *result.errors][:MAX_ERRORS]
        run.chunks_done += 1
        if run.chunks_done >= run.chunks_total and run.status is RunStatus.RUNNING:
            run.finished_at = clock.now()
            run.status = _status(counts, run.members_total)
        await run.save(using_db=conn)
    if run.finished_at is not None:
        log.info("jobs.run.finished", job=run.name, run_id=run_id, status=run.status.value,
                 counts=run.counts)  # fmt: skip
    return True


async def jobs_run_chunk(ctx: dict[str, Any], run_id: int, number: int) -> None:
    """arq: one chunk of a run (see :func:`run_chunk`); transient faults retry later."""
    job = JobContext.of(ctx)
    try:
        await run_chunk(
            run_id=run_id,
            number=number,
            redis=job.redis,
            last_try=job.job_try >= CHUNK_MAX_TRIES,
        )
    except Exception as exc:
        if job.job_try < CHUNK_MAX_TRIES and (isinstance(exc, TransientFault) or is_transient(exc)):
            log.warning("jobs.chunk.retry", run_id=run_id, chunk=number, try_=job.job_try)
            raise Retry(defer=5 * job.job_try) from exc
        raise


@dataclass
class Reconciled:
    """What :func:`reconcile` did: chunks sent again, chunks given up, runs finalised."""

    resent: int = 0
    given_up: int = 0
    finalised: int = 0


async def reconcile(*, redis: ArqRedis, lease: timedelta, max_resends: int) -> Reconciled:
    """Send again every chunk of a RUNNING run not done ``lease`` after its last send.

    A chunk whose job arq still holds (queued, deferred for a retry, running) only has its
    lease started again. One already re-sent ``max_resends`` times is given up: its members
    are recorded as failed and the chunk done, so the run can finish. A RUNNING run with no
    chunk left to do is finalised. Safe to run concurrently (the job id and the PENDING to
    DONE guard keep every chunk queued and counted once).
    """
    report = Reconciled()
    cutoff = clock.now() - lease
    runs = {r.id: r for r in await JobRun.filter(status=RunStatus.RUNNING)}
    if not runs:
        return report
    stale = await JobRunChunk.filter(
        run_id__in=list(runs), status=ChunkStatus.PENDING, last_sent_at__lt=cutoff
    ).order_by("run_id", "chunk")
    for chunk in stale:
        run = runs[chunk.run_id]
        job = get_job(run.name)
        period = date.fromisoformat(run.period)
        job_id = job.job_id(period, chunk.chunk)
        if await redis.exists(job_key_prefix + job_id):
            await JobRunChunk.filter(id=chunk.id, status=ChunkStatus.PENDING).update(
                last_sent_at=clock.now()
            )
        elif chunk.sends > max_resends:
            report.given_up += await _give_up(chunk)
        else:
            sent = await _send(redis, job, period, run.id, chunk.chunk)
            report.resent += sent
            if sent:
                log.warning("jobs.chunk.resent", job=run.name, run_id=run.id, chunk=chunk.chunk,
                            sends=chunk.sends + 1)  # fmt: skip
    left = set(
        await JobRunChunk.filter(run_id__in=list(runs), status=ChunkStatus.PENDING)
        .distinct()
        .values_list("run_id", flat=True)
    )
    for run_id in runs.keys() - left:
        report.finalised += await _finalise(run_id)
    return report


async def _give_up(chunk: JobRunChunk) -> int:
    members = [int(m) for m in chunk.member_ids]
    error = f"chunk {chunk.chunk} lost: its job disappeared after {chunk.sends} sends"
    result = ChunkResult(
        counts={FAILED: len(members)} if members else {},
        errors=[{"member_id": m, "error": error} for m in members[:MAX_ERRORS]],
        failed_ids=members,
    )
    counted = await _complete(chunk.run_id, chunk.chunk, result)
    if counted:
        log.error("jobs.chunk.given_up", run_id=chunk.run_id, chunk=chunk.chunk,
                  members=len(members), sends=chunk.sends)  # fmt: skip
    return int(counted)


@db.retry_conflicts
async def _finalise(run_id: int) -> int:
    """Finish a RUNNING run whose chunks are all done, from the chunks' counts."""
    async with in_transaction() as conn:
        run = await JobRun.filter(id=run_id).select_for_update().using_db(conn).get()
        chunks = await JobRunChunk.filter(run_id=run_id).using_db(conn)
        if run.status is not RunStatus.RUNNING or any(
            c.status is ChunkStatus.PENDING for c in chunks
        ):
            return 0
        counts: dict[str, int] = {}
        for chunk in chunks:
            for key, value in chunk.counts.items():
                counts[key] = counts.get(key, 0) + int(value)
        run.counts = counts
        run.chunks_done = len(chunks)
        run.status = _status(counts, run.members_total)
        run.finished_at = clock.now()
        await run.save(using_db=conn)
    log.info("jobs.run.finished", job=run.name, run_id=run_id, status=run.status.value,
             counts=run.counts)  # fmt: skip
    return 1


async def jobs_reconcile(ctx: dict[str, Any]) -> int:
    """Every minute: send lost chunks again, give up on those lost too often (see
    :func:`reconcile`); returns the chunks sent again."""
    job = JobContext.of(ctx)
    if job.redis is None:
        return 0
    report = await reconcile(
        redis=job.redis,
        lease=timedelta(seconds=job.settings.fanout_chunk_lease_seconds),
        max_resends=job.settings.fanout_chunk_max_resends,
    )
    if report.resent or report.given_up or report.finalised:
        log.info("jobs.reconcile", resent=report.resent, given_up=report.given_up,
                 finalised=report.finalised)  # fmt: skip
    return report.resent


async def retry(
    *,
    name: str,
    chunk_size: int,
    period: date | None = None,
    run_id: int | None = None,
    trigger: str = "cli",
) -> Launch:
    """Start a new run of ``name`` over the members that failed in a finished run: run
    ``run_id``, or else the latest run for business date ``period`` (default today). The new
    run has the same job and date, ``retry_of`` the source run; run it like any other
    (:func:`run_inline`, :func:`dispatch`).

    A run of the job and date still RUNNING (the source itself, or an earlier retry) is
    returned as it is (``started`` False). Raises :class:`NotFoundError` (unknown job, no
    such run) and :class:`ValidationError` (the run had no failed member, a bad date or
    chunk size).
    """
    job = get_job(name)
    if run_id is not None:
        _check(None, chunk_size)
        source = await JobRun.get_or_none(id=run_id, name=name)
        if source is None:
            raise NotFoundError("job run", run_id)
        period = date.fromisoformat(source.period)
    else:
        period = _check(period, chunk_size)
        source = await JobRun.filter(name=name, period=period.isoformat()).order_by("-id").first()
        if source is None:
            raise NotFoundError("job run", f"{name} {period.isoformat()}")
    running = await _running(name, period)
    if running is not None:
        return Launch(job, period, running.chunk_size, [], running, started=False)
    failed: set[int] = set()
    for ids in await JobRunChunk.filter(run_id=source.id).values_list("failed_ids", flat=True):
        failed.update(int(m) for m in ids)  # type: ignore[union-attr]
    if not failed:
        raise ValidationError(FieldError("run", f"run #{source.id} has no failed members"))
    launch = Launch(job, period, chunk_size, _cut(sorted(failed), chunk_size))
    return await _record(launch, trigger=trigger, retry_of=source.id)


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
