"""Member ids in inputs: global ids of type `Member`."""

from __future__ import annotations

from strawberry import relay

from loyalty.errors import FieldError, ValidationError
from loyalty.graphql import ids


def member_pk(value: relay.GlobalID, field: str = "memberId") -> int:
    """The member's primary key; a ValidationError for ids of other types or garbage."""
    member_id = ids.pk(value, "Member")
    if member_id is None:
        raise ValidationError(FieldError(field, "not a member id"))
    return member_id
