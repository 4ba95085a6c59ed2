"""Masking of personal data for callers without the ``pii`` scope.

Every resolver that returns a personal field passes it through here, so staff without
``pii`` see ``138****5678``, ``z***@example.com`` and no birth year, wherever a member appears.
"""

from __future__ import annotations

from datetime import date

from loyalty.auth.principal import Principal, Role

PII_SCOPE = "pii"


def can_see_pii(principal: Principal, member_id: int | None = None) -> bool:
    """Admins, staff with ``pii`` and the member itself see personal data in clear."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.MEMBER:
        return member_id is not None and principal.member_id == member_id
    return principal.has_scope(PII_SCOPE)


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


def birth_date(value: date | None) -> date | None:
    """Masked callers get no birth date (month/day are exposed separately)."""
    return None
