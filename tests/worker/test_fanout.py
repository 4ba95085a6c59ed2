"""Batch runs fan out in chunks: every member once, failures recorded and skipped, a chunk
counted once however often it runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loyalty import clock, fanout
from loyalty.errors import NotFoundError, ValidationError
from loyalty.points.models import EntryKind, PointsAccount, PointsEntry
from loyalty.points.tasks import EXPIRE_DUE
from loyalty.worker.models import JobRun, JobRunChunk, RunStatus
from tests.factories.members import create_member
from tests.factories.points import grant_points

pytestmark = pytest.mark.usefixtures("orm")


async def members_with_due_points(count: int, points: int = 20) -> list[int]:
    past = clock.now() - timedelta(days=1)
    ids = []
    for _ in range(count):
        member = await create_member()
        await grant_points(member.id, points, expires_at=past)
        ids.append(member.id)
    return ids


async def test_a_run_over_several_chunks_expires_every_member_once() -> None:
    ids = await members_with_due_points(7)

    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=3, trigger="cli")
    run = await fanout.run_inline(launch)

    assert launch.chunks == [ids[0:3], ids[3:6], ids[6:7]]
    assert run is not None and run.status is RunStatus.SUCCEEDED
    assert (run.members_total, run.chunks_total, run.chunks_done) == (7, 3, 3)
    assert run.counts == {"expired": 7}
    assert run.errors == [] and run.finished_at is not None
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE).count() == 7
    assert await JobRunChunk.filter(run_id=run.id).count() == 3


async def test_a_failing_member_is_recorded_and_the_chunk_carries_on() -> None:
    ids = await members_with_due_points(5)
    broken = ids[1]
    # Books that disagree with themselves: the account holds less than the due lot.
    await PointsAccount.filter(member_id=broken).update(balance=5)

    run = await fanout.run_inline(await fanout.start(name=EXPIRE_DUE, chunk_size=2))

    assert run is not None and run.status is RunStatus.PARTIAL
    assert run.counts == {"expired": 4, "failed": 1}
    [error] = run.errors
    assert error["member_id"] == broken and "LedgerRace" in error["error"]
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE).count() == 4


async def test_a_chunk_run_twice_is_counted_once() -> None:
    ids = await members_with_due_points(4)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)
    assert launch.run is not None

    first = await fanout.run_chunk(run_id=launch.run.id, number=0)
    again = await fanout.run_chunk(run_id=launch.run.id, number=0)

    assert first.counted and not again.counted
    run = await JobRun.get(id=launch.run.id)
    assert (run.chunks_done, run.counts, run.status) == (1, {"expired": 2}, RunStatus.RUNNING)
    await fanout.run_chunk(run_id=launch.run.id, number=1)
    run = await JobRun.get(id=launch.run.id)
    assert (run.chunks_done, run.counts, run.status) == (2, {"expired": 4}, RunStatus.SUCCEEDED)
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE).count() == len(ids)


async def test_a_chunk_cut_off_half_way_finishes_on_its_next_run() -> None:
    ids = await members_with_due_points(3)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=3)
    assert launch.run is not None
    # The crash: the first member's work committed, the chunk was never recorded.
    from loyalty.points.service import expire_member

    await expire_member(member_id=ids[0])

    await fanout.run_chunk(run_id=launch.run.id, number=0)

    run = await JobRun.get(id=launch.run.id)
    assert run.counts == {"expired": 2, "nothing_due": 1} and run.chunks_done == 1
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE).count() == 3


async def test_chunks_run_as_arq_jobs_with_deterministic_ids(redis: Any, worker: Any) -> None:
    ids = await members_with_due_points(5)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2)

    assert await fanout.dispatch(launch, redis) == 3
    queued = sorted(j.job_id for j in await redis.queued_jobs())
    today = clock.today().isoformat()
    assert queued == [f"points:expire_due:{today}:{n}" for n in range(3)]
    # Sent again (a second dispatch of the same run): arq keeps one job per id.
    assert await fanout.dispatch(launch, redis) == 0
    assert await worker() == 3

    assert launch.run is not None
    run = await JobRun.get(id=launch.run.id)
    assert (run.status, run.counts, run.chunks_done) == (RunStatus.SUCCEEDED, {"expired": 5}, 3)
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE, member_id__in=ids).count() == 5


async def test_a_run_still_running_is_not_started_twice() -> None:
    await members_with_due_points(2)
    first = await fanout.start(name=EXPIRE_DUE, chunk_size=1)
    second = await fanout.start(name=EXPIRE_DUE, chunk_size=1)
    assert first.started and not second.started
    assert first.run is not None and second.run is not None and second.run.id == first.run.id
    assert await JobRun.all().count() == 1


async def test_a_dry_run_selects_and_writes_nothing() -> None:
    await members_with_due_points(3)
    launch = await fanout.start(name=EXPIRE_DUE, chunk_size=2, dry_run=True)
    assert (launch.members, len(launch.chunks), launch.run) == (3, 2, None)
    assert await JobRun.all().count() == 0
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE).count() == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "nope", "chunk_size": 10}, NotFoundError),
        ({"name": EXPIRE_DUE, "chunk_size": 0}, ValidationError),
        ({"name": EXPIRE_DUE, "chunk_size": 5_001}, ValidationError),
        ({"name": EXPIRE_DUE, "chunk_size": 10, "period": "tomorrow"}, ValidationError),
    ],
)
async def test_bad_requests_are_refused_and_start_nothing(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    if kwargs.get("period") == "tomorrow":
        kwargs["period"] = clock.today() + timedelta(days=1)
    with pytest.raises(error):
        await fanout.start(**kwargs)
    assert await JobRun.all().count() == 0


def test_transient_faults_are_told_from_failures() -> None:
    import redis.exceptions

    assert fanout.is_transient(redis.exceptions.TimeoutError())
    assert fanout.is_transient(ConnectionResetError())
    wrapped = RuntimeError("query failed")
    wrapped.__cause__ = type("PostgresConnectionError", (Exception,), {"sqlstate": "08006"})()
    assert fanout.is_transient(wrapped)
    assert not fanout.is_transient(ValueError("bad books"))


class _Flaky:
    async def member(self, member_id: int) -> str:
        raise ConnectionResetError("database connection lost")

    async def finish(self, outcomes: dict[int, str]) -> dict[str, int]:
        return {}


async def test_a_transient_fault_retries_the_chunk_and_counts_as_failure_on_its_last_try(
    settings: Any,
) -> None:
    from arq import Retry

    async def select(period: Any) -> list[int]:
        return [1, 2]

    async def prepare(chunk: fanout.Chunk) -> fanout.ChunkWork:
        return _Flaky()

    fanout.register(fanout.BatchJob("test_flaky", "test", "flaky", "", select, prepare))
    try:
        launch = await fanout.start(name="test_flaky", chunk_size=5)
        assert launch.run is not None
        ctx = {"settings": settings, "job_try": 1}
        with pytest.raises(Retry):
            await fanout.jobs_run_chunk(ctx, launch.run.id, 0)
        assert (await JobRun.get(id=launch.run.id)).chunks_done == 0

        ctx["job_try"] = fanout.CHUNK_MAX_TRIES
        await fanout.jobs_run_chunk(ctx, launch.run.id, 0)
        run = await JobRun.get(id=launch.run.id)
        assert (run.status, run.counts, len(run.errors)) == (RunStatus.FAILED, {"failed": 2}, 2)
    finally:
        fanout.JOBS.pop("test_flaky", None)
