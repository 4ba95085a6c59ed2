"""Inputs of the tiers domain."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from loyalty.graphql.scalars import Long
from loyalty.graphql.tiers.types import DowngradePolicy, TierMetric, TierWindow
from loyalty.tiers.rules import TierRule


@strawberry.input(description="A tier rule: a new tier, or one rung of a proposed ladder.")
class TierRuleInput:
    code: str = strawberry.field(description="1–32 of A–Z, 0–9, _ (upper-cased).")
    name: str = strawberry.field(description="Display name, 1–64 characters.")
    rank: int = strawberry.field(description="0–1000, unique; the lowest is the entry tier.")
    metric: TierMetric = strawberry.field(description="What qualifies.")
    threshold: Long = strawberry.field(description="Needed amount, ≥ 0; the entry tier has 0.")
    window: TierWindow = strawberry.field(description="Over which period the metric counts.")
    window_days: int | None = strawberry.field(
        default=365, description="Days of a rolling window (1–3660); null for CALENDAR_YEAR."
    )
    retention_days: int | None = strawberry.field(
        default=365, description="Days held before review (1–3660); null: never expires."
    )
    multiplier_permille: int = strawberry.field(
        default=1000, description="Points multiplier, 100–10000 (1000 = x1)."
    )
    description: str = strawberry.field(default="", description="Up to 2000 characters.")

    def to_rule(self) -> TierRule:
        return TierRule(
            code=self.code.strip().upper(),
            name=self.name.strip(),
            rank=self.rank,
            metric=self.metric,
            threshold=int(self.threshold),
            window=self.window,
            window_days=self.window_days,
            retention_days=self.retention_days,
            multiplier_permille=self.multiplier_permille,
            description=self.description,
        )


@strawberry.input(description="Changes to a tier; omitted fields keep their value.")
class UpdateTierInput:
    code: str = strawberry.field(description="The tier to change.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Display name.")
    rank: int | None = strawberry.field(default=strawberry.UNSET, description="New rank.")
    metric: TierMetric | None = strawberry.field(default=strawberry.UNSET, description="Metric.")
    threshold: Long | None = strawberry.field(default=strawberry.UNSET, description="Threshold.")
    window: TierWindow | None = strawberry.field(default=strawberry.UNSET, description="Window.")
    window_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="Days of a rolling window."
    )
    retention_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="Days held before review; null: never expires."
    )
    multiplier_permille: int | None = strawberry.field(
        default=strawberry.UNSET, description="Points multiplier per-mille."
    )
    description: str | None = strawberry.field(default=strawberry.UNSET, description="Description.")


@strawberry.input(description="Put a member on a tier by hand.")
class AssignTierInput:
    member_id: relay.GlobalID = strawberry.field(description="Global id of the member.")
    tier_code: str = strawberry.field(description="Code of the tier.")
    locked_until: datetime | None = strawberry.field(
        default=None, description="Reviews leave the tier alone until then (VIP invitations)."
    )
    note: str | None = strawberry.field(default=None, description="Why, up to 255 characters.")


@strawberry.input(description="Program-wide tier settings; omitted fields keep their value.")
class SetTierPolicyInput:
    downgrade_policy: DowngradePolicy | None = strawberry.field(
        default=None, description="Where review moves members who no longer qualify."
    )
    notice_days: int | None = strawberry.field(
        default=None, description="Days ahead of expiry for downgrade notices, 0–365."
    )
