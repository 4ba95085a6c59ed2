"""The birthday selection: who celebrates on a given day, through the indexed columns."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from loyalty.members import service
from loyalty.members.models import MemberStatus
from tests.factories.members import create_member


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2025, 3, 14), {"march"}),
        (date(2025, 2, 28), {"feb28", "leap"}),  # Feb 29 births celebrate on Feb 28
        (date(2024, 2, 28), {"feb28"}),
        (date(2024, 2, 29), {"leap"}),
        (date(2025, 12, 31), set()),
    ],
)
async def test_members_celebrating_on_a_day_are_selected(
    orm: Any, on: date, expected: set[str]
) -> None:
    members = {
        "march": await create_member(birth_date=date(1990, 3, 14)),
        "feb28": await create_member(birth_date=date(1985, 2, 28)),
        "leap": await create_member(birth_date=date(1992, 2, 29)),
        "none": await create_member(),
    }
    await create_member(birth_date=date(1990, 3, 14), status=MemberStatus.MERGED)
    await create_member(birth_date=date(1990, 3, 14), status=MemberStatus.ERASED)
    ids = {m.id: label for label, m in members.items()}

    selected = await service.birthday_member_ids(on=on)

    assert {ids[i] for i in selected} == expected
    assert selected == sorted(selected)


async def test_the_birthday_selection_pages_by_id(orm: Any) -> None:
    born = [(await create_member(birth_date=date(1990, 5, 1))).id for _ in range(5)]

    first = await service.birthday_member_ids(on=date(2025, 5, 1), limit=2)
    rest = await service.birthday_member_ids(on=date(2025, 5, 1), after_id=first[-1], limit=10)

    assert first + rest == born
    assert len(first) == 2
