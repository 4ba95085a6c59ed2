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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import birthday, execution

PG_URL = os.environ.get("LOYALTY_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).with_name("results")


async def main(full: bool) -> dict[str, Any]:
    report: dict[str, Any] = {
        "full": full,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    exec_result = await execution.run(iterations=5_000 if full else 300)
    report["execution"] = {**asdict(exec_result), "ratio": exec_result.ratio, "goal": "<= 1.5"}
    bday = await birthday.run(PG_URL, members=1_000_000 if full else 20_000)
    report["birthday"] = {**asdict(bday), "ratio": bday.ratio, "goal": "indexed <= 5 ms at 1M"}
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="DESIGN sizes (minutes)")
    args = parser.parse_args()
    report = asyncio.run(main(args.full))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{'full' if args.full else 'quick'}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    cli()
