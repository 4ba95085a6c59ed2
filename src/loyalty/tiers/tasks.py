"""Jobs of the tiers domain."""

from __future__ import annotations

from typing import Any

import structlog

from loyalty.tiers import review
from loyalty.tiers.models import ChangeReason

log = structlog.get_logger(__name__)


async def tiers_review(ctx: dict[str, Any]) -> dict[str, Any]:
    """Daily: renew or downgrade expired tiers, catch up upgrades, record downgrade notices."""
    report = await review.review()
    return dict(report.__dict__)


async def tiers_reevaluate(ctx: dict[str, Any]) -> int:
    """After a rule change: upgrade everyone who now qualifies higher (reason RULE_CHANGE)."""
    report = await review.reevaluate(reason=ChangeReason.RULE_CHANGE)
    log.info("tiers.reevaluate", upgraded=report.upgraded)
    return report.upgraded
