"""Job runs (admins only)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from loyalty import jobruns
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.jobs.types import JobRun, JobRunConnection
from loyalty.graphql.pagination import check_first, decode_cursor, encode_cursor

permissions.register({"Query.jobRuns": permissions.ADMIN})


@strawberry.type
class JobQuery:
    @strawberry.field(description="Runs of batch jobs, newest first. `first` is 1–100.")
    async def job_runs(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        name: Annotated[
            str | None, strawberry.argument(description="Only runs of this job.")
        ] = None,
    ) -> JobRunConnection:
        check_first(first, info.context.settings.max_page_size)
        before_id = int(decode_cursor(after)[0]) if after else None
        rows = await jobruns.recent_runs(limit=first + 1, name=name, before_id=before_id)
        edges = [
            relay.Edge(cursor=encode_cursor(r.id), node=JobRun.from_model(r)) for r in rows[:first]
        ]
        return JobRunConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=len(rows) > first,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
