"""GraphQL types of the points domain. Points are whole numbers (``Long``); every calculation
rounds down."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.dataloader import DataLoader

from loyalty.graphql.context import Info
from loyalty.graphql.scalars import Long
from loyalty.points import errors as domain
from loyalty.points import models, rules
from loyalty.points.service import queries
from loyalty.points.service.earn import Movement

EntryKind = strawberry.enum(
    models.EntryKind,
    description="EARN (a lot), REDEEM, EXPIRE, ADJUST (by an admin), REVERSE (clawback of "
    "points earned on refunded lines), DEBT (what a clawback could not take; balance "
    "unchanged), SETTLE (later points paying the debt), RESTORE (redeemed points returned "
    "to their lots by a refund).",
)
SourceType = strawberry.enum(models.SourceType, description="Where a ledger entry came from.")
RuleKind = strawberry.enum(
    models.RuleKind,
    description="BASE: points per currency unit paid; CATEGORY_BONUS: multiplier on lines of "
    "some categories; PROMOTION: multiplier on the whole order inside a window.",
)
RuleReason = strawberry.enum(rules.Reason, description="Why a rule did or did not apply.")


@strawberry.type(description="A lot: points earned or granted together, with one expiry.")
class PointsLot:
    entry_id: Long = strawberry.field(description="Id of the EARN/ADJUST entry of this lot.")
    amount: Long = strawberry.field(description="Points the lot started with.")
    remaining: Long = strawberry.field(description="Points still available in the lot.")
    expires_at: datetime | None = strawberry.field(
        description="Usable until this instant (end of month, business time zone); null: never."
    )
    earned_at: datetime = strawberry.field(description="When the lot was created (UTC).")

    @classmethod
    def from_model(cls, row: models.PointsEntry) -> PointsLot:
        return cls(
            entry_id=row.id,
            amount=row.amount,
            remaining=int(row.remaining or 0),
            expires_at=row.expires_at,
            earned_at=row.created_at,
        )


@strawberry.type(
    description="Points one entry took from (positive) or returned to (negative) a lot."
)
class PointsLotDraw:
    lot_entry_id: Long = strawberry.field(description="The lot's entry id.")
    amount: Long = strawberry.field(description="Points taken (negative: given back).")
    lot_expires_at: datetime | None = strawberry.field(description="The lot's expiry.")


@strawberry.type(description="Where an entry came from.")
class PointsSource:
    type: SourceType = strawberry.field(description="ORDER, REFUND, REDEMPTION, CAMPAIGN, ADMIN…")
    reference: str | None = strawberry.field(
        description="The order id, refund key, redemption or grant key, as recorded."
    )
    order_id: Long | None = strawberry.field(description="Internal id of the related order.")
    order_channel: str | None = strawberry.field(description="Channel of a referenced order.")
    order_external_id: str | None = strawberry.field(
        description="The channel's id of a referenced order (redemptions at checkout)."
    )


async def _draws(entry_ids: list[int]) -> list[list[PointsLotDraw]]:
    grouped = await queries.allocations(entry_ids)
    lot_ids = {a.lot_id for rows in grouped.values() for a in rows}  # type: ignore[attr-defined]
    lots = await queries.entries(sorted(lot_ids)) if lot_ids else {}
    return [
        [
            PointsLotDraw(
                lot_entry_id=a.lot_id,  # type: ignore[attr-defined]
                amount=a.amount,
                lot_expires_at=lots[a.lot_id].expires_at  # type: ignore[attr-defined]
                if a.lot_id in lots  # type: ignore[attr-defined]
                else None,
            )
            for a in grouped.get(entry_id, [])
        ]
        for entry_id in entry_ids
    ]


@strawberry.type(description="One ledger entry (append-only).")
class PointsEntry:
    entry_id: Long = strawberry.field(description="Entry id (ascending in time).")
    kind: EntryKind = strawberry.field(description="What the entry did.")
    amount: Long = strawberry.field(description="Signed change of the balance.")
    debt_change: Long = strawberry.field(description="Signed change of the debt.")
    balance_after: Long | None = strawberry.field(description="Balance right after the entry.")
    created_at: datetime = strawberry.field(description="When it was written (UTC).")
    expires_at: datetime | None = strawberry.field(description="For lots: the expiry.")
    remaining: Long | None = strawberry.field(description="For lots: points still available.")
    reason: str | None = strawberry.field(description="An admin adjustment's reason.")
    source: PointsSource = strawberry.field(description="Where the entry came from.")

    @strawberry.field(description="The lots this entry drew on (or returned points to).")
    async def lots(self, info: Info) -> list[PointsLotDraw]:
        loader = info.context.loaders.get("points_draws_by_entry", lambda: DataLoader(_draws))
        return await loader.load(self.entry_id)  # type: ignore[no-any-return]

    @classmethod
    def from_model(cls, row: models.PointsEntry) -> PointsEntry:
        return cls(
            entry_id=row.id,
            kind=row.kind,
            amount=row.amount,
            debt_change=row.debt_delta,
            balance_after=row.balance_after,
            created_at=row.created_at,
            expires_at=row.expires_at,
            remaining=row.remaining,
            reason=row.reason,
            source=PointsSource(
                type=row.source_type,
                reference=row.source_ref,
                order_id=row.order_id,
                order_channel=row.order_channel,
                order_external_id=row.order_external_id,
            ),
        )


@strawberry.type(description="An edge of the points history.")
class PointsHistoryEdge:
    cursor: str = strawberry.field(description="Opaque keyset cursor.")
    node: PointsEntry = strawberry.field(description="The entry.")


@strawberry.type(description="Page information of a keyset page.")
class PointsPageInfo:
    has_next_page: bool = strawberry.field(description="More entries follow.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type(description="A page of ledger entries, newest first.")
class PointsHistory:
    edges: list[PointsHistoryEdge] = strawberry.field(description="The entries.")
    page_info: PointsPageInfo = strawberry.field(description="Paging.")


@strawberry.type(description="The spend could not be covered; nothing was written.")
class InsufficientPointsError:
    code: str = strawberry.field(description="Always `INSUFFICIENT_POINTS`.")
    message: str = strawberry.field(description="For people.")
    balance: Long = strawberry.field(description="The balance when the request was refused.")
    requested: Long = strawberry.field(description="Points requested.")

    @classmethod
    def from_domain(cls, error: domain.InsufficientPoints) -> InsufficientPointsError:
        return cls(
            code=error.code,
            message=error.message,
            balance=error.balance,
            requested=error.requested,
        )


@strawberry.type(description="A ledger change.")
class PointsMovement:
    entry_id: Long = strawberry.field(description="The entry written (the first one, on replay).")
    amount: Long = strawberry.field(description="Signed change of the balance.")
    balance: Long = strawberry.field(description="Balance right after the change.")
    replayed: bool = strawberry.field(
        description="True when the idempotency key was seen before: nothing new was written."
    )

    @classmethod
    def from_domain(cls, movement: Movement) -> PointsMovement:
        return cls(
            entry_id=movement.entry_id,
            amount=movement.amount,
            balance=movement.balance,
            replayed=movement.replayed,
        )


@strawberry.type(description="A member's balance as published after a change.")
class PointsBalance:
    member_id: strawberry.ID = strawberry.field(description="Global id of the member.")
    balance: Long = strawberry.field(description="Spendable points.")
    pending: Long = strawberry.field(description="Points waiting for the return window.")
    debt: Long = strawberry.field(description="Points owed from refunds.")
    changed_at: datetime = strawberry.field(description="When it was read after the change.")


@strawberry.type(description="An earning rule (data, editable by admins).")
class EarningRule:
    id: strawberry.ID = strawberry.field(description="Rule id.")
    code: str = strawberry.field(description="Unique code.")
    name: str = strawberry.field(description="Name shown to staff.")
    kind: RuleKind = strawberry.field(description="BASE, CATEGORY_BONUS or PROMOTION.")
    active: bool = strawberry.field(description="Inactive rules never apply.")
    currency: str = strawberry.field(description="BASE: ISO currency the rate is for.")
    points_per_unit: Long = strawberry.field(
        description="BASE: points per whole currency unit paid (the part paid with points "
        "excluded); the order's total is rounded down."
    )
    multiplier_permille: int = strawberry.field(
        description="CATEGORY_BONUS / PROMOTION: multiplier in per-mille (2000 = ×2). The "
        "largest matching bonus per line and the largest promotion apply."
    )
    categories: list[str] = strawberry.field(description="CATEGORY_BONUS: categories.")
    channels: list[str] = strawberry.field(description="Channels it applies to; empty: all.")
    starts_at: datetime | None = strawberry.field(description="Window start (inclusive).")
    ends_at: datetime | None = strawberry.field(description="Window end (exclusive).")
    days_of_month: list[int] = strawberry.field(
        description="Only on these days of the month (business time zone); empty: any day."
    )
    weekdays: list[int] = strawberry.field(
        description="Only on these weekdays, 1 = Monday … 7 = Sunday; empty: any."
    )

    @classmethod
    def from_model(cls, row: models.EarningRule) -> EarningRule:
        return cls(
            id=strawberry.ID(str(row.id)),
            code=row.code,
            name=row.name,
            kind=row.kind,
            active=row.active,
            currency=row.currency,
            points_per_unit=row.points_per_unit,
            multiplier_permille=row.multiplier_permille,
            categories=list(row.categories or []),
            channels=list(row.channels or []),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            days_of_month=list(row.days_of_month or []),
            weekdays=list(row.weekdays or []),
        )


@strawberry.type(description="Program-wide points tunables.")
class PointsProgram:
    expiry_months: int | None = strawberry.field(
        description="Lots expire at the end of the month this many months after earning "
        "(business time zone); null: never."
    )
    pending_days: int = strawberry.field(
        description="Return window: order points stay pending this many days (0: active at once)."
    )
    guest_attach_window_days: int = strawberry.field(
        description="Guest orders this recent earn points when their identity is linked."
    )
    per_order_cap: Long | None = strawberry.field(description="Most points one order earns.")
    per_day_cap: Long | None = strawberry.field(
        description="Most points a member earns from orders per business day."
    )


@strawberry.type(description="Whether one rule applied to a simulated order, and why.")
class RuleOutcome:
    code: str = strawberry.field(description="The rule's code.")
    kind: RuleKind = strawberry.field(description="The rule's kind.")
    applied: bool = strawberry.field(description="Whether it contributed.")
    reason: RuleReason = strawberry.field(description="Why (or why not).")
    detail: str = strawberry.field(description="For people.")


@strawberry.type(description="A dry run of the earning rules; nothing was written.")
class EarnSimulation:
    points: Long = strawberry.field(
        description="Points the order would earn (rounded down, capped)."
    )
    uncapped_points: Long = strawberry.field(description="Before the caps.")
    capped_by: str | None = strawberry.field(description="PER_ORDER_CAP or PER_DAY_CAP, if any.")
    paid_amount: Long = strawberry.field(
        description="Paid amount the rate applies to (minor units)."
    )
    tier_multiplier_permille: int = strawberry.field(description="The member's multiplier.")
    pending: bool = strawberry.field(description="Whether the points would start pending.")
    rules: list[RuleOutcome] = strawberry.field(description="Every rule, applied or not.")


@strawberry.type(description="Outstanding points expiring in one month.")
class LiabilityByExpiry:
    month: str | None = strawberry.field(description="`YYYY-MM` (business time zone); null: never.")
    points: Long = strawberry.field(description="Points outstanding.")


@strawberry.type(description="Points moved in one month (business time zone).")
class PointsFlow:
    month: str = strawberry.field(description="`YYYY-MM`.")
    issued: Long = strawberry.field(description="Earned, granted, adjusted up or returned.")
    redeemed: Long = strawberry.field(description="Spent.")
    expired: Long = strawberry.field(description="Expired (breakage).")
    reversed: Long = strawberry.field(description="Clawed back by refunds or paid to a debt.")
    adjusted_down: Long = strawberry.field(description="Taken by admin adjustments.")


@strawberry.type(description="Points liability: what the program owes its members.")
class PointsLiability:
    outstanding: Long = strawberry.field(description="Spendable points of all members.")
    pending: Long = strawberry.field(description="Points waiting for their return window.")
    debt: Long = strawberry.field(description="Points members owe from refunds.")
    by_expiry_month: list[LiabilityByExpiry] = strawberry.field(
        description="Outstanding by expiry."
    )
    flows: list[PointsFlow] = strawberry.field(description="Per month, oldest first.")
