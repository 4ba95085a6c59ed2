"""Member queries."""

from __future__ import annotations

import strawberry
from strawberry import relay

from loyalty.auth.principal import Role
from loyalty.graphql import ids, permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import BadUserInput
from loyalty.graphql.members.inputs import MemberFilter
from loyalty.graphql.members.types import IdentityKind, Member
from loyalty.graphql.pagination import check_first, decode_cursor, encode_cursor
from loyalty.members import merge, models, service
from loyalty.members.errors import MemberNotFound

permissions.register(
    {
        "Query.member": permissions.AUTHENTICATED,
        "Query.members": permissions.STAFF,
        "Query.me": {Role.MEMBER},
        "Query.memberByIdentity": permissions.STAFF_OR_SERVICE,
        "Query.duplicateCandidates": permissions.STAFF,
    }
)


@strawberry.type(description="A page of members.")
class MemberConnection(relay.Connection[Member]):
    """Members in ascending id order with keyset cursors."""

    spec: strawberry.Private[service.MemberFilter]

    @strawberry.field(description="How many members match the filter (counted only if asked).")
    async def total_count(self) -> int:
        return await service.count(spec=self.spec)


@strawberry.type(description="Two members that may be the same person.")
class DuplicateCandidate:
    reason: str = strawberry.field(
        description="NAME_AND_BIRTHDAY, PHONE (a card or account number equals the other's "
        "phone), EMAIL (an account equals the other's email) or WECHAT_PHONE (one member "
        "proved through WeChat the phone number the other holds)."
    )
    member_a_id: strawberry.Private[int]
    member_b_id: strawberry.Private[int]

    @strawberry.field(description="The member with the lower id.")
    async def member_a(self, info: Info) -> Member | None:
        row = await info.context.loaders.member_by_id.load(self.member_a_id)
        return Member.from_model(row) if row is not None else None

    @strawberry.field(description="The member with the higher id.")
    async def member_b(self, info: Info) -> Member | None:
        row = await info.context.loaders.member_by_id.load(self.member_b_id)
        return Member.from_model(row) if row is not None else None


@strawberry.type(description="A page of duplicate candidates.")
class DuplicateCandidateConnection(relay.Connection[DuplicateCandidate]):
    """Pairs ordered by (member A id, member B id, reason) with keyset cursors."""


def _spec(filter: MemberFilter | None) -> service.MemberFilter:
    if filter is None:
        return service.MemberFilter()
    return service.MemberFilter(
        text=filter.text,
        lifecycle_stage=models.LifecycleStage(filter.lifecycle_stage.value)
        if filter.lifecycle_stage
        else None,
        registered_channel=models.Channel(filter.registered_channel.value)
        if filter.registered_channel
        else None,
        birth_month=filter.birth_month,
        tag=filter.tag,
        tier=filter.tier,
        status=models.MemberStatus(filter.status.value) if filter.status else None,
    )


def _page_info(edges: list[relay.Edge], has_next: bool, after: str | None) -> relay.PageInfo:
    return relay.PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )


@strawberry.type
class MemberQuery:
    @strawberry.field(
        description="A member by id. A merged member resolves to its survivor; "
        "null when it does not exist or is not visible to you."
    )
    async def member(self, info: Info, id: relay.GlobalID) -> Member | None:
        member_id = ids.pk(id, "Member")
        if member_id is None:
            return None
        try:
            row = await service.get(member_id=member_id)
        except MemberNotFound:
            return None
        if not permissions.ensure_member_access(info.context.principal, row.id):
            return None
        return Member.from_model(row)

    @strawberry.field(description="The member the calling member token belongs to.")
    async def me(self, info: Info) -> Member | None:
        member_id = info.context.principal.member_id
        if member_id is None:
            return None
        try:
            return Member.from_model(await service.get(member_id=member_id))
        except MemberNotFound:
            return None

    @strawberry.field(
        description="Members in ascending id order (keyset pagination), filtered. `first` is 1–100."
    )
    async def members(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: MemberFilter | None = None,
    ) -> MemberConnection:
        check_first(first, info.context.settings.max_page_size)
        after_id = int(decode_cursor(after)[0]) if after else None
        spec = _spec(filter)
        rows, has_next = await service.page(first=first, after_id=after_id, spec=spec)
        edges = [
            relay.Edge(cursor=encode_cursor(row.id), node=Member.from_model(row)) for row in rows
        ]
        return MemberConnection(
            edges=edges, page_info=_page_info(edges, has_next, after), spec=spec
        )

    @strawberry.field(
        description="The member a channel knows by this identity (POS card, phone, openid…); "
        "a merged member resolves to its survivor; null if none."
    )
    async def member_by_identity(
        self,
        info: Info,
        kind: IdentityKind,
        value: str,
        scope: str | None = None,
    ) -> Member | None:
        row = await service.find_by_identity(
            kind=models.IdentityKind(kind.value), value=value, scope=scope
        )
        if row is None or not permissions.ensure_member_access(info.context.principal, row.id):
            return None
        return Member.from_model(row)

    @strawberry.field(
        description="Pairs of active members that may be one person, for staff to review "
        "and merge. `first` is 1–100."
    )
    async def duplicate_candidates(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> DuplicateCandidateConnection:
        check_first(first, info.context.settings.max_page_size)
        key = None
        if after:
            a_id, b_id, reason = decode_cursor(after, 3)
            try:
                key = (int(a_id), int(b_id), str(reason))
            except (TypeError, ValueError) as exc:
                raise BadUserInput("Invalid cursor.", argument="after") from exc
        rows, has_next = await merge.duplicate_candidates(first=first, after=key)
        edges = [
            relay.Edge(
                cursor=encode_cursor(row.member_a_id, row.member_b_id, row.reason),
                node=DuplicateCandidate(
                    reason=row.reason, member_a_id=row.member_a_id, member_b_id=row.member_b_id
                ),
            )
            for row in rows
        ]
        return DuplicateCandidateConnection(
            edges=edges, page_info=_page_info(edges, has_next, after)
        )
