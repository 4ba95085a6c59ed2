"""Benchmarks: each goal is a ratio against a ceiling measured in the same run.

python -m bench.run            # quick sizes (seconds), what `make test` exercises
python -m bench.run --full     # DESIGN §5 sizes (1M members); results in bench/results/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import birthday, execution, profile

PG_URL = os.environ.get("LOYALTY_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LOYALTY_TEST_REDIS", "redis://127.0.0.1:6379") + "/14"
RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Sizes:
    execution_iterations: int
    birthday_members: int
    profile_members: int
    profile_seconds: float  # per load phase
    profile_clients: int = 16


QUICK = Sizes(
    execution_iterations=300, birthday_members=20_000, profile_members=200, profile_seconds=3
)
FULL = Sizes(
    execution_iterations=5_000,
    birthday_members=1_000_000,
    profile_members=10_000,
    profile_seconds=20,
)


async def main(sizes: Sizes = QUICK, *, full: bool = False) -> dict[str, Any]:
    report: dict[str, Any] = {
        "full": full,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": asdict(sizes),
    }
    exec_result = await execution.run(iterations=sizes.execution_iterations)
    report["execution"] = {
        **asdict(exec_result),
        "ratio": exec_result.ratio,
        "goals": {
            "ratio": {"goal": "<= 1.5", "value": exec_result.ratio, "met": exec_result.ratio <= 1.5}
        },
    }
    bday = await birthday.run(PG_URL, members=sizes.birthday_members)
    report["birthday"] = {
        **asdict(bday),
        "ratio": bday.ratio,
        "goals": {
            # The goals are stated at 1M members: smaller runs only show the trend.
            "product_ms": {
                "goal": "<= 5 at 1M members",
                "value": bday.product_ms,
                "met": bday.product_ms <= 5,
            },
            "ratio": {
                "goal": "<= 1.5 at 1M members",
                "value": bday.ratio,
                "met": bday.ratio <= 1.5,
            },
        },
    }
    prof = await profile.run(
        PG_URL,
        members=sizes.profile_members,
        seconds=sizes.profile_seconds,
        clients=sizes.profile_clients,
        redis_url=REDIS_URL,
    )
    report["profile"] = {**asdict(prof), "ratio": prof.ratio, "goals": prof.goals()}
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="DESIGN sizes (minutes)")
    args = parser.parse_args()
    report = asyncio.run(main(FULL if args.full else QUICK, full=args.full))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{'full' if args.full else 'quick'}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    cli()
