"""Inputs of the members domain."""

from __future__ import annotations

from datetime import date

import strawberry

from loyalty.graphql.members.types import Channel, Gender


@strawberry.input(description="A new member. Phone and email are normalised before storing.")
class RegisterMemberInput:
    channel: Channel = strawberry.field(description="Channel the member registers through.")
    display_name: str = strawberry.field(description="1–64 characters.")
    phone: str | None = strawberry.field(
        default=None, description='Mobile number; "138 1234 5678", "+86…" and "0086…" accepted.'
    )
    email: str | None = strawberry.field(default=None, description="Email address.")
    birth_date: date | None = strawberry.field(default=None, description="Not in the future.")
    gender: Gender | None = strawberry.field(default=None, description="Self-declared gender.")
    timezone: str | None = strawberry.field(default=None, description="IANA time zone.")
    region: str | None = strawberry.field(default=None, description="Home region, ≤ 64 chars.")
