"""Per-request DataLoaders: one per access path, results in key order.

Built fresh in ``get_context`` so no cache crosses requests (or users). Domain packages add
their loaders as attributes here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from loyalty.members.models import ChannelIdentity, Consent, Member

K = TypeVar("K")
V = TypeVar("V")
A = TypeVar("A")
P = TypeVar("P")

# A keyset page of the rows one owner (a member) has: ``(owner id, first, after)``, where
# ``after`` is the decoded cursor (hashable) or None for the first page.
PageKey = tuple[int, int, A]


def by_key(
    fetch: Callable[[list[K]], Awaitable[Iterable[V]]], key: Callable[[V], K]
) -> Callable[[list[K]], Awaitable[list[V | None]]]:
    """Batch function returning one row (or None) per key, in key order."""

    async def load(keys: list[K]) -> list[V | None]:
        rows = {key(row): row for row in await fetch(keys)}
        return [rows.get(k) for k in keys]

    return load


def grouped(
    fetch: Callable[[list[K]], Awaitable[Iterable[V]]], key: Callable[[V], K]
) -> Callable[[list[K]], Awaitable[list[list[V]]]]:
    """Batch function returning the list of rows per key, in key order."""

    async def load(keys: list[K]) -> list[list[V]]:
        groups: dict[K, list[V]] = {k: [] for k in keys}
        for row in await fetch(keys):
            groups.setdefault(key(row), []).append(row)
        return [groups[k] for k in keys]

    return load


def paged(
    first_pages: Callable[[list[int], int], Awaitable[dict[int, P]]],
    page: Callable[[int, int, A], Awaitable[P]],
) -> Callable[[list[PageKey[A | None]]], Awaitable[list[P]]]:
    """Batch function for keyset pages keyed by ``(owner id, first, after)``, in key order.

    First pages cost one ``first_pages(owner_ids, first)`` call per distinct ``first`` (a list
    of members reads them all at once); a page after a cursor is read on its own
    (``page(owner_id, first, after)``), as only one owner is being paged through.
    """

    async def load(keys: list[PageKey[A | None]]) -> list[P]:
        pages: dict[PageKey[A | None], P] = {}
        firsts = dict.fromkeys(first for _owner, first, after in keys if after is None)
        for first in firsts:
            owners = [owner for owner, n, after in keys if after is None and n == first]
            found = await first_pages(list(dict.fromkeys(owners)), first)
            pages.update({(owner, first, None): found[owner] for owner in owners})
        for key in dict.fromkeys(keys):
            owner, first, after = key
            if after is not None:
                pages[key] = await page(owner, first, after)
        return [pages[key] for key in keys]

    return load


async def _members(ids: Sequence[int]) -> list[Member]:
    return await Member.filter(id__in=list(ids))


async def _identities(member_ids: Sequence[int]) -> list[ChannelIdentity]:
    return await ChannelIdentity.filter(member_id__in=list(member_ids)).order_by("id")


async def _consents(member_ids: Sequence[int]) -> list[Consent]:
    return await Consent.filter(member_id__in=list(member_ids)).order_by("id")


class Loaders:
    """The request's loaders. Attribute names say the access path."""

    def __init__(self) -> None:
        self.member_by_id: DataLoader[int, Member | None] = DataLoader(
            by_key(_members, lambda m: m.id)
        )
        self.identities_by_member_id: DataLoader[int, list[ChannelIdentity]] = DataLoader(
            grouped(_identities, lambda row: row.member_id)  # type: ignore[attr-defined]
        )
        # Every consent row (history) of each member, oldest first.
        self.consents_by_member_id: DataLoader[int, list[Consent]] = DataLoader(
            grouped(_consents, lambda row: row.member_id)  # type: ignore[attr-defined]
        )
        self.extra: dict[str, DataLoader[Any, Any]] = {}

    def get(self, name: str, factory: Callable[[], DataLoader[Any, Any]]) -> DataLoader[Any, Any]:
        """A loader registered by a domain package, created on first use in this request."""
        loader = self.extra.get(name)
        if loader is None:
            loader = self.extra[name] = factory()
        return loader
