"""`runJob` and `jobRuns`: admins start a batch run and follow it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loyalty import clock
from loyalty.auth.principal import Role
from loyalty.points.models import EntryKind, PointsEntry
from tests.conftest import token_for
from tests.worker.test_fanout import members_with_due_points

RUN = """
mutation($name: String!, $date: Date, $dryRun: Boolean!) {
  runJob(name: $name, date: $date, dryRun: $dryRun) {
    __typename
    ... on RunJobSuccess { started run { id name businessDate status chunksTotal } }
    ... on RunJobPlan { members chunks businessDate }
    ... on ValidationError { code fields { field } }
    ... on NotFoundError { code }
  }
}
"""

RUNS = """
query($name: String) {
  jobRuns(first: 5, name: $name) {
    edges { node { name status chunksDone chunksTotal membersTotal
                   counts { outcome members } errors { memberId error } } }
  }
}
"""


async def test_an_admin_runs_a_job_and_follows_it(
    gql: Any, worker: Any, redis: Any, orm: Any
) -> None:
    ids = await members_with_due_points(3)

    plan = await gql(RUN, {"name": "points_expire_due", "dryRun": True})
    started = await gql(RUN, {"name": "points_expire_due", "dryRun": False})
    await worker()
    runs = await gql(RUNS, {"name": "points_expire_due"})

    assert plan["data"]["runJob"] == {
        "__typename": "RunJobPlan",
        "members": 3,
        "chunks": 1,
        "businessDate": clock.today().isoformat(),
    }
    result = started["data"]["runJob"]
    assert result["__typename"] == "RunJobSuccess" and result["started"] is True
    assert result["run"]["status"] == "RUNNING"
    [edge] = runs["data"]["jobRuns"]["edges"]
    assert edge["node"] == {
        "name": "points_expire_due",
        "status": "SUCCEEDED",
        "chunksDone": 1,
        "chunksTotal": 1,
        "membersTotal": 3,
        "counts": [{"outcome": "expired", "members": 3}],
        "errors": [],
    }
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE, member_id__in=ids).count() == 3


async def test_bad_names_and_dates_are_refused(gql: Any, orm: Any) -> None:
    unknown = await gql(RUN, {"name": "nope", "dryRun": False})
    future = (clock.today() + timedelta(days=1)).isoformat()
    later = await gql(RUN, {"name": "tiers_review", "date": future, "dryRun": False})
    assert unknown["data"]["runJob"] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    assert later["data"]["runJob"]["fields"] == [{"field": "date"}]


@pytest.mark.parametrize("role", [Role.STAFF, Role.SERVICE, Role.MEMBER])
async def test_run_job_and_job_runs_need_an_admin(
    gql: Any, settings: Any, orm: Any, role: Role
) -> None:
    from tests.factories.members import create_member

    kwargs: dict[str, Any] = (
        {"member_id": (await create_member()).id} if role is Role.MEMBER else {}
    )
    token = token_for(settings, role, **kwargs)
    for query, variables in ((RUN, {"name": "tiers_review", "dryRun": True}), (RUNS, {})):
        body = await gql(query, variables, token=token, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
