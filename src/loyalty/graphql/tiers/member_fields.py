"""Tier fields of `Member`, batched per request through loaders."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.dataloader import DataLoader

from loyalty.graphql.context import Info
from loyalty.graphql.tiers.types import Tier, TierChange, TierProgress
from loyalty.tiers import service


async def _standings(ids: list[int]) -> list[service.Standing | None]:
    found = await service.standings(member_ids=ids)
    return [found.get(i) for i in ids]


def standings_loader(loaders: Any) -> DataLoader[int, service.Standing | None]:
    """The request's loader of tier standings, shared by every field that needs them."""
    return loaders.get("tier_by_member", lambda: DataLoader(_standings))  # type: ignore[no-any-return]


async def known_standings(loaders: Any, ids: list[int]) -> dict[int, service.Standing]:
    """Standings of ``ids`` through the shared loader (read once per request)."""
    rows = await standings_loader(loaders).load_many(ids)
    return {i: row for i, row in zip(ids, rows, strict=True) if row is not None}


async def _history(ids: list[int]) -> list[list[Any]]:
    found = await service.history(member_ids=ids)
    return [found.get(i, []) for i in ids]


def _standing(info: Info, member_id: int) -> Any:
    return standings_loader(info.context.loaders).load(member_id)


@strawberry.type
class MemberTierFields:
    """Mixed into `Member`: ``self.id`` is the member's primary key."""

    if TYPE_CHECKING:
        id: int

    @strawberry.field(description="Current tier (the entry tier until the member earns more).")
    async def tier(self, info: Info) -> Tier | None:
        standing = await _standing(info, self.id)
        return Tier.from_model(standing.tier) if standing else None

    @strawberry.field(description="When the member reached the current tier (UTC).")
    async def tier_since(self, info: Info) -> datetime | None:
        standing = await _standing(info, self.id)
        return standing.since if standing else None

    @strawberry.field(description="When the current tier is reviewed (UTC); null: never.")
    async def tier_expires_at(self, info: Info) -> datetime | None:
        standing = await _standing(info, self.id)
        return standing.expires_at if standing else None

    @strawberry.field(description="Progress to the next tier and what keeps the current one.")
    async def tier_progress(self, info: Info) -> TierProgress | None:
        loaders = info.context.loaders

        async def batch(ids: list[int]) -> list[service.Progress | None]:
            known = await known_standings(loaders, ids)
            found = await service.progress(member_ids=ids, known=known)
            return [found.get(i) for i in ids]

        loader = loaders.get("tier_progress_by_member", lambda: DataLoader(batch))
        progress = await loader.load(self.id)
        return TierProgress.from_domain(progress) if progress else None

    @strawberry.field(description="Tier changes, latest first (at most 50).")
    async def tier_history(self, info: Info) -> list[TierChange]:
        loader = info.context.loaders.get("tier_history_by_member", lambda: DataLoader(_history))
        return [TierChange.from_model(row) for row in await loader.load(self.id)]
