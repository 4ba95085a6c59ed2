"""Member ids in inputs: global ids of type `Member`."""

from __future__ import annotations

from strawberry import relay

from loyalty.errors import FieldError, ValidationError


def member_pk(value: relay.GlobalID, field: str = "memberId") -> int:
    """The member's primary key; a ValidationError for ids of other types or garbage."""
    if value.type_name == "Member":
        try:
            return int(value.node_id)
        except ValueError:
            pass
    raise ValidationError(FieldError(field, "not a member id"))
