"""Member queries."""

from __future__ import annotations

import strawberry
from strawberry import relay

from loyalty.auth.principal import Role
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.members.types import Member
from loyalty.graphql.pagination import check_first, decode_cursor, encode_cursor
from loyalty.members import service
from loyalty.members.errors import MemberNotFound

permissions.register(
    {
        "Query.member": permissions.AUTHENTICATED,
        "Query.members": permissions.STAFF,
        "Query.me": {Role.MEMBER},
    }
)


@strawberry.type(description="A page of members.")
class MemberConnection(relay.Connection[Member]):
    """Members in ascending id order with keyset cursors."""


@strawberry.type
class MemberQuery:
    @strawberry.field(
        description="A member by id. A merged member resolves to its survivor; "
        "null when it does not exist or is not visible to you."
    )
    async def member(self, info: Info, id: relay.GlobalID) -> Member | None:
        if id.type_name != "Member":
            return None
        try:
            member_id = int(id.node_id)
            row = await service.get(member_id=member_id)
        except (ValueError, MemberNotFound):
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
        description="Members in ascending id order (keyset pagination). `first` is 1–100."
    )
    async def members(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> MemberConnection:
        check_first(first, info.context.settings.max_page_size)
        after_id = int(decode_cursor(after)[0]) if after else None
        rows, has_next = await service.page(first=first, after_id=after_id)
        edges = [
            relay.Edge(cursor=encode_cursor(row.id), node=Member.from_model(row)) for row in rows
        ]
        return MemberConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
