"""Expected failures of the members domain."""

from __future__ import annotations

from loyalty.errors import DomainError, NotFoundError


class MemberNotFound(NotFoundError):
    code = "MEMBER_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("member", key)


class MemberNotActive(DomainError):
    """The member was merged, erased or deactivated."""

    code = "MEMBER_NOT_ACTIVE"
