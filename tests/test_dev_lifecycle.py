"""`loyalty dev` leaves nothing running when it stops, and a crashed run's server is replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.test_health import free_port

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


def start_dev(cwd: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_LOG_LEVEL"] = "WARNING"
    process = subprocess.Popen(
        [LOYALTY, "dev", "--port", str(port), "--seed-members", "5"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(process, signal.SIGKILL)
    raise AssertionError(f"loyalty dev not ready in 60 s (exit code {process.poll()})")


def stop(process: subprocess.Popen[bytes], signum: int, timeout: float = 30) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def embedded_redis(cwd: Path) -> tuple[int, Path]:
    recorded = json.loads((cwd / "var" / "redis.json").read_text())
    return recorded["pid"], Path(recorded["unix_socket_path"])


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_dev_by_signal_stops_its_embedded_redis(signum: int, tmp_path: Path) -> None:
    process, _port = start_dev(tmp_path)
    redis_pid, socket_path = embedded_redis(tmp_path)
    assert running(redis_pid) and socket_path.exists()

    assert stop(process, signum) == 0

    assert not running(redis_pid), "the embedded redis-server outlived loyalty dev"
    assert not socket_path.exists()
    assert not (tmp_path / "var" / "redis.json").exists()
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(str(tmp_path) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []


def test_a_server_left_by_a_killed_run_is_replaced_by_the_next(tmp_path: Path) -> None:
    crashed, _port = start_dev(tmp_path)
    stale_pid, _socket = embedded_redis(tmp_path)
    os.killpg(crashed.pid, signal.SIGKILL)  # no handler, no atexit: the server stays
    crashed.wait()
    assert running(stale_pid)

    process, port = start_dev(tmp_path)
    try:
        assert not running(stale_pid), "the stale redis-server was left running"
        new_pid, _socket = embedded_redis(tmp_path)
        assert new_pid != stale_pid and running(new_pid)
        body = httpx.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"}, timeout=5
        ).json()
        assert body["data"] == {"__typename": "Query"}
    finally:
        assert stop(process, signal.SIGTERM) == 0
    assert not running(new_pid)
