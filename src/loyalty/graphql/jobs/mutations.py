"""Start a batch job now (admins only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty import fanout
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import NotFoundError, ValidationError
from loyalty.graphql.jobs.types import JobRun

permissions.register({"Mutation.runJob": permissions.ADMIN})


@strawberry.type(description="The run was started (its chunks are queued for the workers).")
class RunJobSuccess:
    run: JobRun = strawberry.field(description="The run, as it was started.")
    started: bool = strawberry.field(
        description="False when a run of this job and date was still running: that one is "
        "returned and nothing new is started."
    )


@strawberry.type(description="A dry run: what a run would cover; nothing was written.")
class RunJobPlan:
    name: str = strawberry.field(description="The job.")
    business_date: date = strawberry.field(description="The business day.")
    members: int = strawberry.field(description="Members the run would cover.")
    chunks: int = strawberry.field(description="Chunk jobs it would queue.")


RunJobResult = Annotated[
    RunJobSuccess | RunJobPlan | ValidationError | NotFoundError,
    strawberry.union("RunJobResult", description="Outcome of `runJob`."),
]


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        description="Run a batch job (`tiers_review`, `points_expire_due`) now for a business "
        "date (default today), through the same code as its cron: the chunks are queued for "
        "the workers. A tier review is done once per member and date, so running a date again "
        "changes nobody already reviewed."
    )
    async def run_job(
        self,
        info: Info,
        name: str,
        date: Annotated[
            date | None, strawberry.argument(description="Business date; not after today.")
        ] = None,
        dry_run: Annotated[
            bool, strawberry.argument(description="Only count members and chunks.")
        ] = False,
    ) -> RunJobResult:
        try:
            launch = await fanout.start(
                name=name,
                period=date,
                chunk_size=info.context.settings.fanout_chunk_size,
                trigger="api",
                dry_run=dry_run,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        if dry_run:
            return RunJobPlan(
                name=name,
                business_date=launch.period,
                members=launch.members,
                chunks=len(launch.chunks),
            )
        assert launch.run is not None
        if launch.started and info.context.redis is not None:
            await fanout.dispatch(launch, info.context.redis)
        return RunJobSuccess(run=JobRun.from_model(launch.run), started=launch.started)
