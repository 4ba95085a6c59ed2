"""Registers the members domain's own member-data handlers (and the event outbox's)."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from loyalty import clock
from loyalty.events.models import Event
from loyalty.hooks import register_member_data
from loyalty.members.models import ChannelIdentity, Consent, DuplicateHint, Member, MemberTag


class MemberRecords:
    """Identities, consents, tags, and members that were merged into this one."""

    models: tuple[str, ...] = (
        "loyalty.Member",
        "loyalty.ChannelIdentity",
        "loyalty.Consent",
        "loyalty.MemberTag",
    )

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        await (
            ChannelIdentity.filter(member_id=merged_id)
            .using_db(connection)
            .update(member_id=survivor_id)
        )
        # Earlier merges into the merged member now point at the survivor (one hop).
        await (
            Member.filter(merged_into_id=merged_id)
            .using_db(connection)
            .update(merged_into_id=survivor_id)
        )
        await self._merge_tags(survivor_id, merged_id, connection)
        await self._merge_consents(survivor_id, merged_id, connection)

    async def _merge_tags(self, survivor_id: int, merged_id: int, conn: BaseDBAsyncClient) -> None:
        survivor_tags = await (
            MemberTag.filter(member_id=survivor_id)
            .using_db(conn)
            .order_by("id")
            .values_list("tag", flat=True)
        )
        merged_tags = await (
            MemberTag.filter(member_id=merged_id)
            .using_db(conn)
            .order_by("id")
            .values_list("tag", flat=True)
        )
        new = [tag for tag in dict.fromkeys(merged_tags) if tag not in survivor_tags]
        await MemberTag.filter(member_id=merged_id).using_db(conn).delete()
        if new:
            await MemberTag.bulk_create(
                [MemberTag(member_id=survivor_id, tag=tag) for tag in new], using_db=conn
            )
        await (
            Member.filter(id=survivor_id).using_db(conn).update(tags=[*survivor_tags, *new])  # type: ignore[list-item]
        )

    async def _merge_consents(
        self, survivor_id: int, merged_id: int, conn: BaseDBAsyncClient
    ) -> None:
        """History moves to the survivor; where both decided a purpose, the stricter wins.

        A withdrawal is stricter than a grant, so the result is granted only when both
        members' latest decisions were grants. The result is appended as a new row.
        """
        survivor_rows = await Consent.filter(member_id=survivor_id).using_db(conn).order_by("id")
        merged_rows = await Consent.filter(member_id=merged_id).using_db(conn).order_by("id")
        survivor_latest = {row.purpose: row for row in survivor_rows}
        merged_latest = {row.purpose: row for row in merged_rows}
        await Consent.filter(member_id=merged_id).using_db(conn).update(member_id=survivor_id)
        for purpose, theirs in merged_latest.items():
            ours = survivor_latest.get(purpose)
            if ours is None:
                continue  # the moved history already ends with the merged member's decision
            granted = ours.granted and theirs.granted
            if granted:
                winner = ours if ours.id > theirs.id else theirs  # the more recent grant
            else:
                winner = ours if not ours.granted else theirs  # the withdrawal
            await Consent.create(
                member_id=survivor_id,
                purpose=purpose,
                granted=granted,
                channel=winner.channel,
                policy_version=winner.policy_version,
                recorded_at=clock.now(),
                using_db=conn,
            )

    async def export(self, *, member_id: int) -> dict[str, Any]:
        identities = await ChannelIdentity.filter(member_id=member_id).order_by("id")
        consents = await Consent.filter(member_id=member_id).order_by("id")
        tags = await MemberTag.filter(member_id=member_id).order_by("id")
        return {
            "identities": [
                {
                    "kind": row.kind.value,
                    "scope": row.scope or None,
                    "value": row.value,
                    "channel": row.channel.value,
                    "linkedAt": row.linked_at.isoformat(),
                }
                for row in identities
            ],
            "consents": [
                {
                    "purpose": row.purpose.value,
                    "granted": row.granted,
                    "channel": row.channel.value,
                    "policyVersion": row.policy_version,
                    "recordedAt": row.recorded_at.isoformat(),
                }
                for row in consents
            ],
            "tags": [row.tag for row in tags],
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        # Identities go, so no channel finds the member again; consent rows stay as proof of
        # what was agreed (they hold no personal values).
        await ChannelIdentity.filter(member_id=member_id).using_db(connection).delete()
        await MemberTag.filter(member_id=member_id).using_db(connection).delete()


class DuplicateHints:
    """Evidence that two members are one person: after a merge it names the survivor (a hint
    between the two merged members is spent); erasure drops every hint naming the member."""

    models: tuple[str, ...] = ("loyalty.DuplicateHint",)

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        named = Q(member_a_id=merged_id) | Q(member_b_id=merged_id)
        rows = await DuplicateHint.filter(named).using_db(connection)
        await DuplicateHint.filter(named).using_db(connection).delete()
        for row in rows:
            other = row.member_b_id if row.member_a_id == merged_id else row.member_a_id
            if other == survivor_id:
                continue
            a, b = sorted((survivor_id, other))
            exists = (
                await DuplicateHint.filter(member_a_id=a, member_b_id=b, reason=row.reason)
                .using_db(connection)
                .exists()
            )
            if not exists:
                await DuplicateHint.create(
                    member_a_id=a,
                    member_b_id=b,
                    reason=row.reason,
                    created_at=row.created_at,
                    using_db=connection,
                )

    async def export(self, *, member_id: int) -> dict[str, Any]:
        rows = await DuplicateHint.filter(
            Q(member_a_id=member_id) | Q(member_b_id=member_id)
        ).order_by("id")
        # Why the member may be someone else too; the other member's id is not theirs to see.
        return {
            "duplicateHints": [
                {"reason": row.reason, "createdAt": row.created_at.isoformat()} for row in rows
            ]
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        await (
            DuplicateHint.filter(Q(member_a_id=member_id) | Q(member_b_id=member_id))
            .using_db(connection)
            .delete()
        )


class MemberEvents:
    """The outbox: a member's events and deliveries follow the survivor and are kept on
    erasure."""

    models: tuple[str, ...] = ("loyalty.OutboxMessage",)

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        await Event.filter(member_id=merged_id).using_db(connection).update(member_id=survivor_id)

    async def export(self, *, member_id: int) -> dict[str, Any]:
        rows = await Event.filter(member_id=member_id).order_by("created_at")
        return {
            "events": [
                {
                    "id": str(row.id),
                    "kind": row.kind,
                    "payload": row.payload,
                    "createdAt": row.created_at.isoformat(),
                }
                for row in rows
            ]
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        """Kept: event payloads carry ids and codes, never personal values."""


register_member_data(MemberRecords())
register_member_data(DuplicateHints())
register_member_data(MemberEvents())
