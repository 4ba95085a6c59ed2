"""Keyset pagination: opaque cursors that do not shift under inserts."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from loyalty.graphql.errors import BadUserInput

_PREFIX = "k1:"


def encode_cursor(*values: Any) -> str:
    """Opaque cursor for a row's sort key (e.g. ``(id,)`` or ``(occurred_at, id)``)."""
    raw = _PREFIX.encode() + orjson.dumps(list(values), default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int = 1) -> list[Any]:
    """The sort key inside ``cursor``; raises BAD_USER_INPUT for anything we did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode())
        if not raw.startswith(_PREFIX.encode()):
            raise ValueError("prefix")
        values = orjson.loads(raw[len(_PREFIX) :])
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise BadUserInput("Invalid cursor.", argument="after") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise BadUserInput("Invalid cursor.", argument="after")
    return values


def check_first(first: int, maximum: int) -> int:
    """``first`` must be 1..maximum; a clear BAD_USER_INPUT otherwise."""
    if first < 1:
        raise BadUserInput("`first` must be at least 1.", argument="first")
    if first > maximum:
        raise BadUserInput(f"`first` must be at most {maximum}.", argument="first", maximum=maximum)
    return first
