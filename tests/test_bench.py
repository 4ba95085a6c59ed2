"""The benchmarks in bench/ run and produce sane numbers (tiny sizes, PostgreSQL only).

Timing goals are never asserted here: `python -m bench.run` reports them.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from bench import profile, run

pytestmark = pytest.mark.skipif(
    os.environ.get("LOYALTY_TEST_BACKEND", "postgres") == "sqlite",
    reason="the benchmarks measure PostgreSQL",
)

TINY = run.Sizes(
    execution_iterations=20,
    birthday_members=2_000,
    profile_members=12,
    profile_seconds=0.3,
    profile_clients=4,
)


@pytest.fixture(scope="module")
async def report() -> dict[str, Any]:
    return await run.main(TINY)


def test_execution_compares_strawberry_with_graphql_core(report: dict[str, Any]) -> None:
    result = report["execution"]
    assert result["strawberry_us"] > 0
    assert result["graphql_core_us"] > 0
    assert result["ratio"] > 0
    assert isinstance(result["goals"]["ratio"]["met"], bool)


def test_birthday_times_the_indexed_and_sequential_selections(report: dict[str, Any]) -> None:
    result = report["birthday"]
    assert result["members"] == TINY.birthday_members
    assert result["indexed_ms"] > 0
    assert result["seqscan_ms"] > 0
    assert isinstance(result["goals"]["indexed_ms"]["met"], bool)


def test_profile_loads_both_endpoints_and_counts_round_trips(report: dict[str, Any]) -> None:
    result = report["profile"]
    assert result["members"] == TINY.profile_members
    assert result["orders"] > 0
    assert result["json_checked"] > 0
    for phase in ("candidate", "ceiling", "half_load"):
        assert result[phase]["requests"] > 0, phase
        assert result[phase]["rps"] > 0, phase
        assert 0 < result[phase]["p50_ms"] <= result[phase]["p99_ms"], phase
    assert result["ratio"] == pytest.approx(result["candidate"]["rps"] / result["ceiling"]["rps"])
    assert result["sql_round_trips"] >= 1
    assert result["ceiling_sql_round_trips"] == 1
    assert set(result["goals"]) == {"ratio", "sql_round_trips", "p99_half_load_ms"}
    assert all(isinstance(goal["met"], bool) for goal in result["goals"].values())


async def test_ceiling_answers_the_same_json_as_the_app() -> None:
    async with profile.setup(run.PG_URL, members=12, redis_url=run.REDIS_URL) as bench:
        unknown = max(bench.member_ids) + 1
        answers = {}
        for member_id in [*bench.member_ids, unknown]:
            answers[member_id] = await bench.candidate(member_id)
            assert answers[member_id] == await bench.ceiling(member_id), member_id

    assert answers.pop(unknown) == {"data": {"member": None}}
    profiles = [answer["data"]["member"] for answer in answers.values()]
    # the comparison covered members with orders, lots, ledger pages and benefits
    assert any(p["orders"]["edges"][0]["node"]["lines"] for p in profiles if p["orders"]["edges"])
    assert any(p["points"]["lots"] for p in profiles)
    assert any(p["pointsHistory"]["edges"] for p in profiles)
    assert any(p["benefits"] for p in profiles)
