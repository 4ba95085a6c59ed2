"""What operators see of the jobs: the schedules and the recent runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty import clock
from loyalty.worker.models import JobRun


@dataclass(frozen=True)
class Schedule:
    """A cron entry: job name, its schedule in words, the next run (business time zone)."""

    name: str
    cron: str
    next_run: datetime
    batch: bool


def _field(values: object) -> str:
    if values is None:
        return "*"
    if isinstance(values, int):
        return str(values)
    return ",".join(str(v) for v in sorted(values))  # type: ignore[call-overload]


def schedules(at: datetime | None = None) -> list[Schedule]:
    """Every cron entry of the worker with its next run after ``at`` (default now)."""
    from arq.cron import next_cron

    from loyalty import fanout
    from loyalty.worker.settings import CRON_JOBS

    now = (at or clock.now()).astimezone(clock.business_zone())
    found = []
    for job in CRON_JOBS:
        parts = [
            f"{label}={_field(getattr(job, label))}"
            for label in ("month", "day", "weekday", "hour", "minute", "second")
            if getattr(job, label) is not None
        ]
        found.append(
            Schedule(
                name=job.name.removeprefix("cron:"),
                cron=" ".join(parts),
                next_run=next_cron(
                    now.replace(tzinfo=None),
                    month=job.month,
                    day=job.day,
                    weekday=job.weekday,
                    hour=job.hour,
                    minute=job.minute,
                    second=job.second,
                    microsecond=job.microsecond,
                ).replace(tzinfo=clock.business_zone(), microsecond=0),
                batch=job.name.removeprefix("cron:") in fanout.JOBS,
            )
        )
    return found


async def recent_runs(
    *, limit: int = 10, name: str | None = None, before_id: int | None = None
) -> list[JobRun]:
    """The latest runs first (of job ``name`` only, if given; older than ``before_id``)."""
    query = JobRun.all() if name is None else JobRun.filter(name=name)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit)
