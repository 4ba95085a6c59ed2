"""`loyalty worker` stops on SIGTERM and SIGINT: no new jobs, the running one finishes, exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from arq.connections import RedisSettings, create_pool

from loyalty.jobs import QUEUE_NAME
from tests.conftest import BACKEND, REDIS_URL

# The real `loyalty worker` command, with one slow job added to its function list.
WORKER_SCRIPT = """
import asyncio, sys
from pathlib import Path
from arq.worker import func
from loyalty.worker import settings as worker_settings

marks = Path(sys.argv[1])

async def slow_job(ctx, seconds):
    (marks / "started").touch()
    await asyncio.sleep(seconds)
    (marks / "finished").touch()

worker_settings.register(func(slow_job, name="slow_job", keep_result=0))
from loyalty.cli import app
app(["worker"], prog_name="loyalty")
"""


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


async def enqueue(redis_settings: RedisSettings, job_id: str, seconds: float) -> None:
    pool = await create_pool(redis_settings, default_queue_name=QUEUE_NAME)
    try:
        assert await pool.enqueue_job("slow_job", seconds, _job_id=job_id)
    finally:
        await pool.aclose()


async def job_gone(redis_settings: RedisSettings, job_id: str) -> bool:
    pool = await create_pool(redis_settings, default_queue_name=QUEUE_NAME)
    try:
        queued = await pool.zscore(QUEUE_NAME, job_id)
        return queued is None
    finally:
        await pool.aclose()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_worker_lets_the_running_job_finish_then_exits_zero(
    signum: int, tmp_path: Path, migrated_database_url: str
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(LOYALTY_DATABASE_URL=migrated_database_url, LOYALTY_DATA_DIR=str(tmp_path / "var"))
    if BACKEND == "postgres":
        index = int(os.environ.get("LOYALTY_TEST_REDIS_DB") or 4)
        env["LOYALTY_REDIS_URL"] = f"{REDIS_URL}/{index}"
    job_id = f"slow:{uuid.uuid4().hex}"
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if BACKEND == "postgres":
            redis_settings = RedisSettings.from_dsn(env["LOYALTY_REDIS_URL"])
        else:  # the worker starts its own embedded Redis and publishes its socket
            published = tmp_path / "var" / "redis.json"
            wait_for(published.exists, 30, "the embedded Redis is published")
            recorded = json.loads(published.read_text())
            redis_settings = RedisSettings(unix_socket_path=recorded["unix_socket_path"])
        asyncio.run(enqueue(redis_settings, job_id, 3))
        wait_for((tmp_path / "started").exists, 30, "the worker starts the job")

        process.send_signal(signum)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""

    assert exit_code == 0, output
    assert (tmp_path / "finished").exists(), "the running job was cut short"
    assert "slow_job" in output and "●" in output  # arq logged it as completed
    if BACKEND == "postgres":
        assert asyncio.run(job_gone(redis_settings, job_id))
    else:
        assert not running(recorded["pid"]), "the embedded redis-server was left"


def test_idle_worker_stops_at_once_on_sigterm(tmp_path: Path, migrated_database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(LOYALTY_DATABASE_URL=migrated_database_url, LOYALTY_DATA_DIR=str(tmp_path / "var"))
    if BACKEND == "postgres":
        index = int(os.environ.get("LOYALTY_TEST_REDIS_DB") or 4)
        env["LOYALTY_REDIS_URL"] = f"{REDIS_URL}/{index}"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("loyalty")), "worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        seen = bytearray()

        def started_log() -> bool:
            seen.extend(process.stdout.read() or b"")  # type: ignore[union-attr]
            return b"worker.started" in seen

        wait_for(started_log, 30, "the worker starts")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
        assert exit_code == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
