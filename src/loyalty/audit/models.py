"""Audit log: who did what to whom. Never stores personal values."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class AuditEntry(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=128, description="Principal subject")
    actor_role = fields.CharField(max_length=16)
    action = fields.CharField(max_length=64, description="e.g. member.merge, member.erase")
    target_type = fields.CharField(max_length=32)
    target_id = fields.CharField(max_length=64)
    related_id = fields.CharField(
        max_length=64,
        null=True,
        description="A second object of the same type the action was about (the merged member)",
    )
    details = fields.JSONField(default=dict, description="Ids and counts only, no PII")
    request_id = fields.CharField(max_length=128, null=True)

    class Meta:
        table = "audit_entry"
        indexes = (
            Index(fields=("target_type", "target_id"), name="audit_target_idx"),
            Index(fields=("at",), name="audit_at_idx"),
            Index(fields=("target_type", "related_id"), name="audit_related_idx"),
        )
