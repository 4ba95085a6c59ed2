"""What a member holds, counted per table of every member-data handler.

Used for the merge audit (what moved) and to tell a member that holds nothing of value (a
fresh mini-program login) from one that does. Counts only, never values.

A handler may add counts of its own with an optional
``async def holdings(*, member_id, connection) -> dict[str, int]`` (points: the balance).
"""

from __future__ import annotations

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import hooks

#: Tables whose rows are bookkeeping around a member, not value it holds: a member with
#: rows only here (plus an empty points account) may be folded into another automatically.
BOOKKEEPING = frozenset(
    {
        "member",
        "channel_identity",
        "consent",
        "member_tag",
        "event",
        "outbox",
        "refresh_token",
        "points_account",
        "member_tier",
    }
)


async def count(*, member_id: int, connection: BaseDBAsyncClient | None = None) -> dict[str, int]:
    """Rows referencing the member, per table (``{"customer_order": 2, …}``), non-zero only,
    plus each handler's own counts (``points``: the balance)."""
    apps = Tortoise.apps
    assert apps is not None, "the ORM is not initialised"
    counts: dict[str, int] = {}
    for handler in hooks.MEMBER_DATA_HANDLERS:
        for name in handler.models:
            app, model_name = name.split(".", 1)
            model = apps.get_model(app, model_name)
            meta = model._meta
            if meta.db_table == "member" or "member_id" not in meta.fields_map:
                continue
            rows = await model.filter(member_id=member_id).using_db(connection).count()
            if rows:
                counts[meta.db_table] = counts.get(meta.db_table, 0) + rows
        extra = getattr(handler, "holdings", None)
        if extra is not None:
            for key, value in (await extra(member_id=member_id, connection=connection)).items():
                if value:
                    counts[key] = value
    return counts


def holds_value(counts: dict[str, int]) -> bool:
    """Whether :func:`count`'s result shows anything beyond bookkeeping (orders, points,
    claims, tier history…). Tables of domains added later count as value until listed."""
    return any(value and key not in BOOKKEEPING for key, value in counts.items())
