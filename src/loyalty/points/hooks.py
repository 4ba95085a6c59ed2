"""How points take part in member merge, export and erasure."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import hooks
from loyalty.points import sql
from loyalty.points.errors import LedgerRace
from loyalty.points.models import PendingEarning, PointsAccount, PointsAllocation, PointsEntry
from loyalty.points.service import ledger


class PointsData:
    """Ledger rows move to the survivor; the two accounts add up exactly."""

    models = (
        "loyalty.PointsAccount",
        "loyalty.PointsEntry",
        "loyalty.PointsAllocation",
        "loyalty.PendingEarning",
    )

    async def lock(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        # Both accounts in id order, so two merges never wait on each other in a circle.
        for member_id in sorted((survivor_id, merged_id)):
            await ledger.lock_account(connection, member_id)

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        conn = connection
        states = {}
        for member_id in sorted((survivor_id, merged_id)):
            states[member_id] = await ledger.lock_account(conn, member_id)
        moved = states[merged_id]
        emptied = await sql.execute(
            conn,
            "UPDATE points_account SET balance = balance - ?, pending = pending - ?, "
            "debt = debt - ? WHERE member_id = ? AND balance = ? AND pending = ? AND debt = ?",
            moved.balance,
            moved.pending,
            moved.debt,
            merged_id,
            moved.balance,
            moved.pending,
            moved.debt,
        )
        if emptied != 1:
            raise LedgerRace("merged account changed during the merge")
        state = _state(
            await sql.fetch(
                conn,
                "UPDATE points_account SET balance = balance + ?, pending = pending + ?, "
                "debt = debt + ? WHERE member_id = ? RETURNING balance, pending, debt",
                moved.balance,
                moved.pending,
                moved.debt,
                survivor_id,
            )
        )
        for model in (PointsEntry, PendingEarning):
            await model.filter(member_id=merged_id).using_db(conn).update(member_id=survivor_id)
        await (
            PointsAllocation.filter(member_id=merged_id)
            .using_db(conn)
            .update(member_id=survivor_id)
        )
        await ledger.settle_debt(conn, survivor_id, state, key=f"merge:{merged_id}")

    async def holdings(self, *, member_id: int, connection: BaseDBAsyncClient) -> dict[str, int]:
        """Counts for the merge audit: the balance and the open lots behind it."""
        account = await PointsAccount.filter(member_id=member_id).using_db(connection).first()
        lots = (
            await PointsEntry.filter(member_id=member_id, remaining__gt=0)
            .using_db(connection)
            .count()
        )
        return {"points": account.balance if account else 0, "points_lots": lots}

    async def export(self, *, member_id: int) -> dict[str, Any]:
        account = await PointsAccount.get_or_none(member_id=member_id)
        entries = await PointsEntry.filter(member_id=member_id).order_by("id")
        pending = await PendingEarning.filter(member_id=member_id).order_by("id")
        return {
            "points_account": [
                {"balance": account.balance, "pending": account.pending, "debt": account.debt}
            ]
            if account
            else [],
            "points_ledger": [
                {
                    "id": e.id,
                    "kind": e.kind.value,
                    "amount": e.amount,
                    "debt_change": e.debt_delta,
                    "source": e.source_type.value,
                    "order_id": e.order_id,
                    "remaining": e.remaining,
                    "expires_at": e.expires_at.isoformat() if e.expires_at else None,
                    "reason": e.reason,
                    "created_at": e.created_at.isoformat(),
                }
                for e in entries
            ],
            "points_pending": [
                {
                    "order_id": p.order_id,
                    "amount": p.amount,
                    "status": p.status.value,
                    "activates_at": p.activates_at.isoformat(),
                }
                for p in pending
            ],
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        # Amounts stay so the books balance; free text may name the person.
        await PointsEntry.filter(member_id=member_id).using_db(connection).update(reason=None)


def _state(rows: list[dict[str, Any]]) -> ledger.AccountState:
    if not rows:
        raise LedgerRace("survivor account missing")
    row = rows[0]
    return ledger.AccountState(int(row["balance"]), int(row["pending"]), int(row["debt"]))


hooks.register_member_data(PointsData())
