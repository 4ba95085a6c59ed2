"""Domain events live in the outbox (:class:`~loyalty.outbox.models.OutboxMessage`); this
module names them for the domains that read events, and holds the job requests."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from loyalty.outbox.models import OutboxMessage, OutboxStatus

# A domain event is an outbox row whose kind is a domain fact (``member.registered`` …).
Event = OutboxMessage

__all__ = ["Event", "JobRequest", "OutboxStatus"]


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
