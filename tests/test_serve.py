"""`loyalty serve` as a real process: what it logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loyalty import redis_embedded
from tests.conftest import BACKEND, REDIS_URL
from tests.test_health import free_port

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if line]


def redis_url_for(target: redis_embedded.RedisTarget) -> str:
    if BACKEND == "sqlite":
        assert target.unix_socket_path
        return f"unix://{target.unix_socket_path}"
    index = int(os.environ.get("LOYALTY_TEST_REDIS_DB") or 4)
    return f"{REDIS_URL}/{index}"


@pytest.fixture
def serve(
    tmp_path: Path, migrated_database_url: str, redis_target: redis_embedded.RedisTarget
) -> Iterator[Any]:
    """``serve(workers=…, **LOYALTY_variables)`` starts `loyalty serve` and waits until every
    worker process has started its app; all processes are stopped afterwards."""
    started: list[tuple[subprocess.Popen[bytes], list[psutil.Process]]] = []

    def start(workers: int = 1, **variables: str) -> Served:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
        env.update(
            LOYALTY_DATABASE_URL=migrated_database_url,
            LOYALTY_REDIS_URL=redis_url_for(redis_target),
            LOYALTY_DATA_DIR=str(tmp_path / "var"),
            LOYALTY_WORKER_IN_PROCESS="false",
            **variables,
        )
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [LOYALTY, "serve", "--workers", str(workers), "--port", str(port)],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        children: list[psutil.Process] = []
        started.append((process, children))
        served = Served(process=process, port=port, log=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            children[:] = psutil.Process(process.pid).children(recursive=True)
            ready = sum("Application startup complete" in line for line in served.lines())
            if ready >= workers:
                return served
            time.sleep(0.2)
        raise AssertionError(f"serve not ready (exit {process.poll()}):\n{log.read_text()}")

    yield start
    for process, children in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for child in children:
            try:
                child.wait(timeout=10)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                child.kill()
                raise AssertionError(f"worker {child.pid} outlived loyalty serve") from None


def stop(served: Served) -> None:
    """SIGTERM, as an orchestrator stops it; uvicorn shuts down, then re-raises the signal."""
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_serve_in_json_mode_writes_only_json_lines_its_own_and_uvicorns(serve: Any) -> None:
    served = serve(LOYALTY_LOG_FORMAT="json")
    refused = httpx.post(
        f"{served.url}/graphql",
        json={"query": "query Ladder { tiers { name } }"},
        headers={"X-Request-ID": "req-unauth"},
    )
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:
        raw.sendall(b"NOT HTTP\r\n\r\n")  # uvicorn itself logs this one
        assert raw.recv(1024).startswith(b"HTTP/1.1 400")

    stop(served)

    events = [json.loads(line) for line in served.lines()]  # every line is one JSON object
    assert all(isinstance(event, dict) for event in events)
    uvicorn = [e["event"] for e in events if e.get("logger") == "uvicorn.error"]
    assert any(message.startswith("Started server process") for message in uvicorn)
    assert "Invalid HTTP request received." in uvicorn
    [unauth] = [e for e in events if e.get("request_id") == "req-unauth"]
    assert unauth["code"] == "UNAUTHENTICATED" and unauth["level"] == "info"
    assert "exception" not in unauth


# --- /metrics across worker processes ----------------------------------------------------

METRICS_TOKEN = "metrics-" + "m" * 24


def healthz_count(text: str) -> float:
    """``loyalty_http_requests_total`` of ``/healthz`` in one scrape, summed over statuses."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "loyalty_http_requests_total" and sample.labels["route"] == "/healthz"
    )


def scrape(served: Served, token: str | None = METRICS_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{served.url}/metrics", headers=headers, timeout=10)


def worker_pids(served: Served) -> set[int]:
    """uvicorn's worker processes (not multiprocessing's resource tracker)."""
    return {
        child.pid
        for child in psutil.Process(served.process.pid).children(recursive=True)
        if "resource_tracker" not in " ".join(child.cmdline())
    }


def counter_files(directory: Path) -> set[int]:
    """Pids that wrote counters into the multiprocess directory."""
    return {int(path.stem.split("_")[-1]) for path in directory.glob("counter_*.db")}


def leave_stale_counter(directory: Path) -> None:
    """A counter file as a previous run (another pid) would have left it: 1000 /healthz."""
    script = (
        "from prometheus_client import Counter\n"
        "Counter('loyalty_http_requests_total', 'x', ['route', 'status'])"
        ".labels(route='/healthz', status='200').inc(1000)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert counter_files(directory)


def test_one_scrape_counts_the_requests_of_every_worker(serve: Any, tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    leave_stale_counter(directory)  # cleaned when serve starts

    served = serve(
        workers=2, LOYALTY_METRICS_TOKEN=METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR=str(directory)
    )
    workers = worker_pids(served)
    assert len(workers) == 2
    sent = 0
    # New connections until each worker process has answered some (the kernel picks one).
    deadline = time.monotonic() + 60
    while not workers <= counter_files(directory) and time.monotonic() < deadline:
        for _ in range(10):
            assert httpx.get(f"{served.url}/healthz", timeout=10).status_code == 200
            sent += 1
    assert workers <= counter_files(directory), "one worker answered every request"

    for _ in range(8):  # each scrape lands on either worker
        response = scrape(served)
        assert response.status_code == 200
        assert healthz_count(response.text) == sent


def test_metrics_need_the_bearer_token_when_one_is_set(serve: Any) -> None:
    served = serve(workers=2, LOYALTY_METRICS_TOKEN=METRICS_TOKEN)
    directory = Path(psutil.Process(min(worker_pids(served))).environ()["PROMETHEUS_MULTIPROC_DIR"])
    assert directory.is_dir()

    for token in (None, "wrong-" + METRICS_TOKEN, METRICS_TOKEN + "x"):
        refused = scrape(served, token)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "loyalty_" not in refused.text
    basic = httpx.get(f"{served.url}/metrics", auth=("metrics", METRICS_TOKEN), timeout=10)
    assert basic.status_code == 401
    allowed = scrape(served)
    assert allowed.status_code == 200
    assert "loyalty_http_requests_total" in allowed.text

    stop(served)
    assert not directory.exists(), "serve's own metrics directory outlived it"


def test_metrics_are_open_without_a_token(serve: Any) -> None:
    served = serve()
    assert scrape(served, None).status_code == 200
