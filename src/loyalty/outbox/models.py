"""One row per delivery out of a transaction, with its claim, attempts and outcome."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class OutboxStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its first attempt (or returned by an expired claim)
    IN_FLIGHT = "IN_FLIGHT"  # claimed by a sender until ``claimed_until``
    SENT = "SENT"  # the receiver accepted it
    FAILED = "FAILED"  # the last attempt failed, the next one is due at ``next_attempt_at``
    DEAD = "DEAD"  # given up (attempts exhausted or refused for good), see ``last_error``
    SUPPRESSED = "SUPPRESSED"  # deliberately not sent, see ``suppressed_reason``


# Rows a claim may take once ``next_attempt_at`` has come.
DUE_STATUSES = (OutboxStatus.PENDING, OutboxStatus.FAILED)


class OutboxMessage(Model):
    """A delivery out of a transaction, written in the same transaction as the change.

    ``dedupe_key`` is unique (recording one fact twice keeps one row) and travels to the
    receiver, so a resend after a crash between send and mark is recognisable there. ``id`` is
    the stable id receivers see (the ``id`` of a domain event).
    """

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=64)
    dedupe_key = fields.CharField(max_length=191, unique=True)
    member_id = fields.BigIntField(null=True)
    payload = fields.JSONField(default=dict)
    status = fields.CharEnumField(OutboxStatus, max_length=16, default=OutboxStatus.PENDING)
    suppressed_reason = fields.CharField(max_length=191, null=True)
    attempts = fields.IntField(default=0, description="Claims so far (a crashed one counts)")
    next_attempt_at = fields.DatetimeField()
    last_error = fields.TextField(null=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    claimed_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        indexes = (
            Index(fields=("status", "next_attempt_at"), name="outbox_due_idx"),
            Index(fields=("member_id",), name="outbox_member_idx"),
        )
