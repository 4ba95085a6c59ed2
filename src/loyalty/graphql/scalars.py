"""Custom scalars (registered through ``StrawberryConfig.scalar_map``)."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Long = NewType("Long", int)


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("Long must be an integer")
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("Long out of 64-bit range")
    return number


SCALAR_MAP: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=_parse_long,
        description="A signed 64-bit integer (points and money in minor units), "
        "sent as a JSON number.",
    ),
}
