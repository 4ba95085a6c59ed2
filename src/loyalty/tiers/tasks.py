"""Jobs of the tiers domain."""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog

from loyalty import fanout
from loyalty.events import service as events
from loyalty.tiers import review, service
from loyalty.tiers.models import ChangeReason

log = structlog.get_logger(__name__)

REVIEW = "tiers_review"


async def _select(period: date) -> list[int]:
    return await review.active_member_ids()


async def _prepare(chunk: fanout.Chunk) -> fanout.ChunkWork:
    return await review.ChunkReview.prepare(
        chunk.member_ids, business_date=chunk.period, run_id=chunk.run_id
    )


fanout.register(
    fanout.BatchJob(
        name=REVIEW,
        domain="tiers",
        action="review",
        description="Renew or move expired tiers, catch up upgrades, record downgrade notices "
        "(one review per member and business date)",
        select=_select,
        prepare=_prepare,
    )
)


async def tiers_review(ctx: dict[str, Any]) -> int:
    """Daily: start today's review run over every active member; returns its id."""
    return await fanout.launch_from_cron(ctx, REVIEW)


async def tiers_reevaluate(ctx: dict[str, Any]) -> int:
    """After a rule change: upgrade everyone who now qualifies higher (reason RULE_CHANGE).

    Answers the ladder changes requested before it started; one made while it runs stays
    pending and is sent again by the reconciler."""
    seen = await events.start_job_request(key=service.REEVALUATE_KEY)
    report = await review.reevaluate(reason=ChangeReason.RULE_CHANGE)
    await events.finish_job_request(key=service.REEVALUATE_KEY, seen=seen)
    log.info("tiers.reevaluate", upgraded=report.upgraded)
    return report.upgraded
