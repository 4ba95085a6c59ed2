"""Points fields of `Member`, batched per request through loaders."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry
from strawberry.dataloader import DataLoader

from loyalty.graphql.context import Info
from loyalty.graphql.loaders import PageKey, paged
from loyalty.graphql.pagination import check_first, decode_cursor, encode_cursor
from loyalty.graphql.points.types import (
    PointsEntry,
    PointsHistory,
    PointsHistoryEdge,
    PointsLot,
    PointsPageInfo,
)
from loyalty.graphql.scalars import Long
from loyalty.points.models import PointsEntry as EntryRow
from loyalty.points.service import queries
from loyalty.points.service.ledger import AccountState


async def _accounts(ids: list[int]) -> list[AccountState]:
    found = await queries.accounts(ids)
    return [found.get(i, queries.EMPTY) for i in ids]


async def _lots(ids: list[int]) -> list[list[EntryRow]]:
    found = await queries.open_lots(ids)
    return [found.get(i, []) for i in ids]


async def _first_history_pages(
    member_ids: list[int], first: int
) -> dict[int, tuple[list[EntryRow], bool]]:
    return await queries.first_history_pages(member_ids, first=first)


async def _history_page(member_id: int, first: int, before_id: int) -> tuple[list[EntryRow], bool]:
    return await queries.history_page(member_id=member_id, first=first, before_id=before_id)


def _history_loader(info: Info) -> DataLoader[PageKey[int | None], tuple[list[EntryRow], bool]]:
    return info.context.loaders.get(
        "points_history_page_by_member",
        lambda: DataLoader(paged(_first_history_pages, _history_page)),
    )


@strawberry.type(description="A member's points: balance, pending, debt and open lots.")
class MemberPoints:
    member_id: strawberry.Private[int]
    balance: Long = strawberry.field(description="Spendable points (never negative).")
    pending: Long = strawberry.field(
        description="Points earned on orders still inside the return window."
    )
    debt: Long = strawberry.field(
        description="Points owed from refunds of spent points; later earnings pay it first."
    )

    @strawberry.field(description="Points that expire within `days` days from now.")
    async def expiring_soon(self, info: Info, days: int = 30) -> Long:
        lots = await _lots_loader(info).load(self.member_id)
        return queries.expiring_within(lots, max(0, min(days, 3660)))  # type: ignore[return-value]

    @strawberry.field(description="Lots with points left, oldest expiry first.")
    async def lots(self, info: Info) -> list[PointsLot]:
        return [PointsLot.from_model(lot) for lot in await _lots_loader(info).load(self.member_id)]


def _lots_loader(info: Info) -> DataLoader[int, list[EntryRow]]:
    return info.context.loaders.get("points_lots_by_member", lambda: DataLoader(_lots))


@strawberry.type
class MemberPointsFields:
    """Mixed into `Member`: ``self.id`` is the member's primary key."""

    if TYPE_CHECKING:
        id: int

    @strawberry.field(description="The member's points.")
    async def points(self, info: Info) -> MemberPoints:
        loader = info.context.loaders.get("points_account_by_member", lambda: DataLoader(_accounts))
        state: AccountState = await loader.load(self.id)
        return MemberPoints(
            member_id=self.id, balance=state.balance, pending=state.pending, debt=state.debt
        )

    @strawberry.field(
        description="Ledger entries, newest first (keyset pagination). `first` is 1–100."
    )
    async def points_history(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> PointsHistory:
        check_first(first, info.context.settings.max_page_size)
        before_id = int(decode_cursor(after)[0]) if after else None
        rows, has_next = await _history_loader(info).load((self.id, first, before_id))
        edges = [
            PointsHistoryEdge(cursor=encode_cursor(row.id), node=PointsEntry.from_model(row))
            for row in rows
        ]
        return PointsHistory(
            edges=edges,
            page_info=PointsPageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )
