"""Catalog validation per kind, entitlements with inheritance and overrides."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.benefits import service
from loyalty.benefits.models import Benefit, BenefitKind, QuotaPeriod
from loyalty.errors import ValidationError
from loyalty.tiers.models import Tier
from tests.factories.benefits import create_benefit, entitle

pytestmark = pytest.mark.usefixtures("ladder")


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        (BenefitKind.PERCENT_DISCOUNT, {"percent": 10, "maxDiscount": 5_000}),
        (BenefitKind.AMOUNT_OFF, {"amount": 2_000, "minSpend": 10_000}),
        (BenefitKind.FREE_SHIPPING, {}),
        (BenefitKind.BIRTHDAY_GIFT, {"giftSku": "CAKE-01"}),
        (BenefitKind.POINTS_MULTIPLIER, {"multiplierPermille": 1500}),
        (BenefitKind.CUSTOM, {"anything": ["goes"]}),
    ],
)
async def test_valid_config_per_kind_is_stored(kind: BenefitKind, config: dict[str, Any]) -> None:
    benefit = await create_benefit(kind=kind, config=config)
    assert benefit.config == config


@pytest.mark.parametrize(
    ("kind", "config", "field", "code"),
    [
        (BenefitKind.PERCENT_DISCOUNT, {}, "input.config.percent", "REQUIRED"),
        (BenefitKind.PERCENT_DISCOUNT, {"percent": 120}, "input.config.percent", "INVALID"),
        (BenefitKind.PERCENT_DISCOUNT, {"percent": 10, "amount": 5}, "input.config.amount",
         "UNKNOWN_KEY"),
        (BenefitKind.AMOUNT_OFF, {"amount": -1}, "input.config.amount", "INVALID"),
        (BenefitKind.AMOUNT_OFF, {"amount": 1.5}, "input.config.amount", "INVALID"),
        (BenefitKind.BIRTHDAY_GIFT, {}, "input.config", "REQUIRED"),
        (BenefitKind.POINTS_MULTIPLIER, {"multiplierPermille": 900},
         "input.config.multiplierPermille", "INVALID"),
        (BenefitKind.FREE_SHIPPING, ["not", "an", "object"], "input.config", "INVALID"),
    ],
)  # fmt: skip
async def test_bad_config_for_the_kind_is_refused(
    kind: BenefitKind, config: Any, field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await create_benefit(kind=kind, config=config)
    assert (field, code) in {(e.field, e.code) for e in caught.value.errors}
    assert await Benefit.all().count() == 0


async def test_unknown_channel_and_duplicate_code_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        await create_benefit(channels=["POS", "FAX"])
    assert caught.value.errors[0].field == "input.channels[1]"
    assert await Benefit.all().count() == 0
    await create_benefit(code="SAME")
    with pytest.raises(ValidationError) as duplicate:
        await create_benefit(code="SAME")
    assert duplicate.value.errors[0].code == "DUPLICATE"


@pytest.mark.parametrize(
    ("period", "quota"),
    [(QuotaPeriod.MONTH, None), (QuotaPeriod.MONTH, 0), (QuotaPeriod.UNLIMITED, 3)],
)
async def test_entitlement_quota_must_fit_the_period(
    period: QuotaPeriod, quota: int | None
) -> None:
    benefit = await create_benefit()
    with pytest.raises(ValidationError):
        await service.set_entitlement(
            tier_code="SILVER", benefit_code=benefit.code, period=period, quota=quota
        )


async def test_higher_tiers_inherit_unless_they_override(ladder: dict[str, Tier]) -> None:
    ship, lounge, discount = await create_benefit(), await create_benefit(), await create_benefit()
    await entitle("SILVER", ship, period=QuotaPeriod.MONTH, quota=2)
    await entitle("GOLD", ship, period=QuotaPeriod.MONTH, quota=5)
    await entitle("GOLD", lounge, period=QuotaPeriod.YEAR, quota=1)
    await entitle("SILVER", discount, period=QuotaPeriod.UNLIMITED)
    await entitle("DIAMOND", discount, excluded=True)

    def summary(entitlements: list[service.Entitlement]) -> dict[str, tuple[Any, ...]]:
        return {e.benefit.code: (e.period.value, e.quota, e.granted_by) for e in entitlements}

    assert summary(await service.entitlements_of(tier=ladder["BASIC"])) == {}
    assert summary(await service.entitlements_of(tier=ladder["SILVER"])) == {
        ship.code: ("MONTH", 2, "SILVER"),
        discount.code: ("UNLIMITED", None, "SILVER"),
    }
    assert summary(await service.entitlements_of(tier=ladder["GOLD"])) == {
        ship.code: ("MONTH", 5, "GOLD"),
        lounge.code: ("YEAR", 1, "GOLD"),
        discount.code: ("UNLIMITED", None, "SILVER"),
    }
    assert summary(await service.entitlements_of(tier=ladder["DIAMOND"])) == {
        ship.code: ("MONTH", 5, "GOLD"),
        lounge.code: ("YEAR", 1, "GOLD"),
    }


async def test_demo_seed_is_idempotent() -> None:
    first = await service.seed_default_benefits()
    second = await service.seed_default_benefits()
    assert [b.code for b in first] == [b.code for b in second]
    assert len(first) == 6
