"""In-process extension points between domains, so imports stay one-way.

A domain that owns member data registers a :class:`MemberDataHandler` (merge, export, erase
follow it); a domain that reacts to orders registers an order hook. Registration happens at
import time of the domain's ``hooks`` module, listed in :data:`HOOK_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tortoise.backends.base.client import BaseDBAsyncClient

# Modules that register handlers; imported by ``load()`` (app, worker, CLI and tests call it).
HOOK_MODULES: list[str] = [
    "loyalty.members.hooks",
    "loyalty.auth.hooks",
    "loyalty.points.hooks",
    "loyalty.orders.hooks",
    "loyalty.tiers.hooks",
    "loyalty.benefits.hooks",
]


class MemberDataHandler(Protocol):
    """How one table that references a member takes part in merge, export and erasure.

    A handler may also define ``async def lock(*, survivor_id, merged_id, connection)``: a
    merge calls every handler's ``lock`` (in :data:`HOOK_MODULES` order, which follows the
    ledger's lock order) before any handler's ``merge``.
    """

    #: Tortoise model class names (``"loyalty.Order"``) this handler covers.
    models: tuple[str, ...]

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        """Move (or combine) the merged member's rows to the survivor, inside the transaction."""

    async def export(self, *, member_id: int) -> dict[str, Any]:
        """The member's rows as JSON-ready data (``{section: [...]}``)."""

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        """Anonymise personal data, keeping amounts so the books stay right."""


MEMBER_DATA_HANDLERS: list[MemberDataHandler] = []


def register_member_data(handler: MemberDataHandler) -> MemberDataHandler:
    MEMBER_DATA_HANDLERS.append(handler)
    return handler


@dataclass(frozen=True)
class OrderFacts:
    """What an order hook learns about a recorded order (amounts in minor units)."""

    member_id: int
    order_id: int
    channel: str
    paid_amount: int
    occurred_at: Any
    is_refund: bool = False


OrderHook = Callable[[OrderFacts, BaseDBAsyncClient], Awaitable[dict[str, Any] | None]]

# Called inside the order's transaction, in registration order (tiers upgrade here). A hook
# may return ``{"tier_change": {"from": <tier code>, "to": <tier code>, ...}}``.
ORDER_HOOKS: list[OrderHook] = []

# Returns the member's points multiplier in per-mille (1000 = ×1, 1500 = ×1.5); the
# earning engine multiplies all providers' factors. Tiers register one.
MultiplierProvider = Callable[[int, BaseDBAsyncClient | None], Awaitable[int]]
MULTIPLIER_PROVIDERS: list[MultiplierProvider] = []

# Called inside the transaction that links an identity (kind, scope, value) to a member:
# orders attach guest orders placed with that identity here.
IdentityHook = Callable[[int, str, str | None, str, BaseDBAsyncClient], Awaitable[None]]
IDENTITY_LINKED_HOOKS: list[IdentityHook] = []

_loaded = False


def load() -> None:
    """Import every hook module once."""
    global _loaded
    if _loaded:
        return
    for module in HOOK_MODULES:
        importlib.import_module(module)
    _loaded = True
