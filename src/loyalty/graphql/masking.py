"""Masking of personal data for callers without the ``pii`` scope.

Every resolver that returns a personal field passes it through here, so staff without
``pii`` see ``138****5678``, ``z***@example.com`` and no birth year, wherever a member appears.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import date

import structlog
from strawberry.extensions import SchemaExtension

from loyalty.audit import service as audit
from loyalty.auth.principal import Principal, Role

log = structlog.get_logger(__name__)

PII_SCOPE = "pii"


# Members whose personal data the current operation showed in clear (see PiiReadAudit).
_pii_reads: ContextVar[set[int] | None] = ContextVar("pii_reads", default=None)


def can_see_pii(principal: Principal, member_id: int | None = None) -> bool:
    """Admins, staff with ``pii`` and the member itself see personal data in clear.

    A ``True`` for anyone but the member itself is noted as a personal data read of
    ``member_id``; the operation's reads are written to the audit log when it ends.
    """
    if principal.role is Role.MEMBER:
        return member_id is not None and principal.member_id == member_id
    allowed = principal.role is Role.ADMIN or principal.has_scope(PII_SCOPE)
    if allowed and member_id is not None:
        reads = _pii_reads.get()
        if reads is not None:
            reads.add(member_id)
    return allowed


class PiiReadAudit(SchemaExtension):
    """Writes one audit entry per member whose personal data an operation showed in clear
    to staff, admins or services (``member.pii_read``; ids only, never the values)."""

    async def on_execute(self) -> AsyncIterator[None]:
        reads: set[int] = set()
        token = _pii_reads.set(reads)
        try:
            yield
        finally:
            _pii_reads.reset(token)
        principal: Principal | None = getattr(self.execution_context.context, "principal", None)
        if not reads or principal is None or principal.role is Role.MEMBER:
            return
        operation = self.execution_context.operation_name
        try:
            await audit.record_many(
                [
                    {
                        "actor": principal,
                        "action": "member.pii_read",
                        "target_type": "Member",
                        "target_id": member_id,
                        "details": {"operation": operation} if operation else {},
                    }
                    for member_id in sorted(reads)
                ]
            )
        except Exception as exc:  # the read already happened; losing the entry is logged
            log.error("audit.pii_read_not_recorded", error=type(exc).__name__, count=len(reads))


def phone(value: str | None) -> str | None:
    """``+8613812345678`` → ``138****5678`` (country code dropped, middle four hidden)."""
    if not value:
        return value
    digits = value[3:] if value.startswith("+86") else value.lstrip("+")
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def email(value: str | None) -> str | None:
    """``zhang.san@example.com`` → ``z***@example.com``."""
    if not value or "@" not in value:
        return value
    local, domain = value.split("@", 1)
    return f"{local[:1]}***@{domain}"


def name(value: str | None) -> str | None:
    """``王小明`` → ``王**``."""
    if not value:
        return value
    return value[0] + "*" * max(1, len(value) - 1)


def identifier(value: str | None) -> str | None:
    """Card numbers, openids, account ids: ``8800123456`` → ``******3456`` (last four kept)."""
    if not value:
        return value
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def birth_date(value: date | None) -> date | None:
    """Masked callers get no birth date (month/day are exposed separately)."""
    return None
