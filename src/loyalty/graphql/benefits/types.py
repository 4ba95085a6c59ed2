"""GraphQL types of the benefits domain."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from loyalty.benefits import errors, models, service

BenefitKind = strawberry.enum(models.BenefitKind, description="What a benefit gives.")
QuotaPeriod = strawberry.enum(
    models.QuotaPeriod,
    description="How often a quota renews (business time zone; WEEK starts on Monday).",
)
BenefitClaimStatus = strawberry.enum(
    models.ClaimStatus,
    description="CLAIMED (used at once); RESERVED (held for a checkout); CONFIRMED (bound to an "
    "order); RELEASED (given back, by the caller or on timeout).",
)


@strawberry.type(description="A benefit in the catalog.")
class Benefit:
    code: str = strawberry.field(description="Stable code, e.g. `FREE_SHIP`.")
    name: str = strawberry.field(description="Display name.")
    kind: BenefitKind = strawberry.field(description="What it gives.")
    config: JSON = strawberry.field(
        description="Kind-specific settings (amounts in fen, multipliers per-mille)."
    )
    channels: list[str] = strawberry.field(description="Where it can be used; empty: everywhere.")
    description: str = strawberry.field(description="What it means, for members.")
    active: bool = strawberry.field(description="Inactive benefits cannot be claimed.")

    @classmethod
    def from_model(cls, row: models.Benefit) -> Benefit:
        return cls(
            code=row.code,
            name=row.name,
            kind=row.kind,
            config=row.config,
            channels=list(row.channels or []),
            description=row.description,
            active=row.active,
        )


@strawberry.type(description="What a tier gets of one benefit (own or inherited).")
class TierEntitlement:
    benefit: Benefit = strawberry.field(description="The benefit.")
    period: QuotaPeriod = strawberry.field(description="How often the quota renews.")
    quota: int | None = strawberry.field(description="Uses per period; null: unlimited.")
    granted_by: str = strawberry.field(
        description="Code of the tier whose entitlement applies (itself or a lower tier)."
    )

    @classmethod
    def from_domain(cls, e: service.Entitlement) -> TierEntitlement:
        return cls(
            benefit=Benefit.from_model(e.benefit),
            period=e.period,
            quota=e.quota,
            granted_by=e.granted_by,
        )


@strawberry.type(description="One of a member's benefits, with the uses left this period.")
class MemberBenefit:
    benefit: Benefit = strawberry.field(description="The benefit.")
    period: QuotaPeriod = strawberry.field(description="How often the quota renews.")
    quota: int | None = strawberry.field(description="Uses per period; null: unlimited.")
    used: int = strawberry.field(description="Uses taken this period (held ones included).")
    uses_left: int | None = strawberry.field(description="Uses left; null: unlimited.")
    renews_at: datetime | None = strawberry.field(
        description="When the next period starts (UTC); null for LIFETIME and UNLIMITED."
    )

    @classmethod
    def from_domain(cls, m: service.MemberBenefit) -> MemberBenefit:
        return cls(
            benefit=Benefit.from_model(m.entitlement.benefit),
            period=m.entitlement.period,
            quota=m.entitlement.quota,
            used=m.used,
            uses_left=m.uses_left,
            renews_at=m.renews_at,
        )


@strawberry.type(description="A use, or a held use, of a benefit.")
class BenefitClaim:
    id: strawberry.ID = strawberry.field(description="Claim id (for confirm and release).")
    benefit_code: str = strawberry.field(description="The benefit.")
    channel: str = strawberry.field(description="Where it was used.")
    status: BenefitClaimStatus = strawberry.field(description="Where it stands.")
    tier_code: str = strawberry.field(description="The member's tier when claimed.")
    order_ref: str | None = strawberry.field(description="Order a reservation was bound to.")
    hold_until: datetime | None = strawberry.field(description="A reservation's deadline (UTC).")
    created_at: datetime = strawberry.field(description="When (UTC).")

    @classmethod
    def from_model(cls, row: models.BenefitClaim, benefit_code: str) -> BenefitClaim:
        return cls(
            id=strawberry.ID(str(row.id)),
            benefit_code=benefit_code,
            channel=row.channel,
            status=row.status,
            tier_code=row.tier_code,
            order_ref=row.order_ref,
            hold_until=row.hold_until,
            created_at=row.created_at,
        )


@strawberry.type(description="The member's tier does not include this benefit.")
class NotEntitledError:
    code: str = strawberry.field(description="Always `NOT_ENTITLED`.")
    message: str = strawberry.field(description="For people.")
    tier_code: str = strawberry.field(description="The member's tier.")

    @classmethod
    def from_domain(cls, e: errors.NotEntitled) -> NotEntitledError:
        return cls(code=e.code, message=e.message, tier_code=e.tier_code)


@strawberry.type(description="Every use of the current period is taken.")
class QuotaExhaustedError:
    code: str = strawberry.field(description="Always `QUOTA_EXHAUSTED`.")
    message: str = strawberry.field(description="For people.")
    quota: int = strawberry.field(description="Uses per period.")
    renews_at: datetime | None = strawberry.field(description="When uses come back (UTC).")

    @classmethod
    def from_domain(cls, e: errors.QuotaExhausted) -> QuotaExhaustedError:
        return cls(code=e.code, message=e.message, quota=e.quota, renews_at=e.renews_at)  # type: ignore[arg-type]


@strawberry.type(description="The benefit cannot be used in this channel.")
class WrongChannelError:
    code: str = strawberry.field(description="Always `WRONG_CHANNEL`.")
    message: str = strawberry.field(description="For people.")
    allowed_channels: list[str] = strawberry.field(description="Where it can be used.")

    @classmethod
    def from_domain(cls, e: errors.WrongChannel) -> WrongChannelError:
        return cls(code=e.code, message=e.message, allowed_channels=e.allowed)


@strawberry.type(description="The reservation was released, timed out, or confirmed elsewhere.")
class ReservationNotActiveError:
    code: str = strawberry.field(description="Always `RESERVATION_NOT_ACTIVE`.")
    message: str = strawberry.field(description="For people.")
    status: str = strawberry.field(description="RELEASED, CONFIRMED, CLAIMED or EXPIRED.")

    @classmethod
    def from_domain(cls, e: errors.ReservationNotActive) -> ReservationNotActiveError:
        return cls(code=e.code, message=e.message, status=e.status)
