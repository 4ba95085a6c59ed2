"""The merge audit entry names both members, who asked, and how much of each kind moved."""

from __future__ import annotations

from typing import Any

from loyalty.members.models import IdentityKind
from tests.factories.members import create_identity, create_member
from tests.factories.orders import record_order
from tests.factories.points import grant_points
from tests.members.test_merge import merge

AUDIT = """
query($targetId: String!) {
  auditEntries(targetId: $targetId, first: 10) {
    edges { node { action actor actorRole targetType targetId details } }
  }
}
"""


async def _entries(gql: Any, target_id: int) -> list[dict[str, Any]]:
    body = await gql(AUDIT, {"targetId": str(target_id)})
    return [edge["node"] for edge in body["data"]["auditEntries"]["edges"]]


async def test_merge_audit_names_both_members_the_counts_and_who_asked(gql: Any) -> None:
    # Given a member with two identities, two orders and two points lots (300 points)
    survivor = await create_member()
    merged = await create_member()
    await create_identity(merged, IdentityKind.POS_CARD, "8800999")
    await record_order(merged.id)
    await record_order(merged.id)
    await grant_points(merged.id, 100)
    await grant_points(merged.id, 200)
    await grant_points(survivor.id, 5)

    # When an admin merges it into another member
    result = await merge(gql, survivor.id, merged.id, key="merge-audit-1")
    assert result["__typename"] == "MergeMembersSuccess"

    # Then one entry, listed under either member id, tells the whole story
    under_survivor = [e for e in await _entries(gql, survivor.id) if e["action"] == "member.merge"]
    under_merged = [e for e in await _entries(gql, merged.id) if e["action"] == "member.merge"]
    assert under_survivor == under_merged
    assert len(under_survivor) == 1
    entry = under_survivor[0]
    assert (entry["actor"], entry["actorRole"]) == ("test-ADMIN", "ADMIN")
    assert (entry["targetType"], entry["targetId"]) == ("Member", str(survivor.id))
    details = entry["details"]
    assert details["survivor_id"] == survivor.id
    assert details["merged_id"] == merged.id
    assert details["requested_by"] == "test-ADMIN"
    assert details["idempotency_key"] == "merge-audit-1"
    moved = details["moved"]
    assert moved["channel_identity"] == 2  # the phone and the card
    assert moved["customer_order"] == 2
    assert moved["points_entry"] == 2
    assert moved["points_lots"] == 2
    assert moved["points"] == 300
    # Counts only: no phone number, card number or name in the entry
    text = repr(entry)
    assert merged.phone not in text
    assert "8800999" not in text
