"""Ids in arguments, decoded in one place.

Objects that are nodes (``Member``, ``Order``, ``ApiKey``) are handed out by global id; the
others (claims, earning rules, audit entries) by their number. An argument naming an object
takes the id the API hands out for it, and where it took a number before, the number too.
"""

from __future__ import annotations

from strawberry import relay

# The types implementing `Node`: the only type names a global id can carry
# (tests/graphql/test_ids.py keeps this in step with the schema).
NODE_TYPES = frozenset({"ApiKey", "Member", "Order"})
MAX_PK = 2**63 - 1  # primary keys are 64-bit


def parse_global_id(value: str) -> relay.GlobalID | None:
    """``value`` as a global id of one of this API's nodes, else None."""
    try:
        gid = relay.GlobalID.from_id(value)
    except (relay.GlobalIDValueError, ValueError):
        return None
    return gid if gid.type_name in NODE_TYPES else None


def pk(value: relay.GlobalID | str, type_name: str) -> int | None:
    """The primary key of the ``type_name`` object ``value`` names, else None.

    ``value`` is a global id of that type, or (for a string) the plain number. A global id of
    another type, a malformed id or a number outside 1..2**63-1 gives None.
    """
    if isinstance(value, str):
        value = parse_global_id(value) or value
    if isinstance(value, relay.GlobalID):
        if value.type_name != type_name:
            return None
        value = value.node_id
    if not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= MAX_PK else None


def target(value: str) -> tuple[str | None, str]:
    """An audit target given as a global id or as recorded: ``(type name or None, id)``."""
    gid = parse_global_id(value)
    if gid is None:
        return None, value
    return gid.type_name, gid.node_id
