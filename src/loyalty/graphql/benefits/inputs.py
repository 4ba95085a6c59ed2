"""Inputs of the benefits domain."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from loyalty.graphql.benefits.types import BenefitKind, QuotaPeriod
from loyalty.graphql.members.types import Channel


@strawberry.input(description="A new catalog entry.")
class CreateBenefitInput:
    code: str = strawberry.field(description="1–32 of A–Z, 0–9, _ (upper-cased).")
    name: str = strawberry.field(description="Display name, 1–64 characters.")
    kind: BenefitKind = strawberry.field(description="What it gives.")
    config: JSON | None = strawberry.field(
        default=None,
        description="Kind-specific keys: PERCENT_DISCOUNT {percent, maxDiscount}; AMOUNT_OFF "
        "{amount, minSpend}; FREE_SHIPPING {maxShippingFee, minSpend}; BIRTHDAY_GIFT "
        "{giftSku, points}; PRIORITY_SERVICE {hotline, level}; EVENT_ACCESS {eventCode, guests}; "
        "POINTS_MULTIPLIER {multiplierPermille}; CUSTOM: any object.",
    )
    channels: list[Channel] = strawberry.field(
        default_factory=list, description="Where it can be used; empty: everywhere."
    )
    description: str = strawberry.field(default="", description="For members.")


@strawberry.input(description="Changes to a benefit; omitted fields keep their value.")
class UpdateBenefitInput:
    code: str = strawberry.field(description="The benefit to change.")
    name: str | None = strawberry.field(default=None, description="Display name.")
    config: JSON | None = strawberry.field(default=None, description="Kind-specific settings.")
    channels: list[Channel] | None = strawberry.field(default=None, description="Channels.")
    description: str | None = strawberry.field(default=None, description="For members.")
    active: bool | None = strawberry.field(default=None, description="Claimable or not.")


@strawberry.input(description="Grant a benefit to a tier (and the tiers above that inherit it).")
class SetTierEntitlementInput:
    tier_code: str = strawberry.field(description="The tier.")
    benefit_code: str = strawberry.field(description="The benefit.")
    period: QuotaPeriod = strawberry.field(
        default=QuotaPeriod.UNLIMITED, description="How often the quota renews."
    )
    quota: int | None = strawberry.field(
        default=None, description="Uses per period (1–100000); null when UNLIMITED."
    )
    excluded: bool = strawberry.field(
        default=False, description="Withdraw a benefit this tier would inherit."
    )


@strawberry.input(description="Use one of a member's benefit uses now (or hold it).")
class ClaimBenefitInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    benefit_code: str = strawberry.field(description="The benefit.")
    channel: Channel = strawberry.field(description="Where it is used.")
    idempotency_key: str = strawberry.field(
        description="1–64 characters; the same key answers with the same claim."
    )


@strawberry.input(description="Hold one use for a two-step checkout.")
class ReserveBenefitInput(ClaimBenefitInput):
    hold_seconds: int = strawberry.field(
        default=900, description="How long the hold lasts (1–86400 s) before it is released."
    )


@strawberry.input(description="Bind a reservation to an order.")
class ConfirmBenefitReservationInput:
    claim_id: strawberry.ID = strawberry.field(description="The reservation.")
    order_ref: str = strawberry.field(description="The order's reference, 1–64 characters.")


@strawberry.input(description="Give a reserved use back.")
class ReleaseBenefitReservationInput:
    claim_id: strawberry.ID = strawberry.field(description="The reservation.")
