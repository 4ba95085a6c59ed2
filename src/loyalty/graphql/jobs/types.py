"""Job runs as admins see them."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry import relay

from loyalty.worker.models import JobRun as JobRunRow


@strawberry.enum(description="Where a job run stands.")
class JobRunStatus(Enum):
    RUNNING = strawberry.enum_value("RUNNING", description="Chunks are still being done.")
    SUCCEEDED = strawberry.enum_value("SUCCEEDED", description="Every member was done.")
    FAILED = strawberry.enum_value("FAILED", description="Every member failed.")
    PARTIAL = strawberry.enum_value("PARTIAL", description="Some members failed (see `errors`).")


@strawberry.type(description="How many members of a run had one outcome.")
class JobRunCount:
    outcome: str = strawberry.field(description="e.g. `expired`, `downgraded`, `failed`.")
    members: int = strawberry.field(description="Members with this outcome.")


@strawberry.type(description="A member whose work failed in a run (it was skipped).")
class JobRunError:
    member_id: str | None = strawberry.field(description="The member's database id.")
    error: str = strawberry.field(description="The error's type and message.")


@strawberry.type(description="One run of a batch job over members for a business date.")
class JobRun:
    id: strawberry.ID = strawberry.field(description="The run's number.")
    name: str = strawberry.field(description="The job, e.g. `tiers_review`.")
    business_date: date = strawberry.field(description="The business day the run stands for.")
    status: JobRunStatus = strawberry.field(description="Where the run stands.")
    trigger: str = strawberry.field(description="What started it: `cron`, `cli` or `api`.")
    members_total: int = strawberry.field(description="Members selected.")
    chunks_total: int = strawberry.field(description="Chunks the members were cut into.")
    chunks_done: int = strawberry.field(description="Chunks finished.")
    counts: list[JobRunCount] = strawberry.field(description="Members by outcome.")
    errors: list[JobRunError] = strawberry.field(description="The first failures (at most 100).")
    started_at: datetime = strawberry.field(description="Start (UTC).")
    finished_at: datetime | None = strawberry.field(description="End (UTC); null while running.")

    @classmethod
    def from_model(cls, row: JobRunRow) -> JobRun:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            business_date=date.fromisoformat(row.period),
            status=JobRunStatus(row.status.value),
            trigger=row.trigger,
            members_total=row.members_total,
            chunks_total=row.chunks_total,
            chunks_done=row.chunks_done,
            counts=[JobRunCount(outcome=k, members=int(v)) for k, v in sorted(row.counts.items())],
            errors=[
                JobRunError(
                    member_id=None if e.get("member_id") is None else str(e["member_id"]),
                    error=str(e.get("error", "")),
                )
                for e in row.errors
            ],
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


@strawberry.type(description="A page of job runs, newest first.")
class JobRunConnection(relay.Connection[JobRun]):
    """Job runs in descending id order with keyset cursors."""
