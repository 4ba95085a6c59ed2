"""Domain event outbox: written in the same transaction as the change it describes."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Event(Model):
    """A domain event with a stable id (used for outbound webhooks and streams).

    ``dedupe_key`` is unique: recording the same fact twice keeps one event.
    ``published_at`` is null until the publisher pushed it; the reconciler retries those.
    """

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=64)
    dedupe_key = fields.CharField(max_length=191, unique=True)
    member_id = fields.BigIntField(null=True)
    payload = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)

    class Meta:
        table = "event"
        indexes = (Index(fields=("published_at", "created_at"), name="event_unpublished_idx"),)


class JobRequest(Model):
    """Work asked for by a committed change, kept until a job has done it (a job outbox).

    ``key`` is the job id: one row, and at most one queued job, per kind of work. Each request
    adds one to ``requests``; a run records in ``done`` the count it saw when it started, so a
    request that arrives while a run is under way stays pending (``done < requests``) and the
    reconciler sends the job again.
    """

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=191, unique=True)
    function = fields.CharField(max_length=64)
    args = fields.TextField(default="[]", description="Job arguments, a JSON array")
    requests = fields.BigIntField(default=0)
    done = fields.BigIntField(default=0)
    requested_at = fields.DatetimeField()
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job_request"
