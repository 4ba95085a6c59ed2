"""Logs an operator can search: one event per line, every event tied to its request.

With ``LOYALTY_LOG_FORMAT=json`` each line is one JSON object carrying the request id, the
operation, the caller's kind and the error code; only unexpected failures carry a stack.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from arq.connections import ArqRedis

from loyalty.app import Resources, create_app
from loyalty.observability import configure_logging
from loyalty.settings import Settings

LADDER = "query Ladder { tiers { name } }"


@pytest.fixture(autouse=True)
def _restore_logging(settings: Settings, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING, logger="httpx")  # the test's own client, not the app
    yield
    configure_logging(settings)


@pytest_asyncio.fixture
async def http_for(orm: Any, redis: ArqRedis, settings: Settings) -> AsyncIterator[Any]:
    """``await http_for(env=…, log_format=…)``: a client of an app built with those settings."""
    clients: list[tuple[httpx.AsyncClient, Any]] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        application = create_app(
            settings.model_copy(update={"introspection": False, **overrides}),
            resources=Resources(redis=redis),
        )
        lifespan = application.router.lifespan_context(application)
        await lifespan.__aenter__()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://t"
        )
        clients.append((http, lifespan))
        return http

    yield make
    for http, lifespan in clients:
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


async def provoke_every_kind_of_error(
    http: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, httpx.Response]:
    """One request per kind, each with its own request id."""
    from loyalty.graphql import view
    from loyalty.tiers import service

    async def broken_ladder() -> Any:
        raise RuntimeError("ladder storage exploded")

    admin = {"Authorization": f"Bearer {admin_token}"}
    responses = {}
    with monkeypatch.context() as patch:
        patch.setattr(service, "ladder", broken_ladder)
        responses["req-crash"] = await http.post(
            "/graphql", json={"query": LADDER}, headers={**admin, "X-Request-ID": "req-crash"}
        )
    responses["req-unauth"] = await http.post(
        "/graphql", json={"query": LADDER}, headers={"X-Request-ID": "req-unauth"}
    )
    responses["req-introspect"] = await http.post(
        "/graphql",
        json={"query": "{ __schema { types { name } } }"},
        headers={**admin, "X-Request-ID": "req-introspect"},
    )
    responses["req-invalid"] = await http.post(
        "/graphql",
        json={"query": "{ tiers { nme } }"},
        headers={**admin, "X-Request-ID": "req-invalid"},
    )

    async def broken_authenticate(**_: Any) -> Any:
        raise RuntimeError("token store unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(view, "authenticate", broken_authenticate)
        responses["req-escape"] = await http.post(
            "/graphql", json={"query": LADDER}, headers={"X-Request-ID": "req-escape"}
        )
    return responses


def events_by_request(output: str) -> dict[str, list[dict[str, Any]]]:
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        event = json.loads(line)  # every line is one JSON object
        assert isinstance(event, dict), line
        assert event.get("request_id"), line
        by_request.setdefault(event["request_id"], []).append(event)
    return by_request


@pytest.mark.parametrize("env", ["dev", "prod"])
async def test_json_logs_are_one_object_per_line_with_the_request_id_and_a_stack_only_on_crashes(
    env: str,
    http_for: Any,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    http = await http_for(env=env, log_format="json")
    capsys.readouterr()

    responses = await provoke_every_kind_of_error(http, admin_token, monkeypatch)

    events = events_by_request(capsys.readouterr().out)
    assert set(events) == set(responses)

    [crash] = events["req-crash"]
    assert crash["event"] == "graphql.unexpected_error"
    assert crash["level"] == "error"
    assert crash["code"] == "INTERNAL"
    assert crash["exception_type"] == "RuntimeError"
    assert crash["operation"] == "Ladder"
    assert crash["principal"] == "ADMIN"
    assert "ladder storage exploded" in crash["exception"]
    assert "Traceback" in crash["exception"]
    assert responses["req-crash"].json()["errors"][0]["extensions"]["code"] == "INTERNAL"

    [unauth] = events["req-unauth"]
    assert unauth["event"] == "graphql.client_error"
    assert unauth["level"] == "info"
    assert unauth["code"] == "UNAUTHENTICATED"
    assert unauth["exception_type"] == "Unauthenticated"
    assert unauth["operation"] == "Ladder"
    assert unauth["principal"] == "ANONYMOUS"

    for request_id in ("req-introspect", "req-invalid"):
        for refused in events[request_id]:
            assert refused["event"] == "graphql.client_error"
            assert refused["level"] == "info"
            assert refused["code"] == "BAD_USER_INPUT"
            assert refused["principal"] == "ADMIN"

    [escaped] = events["req-escape"]
    assert escaped["event"] == "http.unhandled_error"
    assert escaped["level"] == "error"
    assert escaped["exception_type"] == "RuntimeError"
    assert "token store unreachable" in escaped["exception"]
    assert responses["req-escape"].status_code == 500
    assert responses["req-escape"].json()["errors"][0]["extensions"] == {
        "code": "INTERNAL",
        "requestId": "req-escape",
    }
    assert "token store unreachable" not in responses["req-escape"].text

    stacks = {rid for rid, evs in events.items() for e in evs if "exception" in e}
    assert stacks == {"req-crash", "req-escape"}


async def test_client_errors_in_dev_console_logs_are_single_info_lines_without_traceback(
    http_for: Any,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    http = await http_for(env="dev", log_format="console")
    capsys.readouterr()

    await http.post("/graphql", json={"query": LADDER}, headers={"X-Request-ID": "req-unauth"})
    await http.post(
        "/graphql",
        json={"query": "{ __schema { types { name } } }"},
        headers={"Authorization": f"Bearer {admin_token}", "X-Request-ID": "req-introspect"},
    )

    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3, lines  # one refusal, two refused introspection fields
    assert all("graphql.client_error" in line and "[info" in line for line in lines), lines
    assert "Traceback" not in "\n".join(lines)
