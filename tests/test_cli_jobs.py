"""`loyalty jobs run` and `loyalty jobs list` in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loyalty import clock
from loyalty.tiers.models import TierChange, TierReview
from tests.factories.members import create_member
from tests.factories.tiers import create_ladder, place_on_tier


def loyalty(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_DATABASE_URL"] = database_url
    return subprocess.run(
        [str(Path(sys.executable).with_name("loyalty")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.usefixtures("orm")
async def test_jobs_run_tiers_review_twice_for_a_date_reviews_each_member_once(
    migrated_database_url: str,
) -> None:
    from datetime import timedelta

    ladder = await create_ladder()
    members = [await create_member() for _ in range(3)]
    for member in members:
        await place_on_tier(member.id, ladder["DIAMOND"], expires_in=-timedelta(days=1))
    day = clock.today().isoformat()

    first = loyalty(migrated_database_url, "jobs", "run", "tiers_review", "--date", day)
    second = loyalty(migrated_database_url, "jobs", "run", "tiers_review", "--date", day)
    listed = loyalty(migrated_database_url, "jobs", "list")

    assert first.returncode == 0, first.stderr
    assert "SUCCEEDED downgraded=3" in first.stdout
    assert "SUCCEEDED already_reviewed=3" in second.stdout
    assert await TierChange.all().count() == 3
    assert await TierReview.all().count() == 3
    assert "tiers_review" in listed.stdout and "already_reviewed=3" in listed.stdout


def test_jobs_run_refuses_a_bad_date_and_an_unknown_job(migrated_database_url: str) -> None:
    bad = loyalty(migrated_database_url, "jobs", "run", "tiers_review", "--date", "15/03/2026")
    unknown = loyalty(migrated_database_url, "jobs", "run", "nope")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    assert unknown.returncode == 2 and "job not found" in unknown.stderr


@pytest.mark.usefixtures("orm")
async def test_jobs_retry_runs_again_only_the_members_that_failed(
    migrated_database_url: str,
) -> None:
    from loyalty.points.models import EntryKind, PointsAccount, PointsEntry
    from tests.worker.test_fanout import members_with_due_points

    ids = await members_with_due_points(3)
    await PointsAccount.filter(member_id=ids[1]).update(balance=5)
    day = clock.today().isoformat()
    first = loyalty(migrated_database_url, "jobs", "run", "points_expire_due", "--date", day)
    await PointsAccount.filter(member_id=ids[1]).update(balance=20)

    retried = loyalty(migrated_database_url, "jobs", "retry", "points_expire_due", "--date", day)
    again = loyalty(migrated_database_url, "jobs", "retry", "points_expire_due", "--date", day)
    both = loyalty(migrated_database_url, "jobs", "retry", "points_expire_due", "--date", day,
                   "--run", "1")  # fmt: skip

    assert first.returncode == 1 and "PARTIAL expired=2 failed=1" in first.stdout
    assert retried.returncode == 0, retried.stderr
    assert "SUCCEEDED expired=1" in retried.stdout and "of run #" in retried.stdout
    assert again.returncode == 2 and "no failed members" in again.stderr
    assert both.returncode == 2 and "not both" in both.stderr
    entries = await PointsEntry.filter(kind=EntryKind.EXPIRE).values_list("member_id", flat=True)
    assert sorted(entries) == sorted(ids)
