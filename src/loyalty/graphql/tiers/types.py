"""GraphQL types of the tiers domain."""

from __future__ import annotations

from datetime import datetime

import strawberry

from loyalty.graphql.scalars import Long
from loyalty.tiers import models, preview, service

TierMetric = strawberry.enum(
    models.Metric,
    name="TierMetric",
    description="What qualifies: SPEND (paid net of refunds, fen), POINTS (earned), ORDERS.",
)
TierWindow = strawberry.enum(
    models.Window,
    name="TierWindow",
    description="ROLLING_DAYS: the last `windowDays` days; CALENDAR_YEAR: since January 1 "
    "(business time zone).",
)
DowngradePolicy = strawberry.enum(
    models.DowngradePolicy,
    description="At review, a member who no longer qualifies goes ONE_DOWN, or is "
    "RECALCULATEd to the tier their activity qualifies for.",
)
TierChangeReason = strawberry.enum(models.ChangeReason, description="Why a member's tier changed.")


@strawberry.type(description="One rung of the tier ladder.")
class Tier:
    code: str = strawberry.field(description="Stable code, e.g. `GOLD`.")
    name: str = strawberry.field(description="Display name, e.g. 金卡.")
    rank: int = strawberry.field(description="Higher is better; the lowest is the entry tier.")
    metric: TierMetric = strawberry.field(description="What qualifies for this tier.")
    threshold: Long = strawberry.field(
        description="Amount of the metric needed (fen for SPEND, points, orders)."
    )
    window: TierWindow = strawberry.field(description="Over which period the metric counts.")
    window_days: int | None = strawberry.field(description="Days of a rolling window.")
    retention_days: int | None = strawberry.field(
        description="Days the tier is held before review; null: never reviewed."
    )
    multiplier_permille: int = strawberry.field(
        description="Points multiplier in per-mille (1500 = x1.5)."
    )
    description: str = strawberry.field(description="What the tier means, for members.")

    @classmethod
    def from_model(cls, row: models.Tier) -> Tier:
        return cls(
            code=row.code,
            name=row.name,
            rank=row.rank,
            metric=row.metric,
            threshold=Long(row.threshold),
            window=row.window,
            window_days=row.window_days,
            retention_days=row.retention_days,
            multiplier_permille=row.multiplier_permille,
            description=row.description,
        )


@strawberry.type(description="Program-wide tier settings.")
class TierPolicy:
    downgrade_policy: DowngradePolicy = strawberry.field(description="Where review moves members.")
    notice_days: int = strawberry.field(
        description="Days before expiry a downgrade notice is sent (0: none)."
    )

    @classmethod
    def from_model(cls, row: models.TierPolicy) -> TierPolicy:
        return cls(downgrade_policy=row.downgrade_policy, notice_days=row.notice_days)


@strawberry.type(description="One change of a member's tier.")
class TierChange:
    from_code: str | None = strawberry.field(description="Tier before (code).")
    to_code: str = strawberry.field(description="Tier after (code).")
    reason: TierChangeReason = strawberry.field(description="Why it changed.")
    actor: str = strawberry.field(description="Who changed it: a principal or `system`.")
    note: str | None = strawberry.field(description="Admin's note, if any.")
    at: datetime = strawberry.field(description="When (UTC).")

    @classmethod
    def from_model(cls, row: models.TierChange) -> TierChange:
        return cls(
            from_code=row.from_code,
            to_code=row.to_code,
            reason=row.reason,
            actor=row.actor,
            note=row.note,
            at=row.at,
        )


@strawberry.type(description="Where a member stands: the way up and what keeps the tier.")
class TierProgress:
    tier: Tier = strawberry.field(description="Current tier.")
    next_tier: Tier | None = strawberry.field(description="The tier above; null at the top.")
    metric: TierMetric = strawberry.field(
        description="Metric of the next tier (of the current one at the top)."
    )
    current_value: Long = strawberry.field(
        description="The metric's value now, over that tier's window."
    )
    amount_to_next_tier: Long | None = strawberry.field(
        description="How much more of the metric reaches the next tier; null at the top."
    )
    retain_metric: TierMetric | None = strawberry.field(
        description="Metric that keeps the current tier; null when it does not expire."
    )
    amount_to_retain: Long | None = strawberry.field(
        description="How much more, by `retainBy`, keeps the current tier at review "
        "(0: already kept); null when the tier does not expire."
    )
    retain_by: datetime | None = strawberry.field(description="When the tier is reviewed.")

    @classmethod
    def from_domain(cls, p: service.Progress) -> TierProgress:
        return cls(
            tier=Tier.from_model(p.tier),
            next_tier=Tier.from_model(p.next_tier) if p.next_tier else None,
            metric=p.metric,
            current_value=Long(p.value),
            amount_to_next_tier=Long(p.to_next) if p.to_next is not None else None,
            retain_metric=p.retain_metric,
            amount_to_retain=Long(p.retain_needed) if p.retain_needed is not None else None,
            retain_by=p.retain_by,
        )


@strawberry.type(description="Members holding one current tier, and where a proposal takes them.")
class TierMoves:
    code: str = strawberry.field(description="Current tier code.")
    name: str = strawberry.field(description="Current tier name.")
    members: int = strawberry.field(description="Active members holding it now.")
    up: int = strawberry.field(description="Of those, how many would move up.")
    down: int = strawberry.field(description="…would move down.")
    stay: int = strawberry.field(description="…would stay.")


@strawberry.type(description="How many members a proposed tier would hold.")
class ProposedTierCount:
    code: str = strawberry.field(description="Proposed tier code.")
    name: str = strawberry.field(description="Proposed tier name.")
    members: int = strawberry.field(description="Active members who would hold it.")


@strawberry.type(
    description="What-if of a proposed ladder over today's data (a recalculation as of now; "
    "locked manual tiers do not move down). Nothing is written."
)
class TierRulePreview:
    up: int = strawberry.field(description="Members who would move up.")
    down: int = strawberry.field(description="Members who would move down.")
    stay: int = strawberry.field(description="Members who would stay.")
    current: list[TierMoves] = strawberry.field(description="Per current tier.")
    proposed: list[ProposedTierCount] = strawberry.field(description="Per proposed tier.")

    @classmethod
    def from_domain(cls, p: preview.Preview) -> TierRulePreview:
        return cls(
            up=p.up,
            down=p.down,
            stay=p.stay,
            current=[TierMoves(**vars(r)) for r in p.current],
            proposed=[ProposedTierCount(**vars(r)) for r in p.proposed],
        )
