"""Job runs: one row per run of a fanned-out job, and one per chunk it finished."""

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
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job_run"
        indexes = (Index(fields=("name", "started_at"), name="job_run_name_idx"),)


class JobRunChunk(Model):
    """A finished chunk of a run: the unique key that counts a chunk once, however often it
    ran (arq delivers at least once)."""

    id = fields.BigIntField(primary_key=True)
    run_id = fields.BigIntField()
    chunk = fields.IntField()
    counts = fields.JSONField(default=dict)
    finished_at = fields.DatetimeField()

    class Meta:
        table = "job_run_chunk"
        unique_together = (("run_id", "chunk"),)
