"""Job runs: one row per run of a fanned-out job, and one per chunk of it."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PARTIAL = "PARTIAL"


class ChunkStatus(StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"


class JobRun(Model):
    """A run of a batch job over members for one business date (``period``).

    ``counts`` maps each outcome (``expired``, ``renewed``, ``failed`` …) to the members that
    had it; ``errors`` keeps the first failures (member id and error), capped. The run ends
    when ``chunks_done`` reaches ``chunks_total``: SUCCEEDED with no failure, FAILED when every
    member failed, PARTIAL otherwise.
    """

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=64)
    period = fields.CharField(max_length=32, description="Business date, YYYY-MM-DD")
    status = fields.CharEnumField(RunStatus, max_length=16, default=RunStatus.RUNNING)
    trigger = fields.CharField(max_length=16, default="cron", description="cron, cli or api")
    members_total = fields.BigIntField(default=0)
    chunk_size = fields.IntField()
    chunks_total = fields.IntField(default=0)
    chunks_done = fields.IntField(default=0)
    counts = fields.JSONField(default=dict)
    errors = fields.JSONField(default=list)
    retry_of = fields.BigIntField(
        null=True, description="The run whose failed members this re-runs"
    )
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job_run"
        indexes = (Index(fields=("name", "started_at"), name="job_run_name_idx"),)


class JobRunChunk(Model):
    """One chunk of a run, written with the run: its members, so the chunk can be sent again
    from the database alone, and whether it is done.

    PENDING until its work is counted in the run, DONE after (once: the PENDING to DONE
    update is the guard, however often the chunk ran). ``sends`` counts the arq jobs queued
    for it and ``last_sent_at`` starts its lease; ``failed_ids`` keeps every member that
    failed in it (``jobs retry`` re-runs them). The member ids are cleared once it is done.
    """

    id = fields.BigIntField(primary_key=True)
    run_id = fields.BigIntField()
    chunk = fields.IntField()
    status = fields.CharEnumField(ChunkStatus, max_length=16, default=ChunkStatus.PENDING)
    member_ids = fields.JSONField(default=list, description="Members of the chunk, until done")
    sends = fields.IntField(default=0, description="Arq jobs queued for the chunk")
    last_sent_at = fields.DatetimeField(null=True, description="Start of the current lease")
    counts = fields.JSONField(default=dict)
    failed_ids = fields.JSONField(default=list, description="Members that failed in the chunk")
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job_run_chunk"
        unique_together = (("run_id", "chunk"),)
