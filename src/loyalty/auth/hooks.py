"""Login sessions take part in member merge, export and erasure."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.auth.models import RefreshToken
from loyalty.hooks import register_member_data


class MemberSessions:
    """Refresh tokens of a member. Merge and erasure end the member's sessions (the app
    logs in again); export lists sessions without any secret."""

    models: tuple[str, ...] = ("loyalty.RefreshToken",)

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        await (
            RefreshToken.filter(member_id=merged_id, revoked_at=None)
            .using_db(connection)
            .update(revoked_at=clock.now())
        )

    async def export(self, *, member_id: int) -> dict[str, Any]:
        rows = await RefreshToken.filter(member_id=member_id).order_by("id")
        return {
            "sessions": [
                {
                    "issued_at": row.issued_at.isoformat(),
                    "expires_at": row.expires_at.isoformat(),
                    "used_at": row.used_at.isoformat() if row.used_at else None,
                    "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                }
                for row in rows
            ]
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        await RefreshToken.filter(member_id=member_id).using_db(connection).delete()


register_member_data(MemberSessions())
