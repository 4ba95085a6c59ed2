"""`loyalty dev` on an empty checkout with no Redis configured answers /readyz within 30 s."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.test_health import free_port


def test_dev_starts_and_is_ready_on_an_empty_directory(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_LOG_LEVEL"] = "WARNING"
    loyalty = Path(sys.executable).with_name("loyalty")
    process = subprocess.Popen(
        [str(loyalty), "dev", "--port", str(port), "--seed-members", "20"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert status == 200, f"not ready in 30 s (exit code {process.poll()})"
        body = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ __typename }"},
            timeout=5,
        ).json()
        assert body["data"] == {"__typename": "Query"}
        # Mini-program login works locally: the WeChat stand-in answers demo codes.
        login = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={
                "query": 'mutation { loginWithMiniProgram(input: {code: "demo:o-dev-1"}) '
                "{ __typename ... on LoginWithMiniProgramSuccess { created } } }"
            },
            timeout=5,
        ).json()
        assert login["data"]["loginWithMiniProgram"] == {
            "__typename": "LoginWithMiniProgramSuccess",
            "created": True,
        }
        assert (tmp_path / "var" / "loyalty.sqlite3").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output = process.communicate(timeout=15)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output = process.communicate()[0].decode(errors="replace")
    assert "GraphiQL" in output and "/graphql" in output
    assert "Admin token" in output and "Staff token" in output
    assert "Demo member   TWVtYmVyOjE=" in output  # the id docs/api.md uses
    assert "demo:<openid>" in output and "phone:<digits>" in output
    with sqlite3.connect(tmp_path / "var" / "loyalty.sqlite3") as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("member", "channel_identity", "customer_order", "points_entry", "tier")
        }
    assert counts["member"] == 22  # the demo member, 20 more and the one who logged in
    assert counts["channel_identity"] >= 20  # every demo member has a phone identity
    assert counts["customer_order"] > 0 and counts["points_entry"] > 0
    assert counts["tier"] == 4
