"""Jobs of the tiers domain."""

from __future__ import annotations

from typing import Any

import structlog

from loyalty.events import service as events
from loyalty.tiers import review, service
from loyalty.tiers.models import ChangeReason

log = structlog.get_logger(__name__)


async def tiers_review(ctx: dict[str, Any]) -> dict[str, Any]:
    """Daily: renew or downgrade expired tiers, catch up upgrades, record downgrade notices."""
    report = await review.review()
    return dict(report.__dict__)


async def tiers_reevaluate(ctx: dict[str, Any]) -> int:
    """After a rule change: upgrade everyone who now qualifies higher (reason RULE_CHANGE).

    Answers the ladder changes requested before it started; one made while it runs stays
    pending and is sent again by the reconciler."""
    seen = await events.start_job_request(key=service.REEVALUATE_KEY)
    report = await review.reevaluate(reason=ChangeReason.RULE_CHANGE)
    await events.finish_job_request(key=service.REEVALUATE_KEY, seen=seen)
    log.info("tiers.reevaluate", upgraded=report.upgraded)
    return report.upgraded
