"""Ledger verification (``loyalty check-ledger``): set-based sums compared with the caches.

For every member: balance = Σ entries = Σ remaining of open lots; debt = Σ debt changes;
pending = Σ pending earnings; a member who owes points has nothing left to spend. For every
lot: remaining = amount − Σ allocations on it. For every entry that draws on lots or returns
points to them: its allocations add up to −amount.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import db
from loyalty.points import sql
from loyalty.points.models import EntryKind

# Entries that must carry allocations (a positive ADJUST is a lot instead).
_DRAWING = (
    EntryKind.REDEEM,
    EntryKind.EXPIRE,
    EntryKind.REVERSE,
    EntryKind.SETTLE,
    EntryKind.RESTORE,
)


@dataclass(frozen=True)
class Mismatch:
    """One broken invariant: ``subject`` is ``member:<id>``, ``lot:<id>`` or ``entry:<id>``."""

    subject: str
    check: str
    expected: int
    actual: int

    def __str__(self) -> str:
        return f"{self.subject} {self.check}: expected {self.expected}, found {self.actual}"


async def check_ledger(conn: BaseDBAsyncClient | None = None) -> list[Mismatch]:
    """Every mismatch in the points ledger (empty when the books are right)."""
    conn = conn or db.connection()
    problems: list[Mismatch] = []
    accounts = {
        int(r["member_id"]): r
        for r in await sql.fetch(
            conn, "SELECT member_id, balance, pending, debt FROM points_account"
        )
    }
    sums = {
        int(r["member_id"]): r
        for r in await sql.fetch(
            conn,
            "SELECT member_id, SUM(amount) AS amount, SUM(debt_delta) AS debt "
            "FROM points_entry GROUP BY member_id",
        )
    }
    lots = {
        int(r["member_id"]): int(r["remaining"])
        for r in await sql.fetch(
            conn,
            "SELECT member_id, SUM(remaining) AS remaining FROM points_entry "
            "WHERE remaining > 0 GROUP BY member_id",
        )
    }
    pending = {
        int(r["member_id"]): int(r["amount"])
        for r in await sql.fetch(
            conn,
            "SELECT member_id, SUM(amount) AS amount FROM points_pending "
            "WHERE status = ? GROUP BY member_id",
            "PENDING",
        )
    }
    members = sorted(set(accounts) | set(sums) | set(lots) | set(pending))
    for member_id in members:
        account = accounts.get(member_id) or {"balance": 0, "pending": 0, "debt": 0}
        balance, debt = int(account["balance"]), int(account["debt"])
        total = sums.get(member_id) or {"amount": 0, "debt": 0}
        subject = f"member:{member_id}"
        checks = (
            ("balance = Σ entries", int(total["amount"] or 0), balance),
            ("balance = Σ open lots", lots.get(member_id, 0), balance),
            ("debt = Σ debt changes", int(total["debt"] or 0), debt),
            ("pending = Σ pending earnings", pending.get(member_id, 0), int(account["pending"])),
        )
        for name, expected, actual in checks:
            if expected != actual:
                problems.append(Mismatch(subject, name, expected, actual))
        if debt > 0 and balance > 0:
            problems.append(Mismatch(subject, "no balance while in debt", 0, balance))

    for r in await sql.fetch(
        conn,
        "SELECT e.id, e.amount, e.remaining, COALESCE(SUM(a.amount), 0) AS drawn "
        "FROM points_entry e LEFT JOIN points_allocation a ON a.lot_id = e.id "
        "WHERE e.remaining IS NOT NULL GROUP BY e.id, e.amount, e.remaining",
    ):
        expected = int(r["amount"]) - int(r["drawn"])
        if expected != int(r["remaining"]):
            problems.append(
                Mismatch(
                    f"lot:{r['id']}",
                    "remaining = amount − allocations",
                    expected,
                    int(r["remaining"]),
                )
            )

    allocated: dict[int, int] = defaultdict(int)
    for r in await sql.fetch(
        conn, "SELECT entry_id, SUM(amount) AS amount FROM points_allocation GROUP BY entry_id"
    ):
        allocated[int(r["entry_id"])] = int(r["amount"])
    kinds = ", ".join("?" for _ in _DRAWING)
    for r in await sql.fetch(
        conn,
        f"SELECT id, amount FROM points_entry WHERE kind IN ({kinds}) "
        "OR (kind = ? AND remaining IS NULL)",
        *[k.value for k in _DRAWING],
        EntryKind.ADJUST.value,
    ):
        expected = -int(r["amount"])
        actual = allocated.get(int(r["id"]), 0)
        if expected != actual:
            problems.append(Mismatch(f"entry:{r['id']}", "allocations = −amount", expected, actual))
    return problems
