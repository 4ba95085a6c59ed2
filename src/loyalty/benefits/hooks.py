"""Benefits' part in member merge, export and erasure."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from loyalty import hooks
from loyalty.benefits.models import BenefitClaim, BenefitCounter


class BenefitMemberData:
    """Merge: claims move to the survivor with their keys (a key belongs to the member the
    claim was asked for, so none can clash), and counters add up per benefit and period.
    Erase: claims keep no personal data, so nothing changes."""

    models: tuple[str, ...] = ("loyalty.BenefitCounter", "loyalty.BenefitClaim")

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        await (
            BenefitClaim.filter(member_id=merged_id)
            .using_db(connection)
            .update(member_id=survivor_id)
        )
        for counter in await BenefitCounter.filter(member_id=merged_id).using_db(connection):
            mine = BenefitCounter.filter(
                member_id=survivor_id,
                benefit_id=counter.benefit_id,  # type: ignore[attr-defined]
                period_key=counter.period_key,
            ).using_db(connection)
            if await mine.update(used=F("used") + counter.used):
                await BenefitCounter.filter(id=counter.id).using_db(connection).delete()
            else:
                await (
                    BenefitCounter.filter(id=counter.id)
                    .using_db(connection)
                    .update(member_id=survivor_id)
                )

    async def export(self, *, member_id: int) -> dict[str, Any]:
        claims = (
            await BenefitClaim.filter(member_id=member_id)
            .order_by("created_at", "id")
            .prefetch_related("benefit")
        )
        return {
            "benefit_claims": [
                {
                    "benefit": c.benefit.code,
                    "channel": c.channel,
                    "status": str(c.status),
                    "order_ref": c.order_ref,
                    "created_at": c.created_at.isoformat(),
                }
                for c in claims
            ]
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        return None


hooks.register_member_data(BenefitMemberData())
