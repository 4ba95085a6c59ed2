"""Who is calling: the principal every request and job acts as."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    ANONYMOUS = "ANONYMOUS"
    ADMIN = "ADMIN"
    STAFF = "STAFF"
    SERVICE = "SERVICE"
    MEMBER = "MEMBER"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``member_id`` is set for MEMBER, ``channel`` for SERVICE."""

    role: Role
    subject: str = "anonymous"
    scopes: frozenset[str] = field(default_factory=frozenset)
    member_id: int | None = None
    channel: str | None = None
    store_id: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.role is Role.ANONYMOUS

    def has_scope(self, scope: str) -> bool:
        return self.role is Role.ADMIN or scope in self.scopes


ANONYMOUS = Principal(Role.ANONYMOUS)
SYSTEM = Principal(Role.ADMIN, subject="system", scopes=frozenset({"pii"}))
