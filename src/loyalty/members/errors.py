"""Expected failures of the members domain."""

from __future__ import annotations

from loyalty.errors import ConflictError, DomainError, NotFoundError


class MemberNotFound(NotFoundError):
    code = "MEMBER_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("member", key)


class MemberNotActive(DomainError):
    """The member was merged, erased or deactivated."""

    code = "MEMBER_NOT_ACTIVE"


class IdentityConflict(ConflictError):
    """The identity (or phone/email) already belongs to a different member."""

    code = "IDENTITY_CONFLICT"


class IdentityNotFound(NotFoundError):
    code = "IDENTITY_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("identity", key)


class IdempotencyConflict(ConflictError):
    """The idempotency key was used before for a different request."""

    code = "IDEMPOTENCY_CONFLICT"


class MergeRefused(DomainError):
    """A merge that cannot happen; subclasses say why. Nothing was written."""

    code = "MERGE_REFUSED"


class MergeIntoSelf(MergeRefused):
    code = "MERGE_INTO_SELF"


class MergeIntoMerged(MergeRefused):
    """The survivor was itself merged into another member."""

    code = "MERGE_INTO_MERGED"


class MergeSourceNotActive(MergeRefused):
    """The member to merge was already merged or erased."""

    code = "MERGE_SOURCE_NOT_ACTIVE"


class MergeSourceHoldsValue(MergeRefused):
    """Only a member holding nothing of value (orders, points, claims…) may be folded
    automatically; this one holds some."""

    code = "MERGE_SOURCE_HOLDS_VALUE"


class MemberAlreadyErased(DomainError):
    code = "MEMBER_ALREADY_ERASED"
