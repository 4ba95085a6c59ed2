"""Member mutations: adapters from input to one service call and back."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ValidationError
from loyalty.graphql.members.inputs import RegisterMemberInput
from loyalty.graphql.members.types import Member
from loyalty.members import models, service

permissions.register({"Mutation.registerMember": permissions.STAFF_OR_SERVICE})


@strawberry.type(description="The member was registered, or an existing one was found.")
class RegisterMemberSuccess:
    member: Member = strawberry.field(description="The registered (or existing) member.")
    created: bool = strawberry.field(
        description="False when the phone or email already belonged to a member."
    )


RegisterMemberResult = Annotated[
    RegisterMemberSuccess | ValidationError,
    strawberry.union("RegisterMemberResult", description="Outcome of `registerMember`."),
]


@strawberry.type
class MemberMutation:
    @strawberry.mutation(
        description="Register a member. Idempotent on phone and email: an existing member with "
        "the same normalised phone or email is returned with `created: false`."
    )
    async def register_member(self, info: Info, input: RegisterMemberInput) -> RegisterMemberResult:
        try:
            outcome = await service.register(
                channel=models.Channel(input.channel.value),
                display_name=input.display_name,
                phone=input.phone,
                email=input.email,
                birth_date=input.birth_date,
                gender=models.Gender(input.gender.value)
                if input.gender
                else models.Gender.UNDISCLOSED,
                timezone=input.timezone,
                region=input.region,
                jobs=info.context.jobs,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        await info.context.jobs.flush()
        return RegisterMemberSuccess(
            member=Member.from_model(outcome.member), created=outcome.created
        )
