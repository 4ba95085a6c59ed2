"""Lost chunk jobs are sent again from the database; a chunk lost too often ends as failed
members so its run finishes; the failed members of a finished run can be run again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loyalty import clock, fanout
from loyalty.errors import NotFoundError, ValidationError
from loyalty.points.models import EntryKind, PointsAccount, PointsEntry
from loyalty.points.tasks import EXPIRE_DUE
from loyalty.worker.models import ChunkStatus, JobRun, JobRunChunk, RunStatus
from tests.worker.test_fanout import members_with_due_points

pytestmark = pytest.mark.usefixtures("orm")


async def reconcile(redis: Any, settings: Any, *, after: timedelta) -> fanout.Reconciled:
    """The reconciler as the cron runs it, with the clock moved ``after`` from now."""
    with clock.frozen(clock.now() + after):
        return await fanout.reconcile(
            redis=redis,
            lease=timedelta(seconds=settings.fanout_chunk_lease_seconds),
            max_resends=settings.fanout_chunk_max_resends,
        )


def past_lease(settings: Any, times: int = 1) -> timedelta:
    return timedelta(seconds=(settings.fanout_chunk_lease_seconds + 1) * times)


async def expired_entries(ids: list[int]) -> dict[int, int]:
    rows = await PointsEntry.filter(kind=EntryKind.EXPIRE, member_id__in=ids).values_list(
        "member_id", flat=True
    )
    return {m: list(rows).count(m) for m in ids}


async def test_chunks_lost_from_redis_are_sent_again_after_their_lease(
    redis: Any, worker: Any, settings: Any
) -> None:
    ids = await members_with_due_points(5)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    assert launch.run is not None
    assert await fanout.dispatch(launch, redis) == 3
    await redis.flushdb()  # every chunk job lost before any ran

    within = await reconcile(redis, settings, after=timedelta(minutes=1))
    assert (within.resent, await redis.queued_jobs()) == (0, [])

    after = await reconcile(redis, settings, after=past_lease(settings))
    assert after.resent == 3
    today = clock.today().isoformat()
    queued = sorted(j.job_id for j in await redis.queued_jobs())
    assert queued == [f"points:expire_due:{today}:{n}" for n in range(3)]
    assert await worker() == 3

    run = await JobRun.get(id=launch.run.id)
    assert (run.status, run.counts, run.chunks_done) == (RunStatus.SUCCEEDED, {"expired": 5}, 3)
    assert await expired_entries(ids) == dict.fromkeys(ids, 1)
    sends = await JobRunChunk.filter(run_id=run.id).values_list("sends", flat=True)
    assert sorted(sends) == [2, 2, 2]
    # A finished run is left alone.
    assert await reconcile(redis, settings, after=past_lease(settings, 2)) == fanout.Reconciled()


async def test_a_run_whose_dispatch_never_happened_is_sent_and_finishes(
    redis: Any, worker: Any, settings: Any
) -> None:
    ids = await members_with_due_points(3)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)  # written, never queued
    blocked = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    assert not blocked.started

    assert (await reconcile(redis, settings, after=past_lease(settings))).resent == 2
    assert await worker() == 2

    assert launch.run is not None
    run = await JobRun.get(id=launch.run.id)
    assert (run.status, run.counts) == (RunStatus.SUCCEEDED, {"expired": 3})
    assert await expired_entries(ids) == dict.fromkeys(ids, 1)
    assert (await fanout.start(name=EXPIRE_DUE, chunk_size=2)).started


async def test_a_chunk_still_held_by_arq_is_not_sent_again_nor_given_up(
    redis: Any, worker: Any, settings: Any
) -> None:
    await members_with_due_points(2)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    assert launch.run is not None
    await fanout.dispatch(launch, redis)  # queued; no worker for a long while

    for times in range(1, settings.fanout_chunk_max_resends + 3):
        report = await reconcile(redis, settings, after=past_lease(settings, times))
        assert (report.resent, report.given_up) == (0, 0)

    chunk = await JobRunChunk.get(run_id=launch.run.id, chunk=0)
    assert (chunk.status, chunk.sends) == (ChunkStatus.PENDING, 1)
    assert await worker() == 1
    assert (await JobRun.get(id=launch.run.id)).status is RunStatus.SUCCEEDED


async def test_a_chunk_whose_job_keeps_disappearing_ends_as_failed_members(
    redis: Any, worker: Any, settings: Any
) -> None:
    ids = await members_with_due_points(4)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    assert launch.run is not None
    await fanout.dispatch(launch, redis)
    await fanout.run_chunk(run_id=launch.run.id, number=0)  # chunk 0 done, chunk 1 lost
    await redis.flushdb()

    for times in range(1, settings.fanout_chunk_max_resends + 1):
        report = await reconcile(redis, settings, after=past_lease(settings, times))
        assert (report.resent, report.given_up) == (1, 0)
        await redis.flushdb()
        assert (await JobRun.get(id=launch.run.id)).status is RunStatus.RUNNING

    last = settings.fanout_chunk_max_resends + 1
    report = await reconcile(redis, settings, after=past_lease(settings, last))
    assert (report.resent, report.given_up) == (0, 1)

    run = await JobRun.get(id=launch.run.id)
    assert (run.status, run.counts, run.chunks_done) == (
        RunStatus.PARTIAL,
        {"expired": 2, "failed": 2},
        2,
    )
    assert run.finished_at is not None
    assert [e["member_id"] for e in run.errors] == ids[2:4]
    assert "lost" in run.errors[0]["error"]
    chunk = await JobRunChunk.get(run_id=run.id, chunk=1)
    assert (chunk.status, chunk.failed_ids, chunk.sends) == (ChunkStatus.DONE, ids[2:4], last)
    assert await expired_entries(ids) == {ids[0]: 1, ids[1]: 1, ids[2]: 0, ids[3]: 0}
    # A late copy of the lost job does nothing: the chunk is done.
    assert not (await fanout.run_chunk(run_id=run.id, number=1)).counted

    retried = await fanout.run_inline(await fanout.retry(name=EXPIRE_DUE, chunk_size=2))
    assert retried is not None and retried.retry_of == run.id
    assert (retried.status, retried.counts) == (RunStatus.SUCCEEDED, {"expired": 2})
    assert await expired_entries(ids) == dict.fromkeys(ids, 1)


async def test_a_running_run_with_every_chunk_done_is_finalised(redis: Any, settings: Any) -> None:
    await members_with_due_points(3)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    run = await fanout.run_inline(launch)
    assert run is not None and run.status is RunStatus.SUCCEEDED
    # A run left RUNNING although its chunks are all done (its last count never landed).
    await JobRun.filter(id=run.id).update(
        status=RunStatus.RUNNING, finished_at=None, chunks_done=1, counts={"expired": 2}
    )

    report = await reconcile(redis, settings, after=timedelta(0))

    assert report.finalised == 1
    again = await JobRun.get(id=run.id)
    assert (again.status, again.counts, again.chunks_done) == (
        RunStatus.SUCCEEDED,
        {"expired": 3},
        2,
    )
    assert again.finished_at is not None


async def test_retry_runs_only_the_failed_members_of_a_run() -> None:
    ids = await members_with_due_points(5)
    broken = ids[3]
    await PointsAccount.filter(member_id=broken).update(balance=5)
    first = await fanout.run_inline(await fanout.start(name=EXPIRE_DUE, chunk_size=2))
    assert first is not None and first.status is RunStatus.PARTIAL
    # Still broken: the retry fails again, and a retry of the retry can follow.
    failed_again = await fanout.run_inline(await fanout.retry(name=EXPIRE_DUE, chunk_size=2))
    assert failed_again is not None and failed_again.status is RunStatus.FAILED
    await PointsAccount.filter(member_id=broken).update(balance=20)

    launch = await fanout.retry(name=EXPIRE_DUE, chunk_size=2, run_id=first.id)
    run = await fanout.run_inline(launch)

    assert launch.chunks == [[broken]]
    assert run is not None and run.retry_of == first.id
    assert (run.status, run.members_total, run.counts) == (
        RunStatus.SUCCEEDED,
        1,
        {"expired": 1},
    )
    assert await expired_entries(ids) == dict.fromkeys(ids, 1)
    with pytest.raises(ValidationError):
        await fanout.retry(name=EXPIRE_DUE, chunk_size=2, run_id=run.id)  # nothing failed


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "nope"}, NotFoundError),
        ({"name": EXPIRE_DUE, "run_id": 999_999}, NotFoundError),
        ({"name": EXPIRE_DUE, "period": "yesterday"}, NotFoundError),
        ({"name": EXPIRE_DUE, "period": "tomorrow"}, ValidationError),
    ],
)
async def test_bad_retries_are_refused_and_start_nothing(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    days = {"yesterday": -1, "tomorrow": 1}
    if "period" in kwargs:
        kwargs["period"] = clock.today() + timedelta(days=days[kwargs["period"]])
    with pytest.raises(error):
        await fanout.retry(chunk_size=2, **kwargs)
    assert await JobRun.all().count() == 0


async def test_a_retry_while_a_run_of_the_date_is_running_starts_nothing() -> None:
    await members_with_due_points(1)
    running = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    launch = await fanout.retry(name=EXPIRE_DUE, chunk_size=2)
    assert not launch.started and launch.run is not None and running.run is not None
    assert launch.run.id == running.run.id
    assert await JobRun.all().count() == 1


def test_the_reconciler_runs_every_minute_once_across_workers() -> None:
    from loyalty.worker.settings import CRON_JOBS

    [entry] = [c for c in CRON_JOBS if c.coroutine is fanout.jobs_reconcile]
    assert entry.unique and isinstance(entry.second, int | set) and entry.minute is None
