"""Credentials kept in the database: service API keys and refresh tokens, both hashed.

Only the SHA-256 of a secret is stored; the secret itself is shown once when issued.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class ApiKey(Model):
    """A channel system's key (POS, online store): authenticates as SERVICE for ``channel``."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=64, description="What the key is for, e.g. `POS Shanghai`")
    prefix = fields.CharField(max_length=16, description="First characters, to recognise a key")
    key_hash = fields.CharField(max_length=64, unique=True, description="sha256 hex of the key")
    channel = fields.CharField(max_length=24)
    store_id = fields.CharField(max_length=64, null=True)
    scopes = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    created_by = fields.CharField(max_length=128, description="Subject of the admin")
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"

    def __str__(self) -> str:
        return f"ApiKey({self.id}, {self.prefix}…)"


class RefreshToken(Model):
    """One refresh token of a login session (``family``). Rotated on every use: the used
    token is marked ``used_at`` and a new one of the same family is issued; presenting a
    used token again revokes the whole family (it was stolen or replayed)."""

    id = fields.BigIntField(primary_key=True)
    family = fields.CharField(max_length=32, description="Login session the token belongs to")
    token_hash = fields.CharField(max_length=64, unique=True, description="sha256 hex")
    subject = fields.CharField(max_length=128)
    role = fields.CharField(max_length=16)
    member_id = fields.BigIntField(null=True)
    channel = fields.CharField(max_length=24, null=True)
    store_id = fields.CharField(max_length=64, null=True)
    scopes = fields.JSONField(default=list)
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_token"
        indexes = (
            Index(fields=("family",), name="refresh_token_family_idx"),
            Index(fields=("member_id",), name="refresh_token_member_idx"),
        )
