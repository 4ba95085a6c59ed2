"""Points services. Each public function owns its transaction; the ``ledger`` and ``refund``
functions taking ``conn`` run inside a caller's transaction (orders)."""

from __future__ import annotations

from loyalty.points.service.earn import Movement, activate_pending, award
from loyalty.points.service.expire import expire_due, expire_member
from loyalty.points.service.program import (
    Program,
    get_program,
    list_rules,
    save_rule,
    update_program,
)
from loyalty.points.service.queries import get_account, liability
from loyalty.points.service.redeem import adjust, redeem

__all__ = [
    "Movement",
    "Program",
    "activate_pending",
    "adjust",
    "award",
    "expire_due",
    "expire_member",
    "get_account",
    "get_program",
    "liability",
    "list_rules",
    "redeem",
    "save_rule",
    "update_program",
]
