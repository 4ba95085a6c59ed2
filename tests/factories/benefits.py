"""Benefit factories: catalog entries and entitlements with overrides."""

from __future__ import annotations

import itertools
from typing import Any

from loyalty.benefits import service
from loyalty.benefits.models import Benefit, BenefitKind, QuotaPeriod, TierEntitlement

_seq = itertools.count(1)


async def create_benefit(**overrides: Any) -> Benefit:
    n = next(_seq)
    values: dict[str, Any] = {
        "code": f"BENEFIT_{n}",
        "name": f"权益{n}",
        "kind": BenefitKind.FREE_SHIPPING,
        "config": {},
        "channels": [],
    }
    values.update(overrides)
    return await service.create_benefit(**values)


async def entitle(
    tier_code: str,
    benefit: Benefit,
    *,
    period: QuotaPeriod = QuotaPeriod.MONTH,
    quota: int | None = 2,
    excluded: bool = False,
) -> TierEntitlement:
    if period is QuotaPeriod.UNLIMITED:
        quota = None
    return await service.set_entitlement(
        tier_code=tier_code,
        benefit_code=benefit.code,
        period=period,
        quota=quota,
        excluded=excluded,
    )
