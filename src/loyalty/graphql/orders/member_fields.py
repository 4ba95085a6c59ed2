"""Order fields of `Member`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry
from strawberry.dataloader import DataLoader

from loyalty.graphql.context import Info
from loyalty.graphql.loaders import PageKey, paged
from loyalty.graphql.orders.types import Order
from loyalty.graphql.pagination import check_first, decode_cursor, encode_cursor
from loyalty.orders import models, service

OrderPage = tuple[list[models.Order], bool]


async def _favourites(ids: list[int]) -> list[list[str]]:
    found = await service.favourite_categories(ids)
    return [found.get(i, []) for i in ids]


async def _first_pages(member_ids: list[int], first: int) -> dict[int, OrderPage]:
    return await service.first_member_pages(member_ids, first=first)


async def _page(member_id: int, first: int, after: tuple[datetime, int]) -> OrderPage:
    return await service.member_page(member_id=member_id, first=first, after=after)


def _pages_loader(info: Info) -> DataLoader[PageKey[tuple[datetime, int] | None], OrderPage]:
    return info.context.loaders.get(
        "order_page_by_member", lambda: DataLoader(paged(_first_pages, _page))
    )


@strawberry.type(description="An edge of a member's orders.")
class MemberOrderEdge:
    cursor: str = strawberry.field(description="Opaque keyset cursor.")
    node: Order = strawberry.field(description="The order.")


@strawberry.type(description="A page of a member's orders, newest first.")
class MemberOrders:
    edges: list[MemberOrderEdge] = strawberry.field(description="The orders.")
    has_next_page: bool = strawberry.field(description="More orders follow.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type
class MemberOrderFields:
    """Mixed into `Member`: ``self.id`` is the member's primary key."""

    if TYPE_CHECKING:
        id: int

    @strawberry.field(description="Orders, newest first (keyset pagination). `first` is 1–100.")
    async def orders(self, info: Info, first: int = 10, after: str | None = None) -> MemberOrders:
        check_first(first, info.context.settings.max_page_size)
        key = None
        if after:
            at, order_id = decode_cursor(after, 2)
            try:
                key = (datetime.fromisoformat(str(at)), int(order_id))
            except (TypeError, ValueError):
                from loyalty.graphql.errors import BadUserInput

                raise BadUserInput("Invalid cursor.", argument="after") from None
        rows, has_next = await _pages_loader(info).load((self.id, first, key))
        edges = [
            MemberOrderEdge(
                cursor=encode_cursor(row.occurred_at.isoformat(), row.id),
                node=Order.from_model(row),
            )
            for row in rows
        ]
        return MemberOrders(
            edges=edges, has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
        )

    @strawberry.field(description="Up to three categories the member spends most on.")
    async def favourite_categories(self, info: Info) -> list[str]:
        loader = info.context.loaders.get(
            "favourite_categories_by_member", lambda: DataLoader(_favourites)
        )
        return await loader.load(self.id)  # type: ignore[no-any-return]
