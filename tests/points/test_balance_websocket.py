"""pointsBalanceChanged end to end: the app under uvicorn, a graphql-transport-ws client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from strawberry.relay import to_base64
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from loyalty.auth.principal import Role
from loyalty.points import notify
from loyalty.points.service import queries
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.points import grant_points

SUBSCRIBE = "subscription($id: ID) { pointsBalanceChanged(memberId: $id) { memberId balance } }"
PROTOCOL = "graphql-transport-ws"


def gid(member_id: int) -> str:
    return to_base64("Member", member_id)


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        # Inside the test process: leave the runner's signal handlers alone.
        return contextlib.nullcontext()


@pytest.fixture
async def live(app: Any) -> AsyncIterator[str]:
    """The app served on a free 127.0.0.1 port on the session's loop; yields ``host:port``.

    The database context and Redis pool are the session's (the ``app`` fixture's lifespan).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws_ping_interval=None)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    host, port = sock.getsockname()
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(message).decode())


async def receive(ws: ClientConnection, within: float = 5) -> dict[str, Any]:
    """The next protocol message (waiting ``within`` seconds), answering pings on the way."""
    while True:
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), within))
        if message["type"] == "ping":
            await send(ws, {"type": "pong"})
            continue
        return message


@contextlib.asynccontextmanager
async def socket_for(
    live: str, *, payload: dict[str, Any] | None = None, query: str = ""
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection, initialised and acknowledged."""
    async with connect(f"ws://{live}/graphql{query}", subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == PROTOCOL
        await send(ws, {"type": "connection_init", "payload": payload or {}})
        assert (await receive(ws))["type"] == "connection_ack"
        yield ws


async def listening(redis: Any, member_id: int) -> int:
    """Subscribers on the member's balance channel, once there is one (or after ~2 s)."""
    count = 0
    for _ in range(100):
        count = (await redis.pubsub_numsub(notify.channel(member_id)))[0][1]
        if count:
            break
        await asyncio.sleep(0.02)
    return int(count)


async def listening_after_close(redis: Any, member_id: int) -> int:
    """Subscribers left on the member's channel once the socket is gone (or after ~2 s)."""
    count = 1
    for _ in range(100):
        count = (await redis.pubsub_numsub(notify.channel(member_id)))[0][1]
        if not count:
            break
        await asyncio.sleep(0.02)
    return int(count)


def bearer(settings: Any, member_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(settings, Role.MEMBER, member_id=member_id)}"}


async def test_member_watches_own_balance_change_on_earn_and_redeem(
    live: str, redis: Any, settings: Any
) -> None:
    member = await create_member()
    await grant_points(member.id, 10)

    async with socket_for(live, payload=bearer(settings, member.id)) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        assert await listening(redis, member.id) == 1

        # Earned through the service; the caller publishes after commit, as jobs do.
        await grant_points(member.id, 30)
        await notify.balance_changed(redis, [member.id])
        earned = await receive(ws)

        # Redeemed through the API: the mutation publishes after its commit.
        async with httpx.AsyncClient(base_url=f"http://{live}") as http:
            response = await http.post(
                "/graphql",
                json={
                    "query": "mutation($input: RedeemPointsInput!) { redeemPoints(input: $input)"
                    " { __typename ... on RedeemPointsSuccess { balance } } }",
                    "variables": {"input": {"amount": 15, "idempotencyKey": "ws-1"}},
                },
                headers=bearer(settings, member.id),
            )
        assert response.json()["data"]["redeemPoints"]["balance"] == 25
        redeemed = await receive(ws)

        await send(ws, {"id": "1", "type": "complete"})

    assert earned == {
        "id": "1",
        "type": "next",
        "payload": {"data": {"pointsBalanceChanged": {"memberId": gid(member.id), "balance": 40}}},
    }
    assert redeemed["payload"]["data"]["pointsBalanceChanged"]["balance"] == 25
    assert (await queries.get_account(member_id=member.id)).balance == 25
    assert await listening_after_close(redis, member.id) == 0


async def test_member_may_not_watch_another_members_balance(
    live: str, redis: Any, settings: Any
) -> None:
    owner = await create_member()
    other = await create_member()

    async with socket_for(live, payload=bearer(settings, other.id)) as ws:
        variables = {"id": gid(owner.id)}
        await send(
            ws,
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIBE, "variables": variables},
            },
        )
        refused = await receive(ws)
        ended = await receive(ws)
        await grant_points(owner.id, 30)
        await notify.balance_changed(redis, [owner.id])
        with pytest.raises(TimeoutError):
            await receive(ws, within=0.5)

    assert refused == {
        "id": "1",
        "type": "next",
        "payload": {
            "data": None,
            "errors": [{"message": "Not allowed.", "extensions": {"code": "FORBIDDEN"}}],
        },
    }
    assert ended == {"id": "1", "type": "complete"}
    assert (await redis.pubsub_numsub(notify.channel(owner.id)))[0][1] == 0


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(lambda token: ({"Authorization": f"Bearer {token}"}, ""), id="init-bearer"),
        pytest.param(lambda token: ({"Authorization": token}, ""), id="init-bare-token"),
        pytest.param(lambda token: ({}, f"?token={token}"), id="query-parameter"),
    ],
)
async def test_a_member_token_authenticates_the_socket(
    live: str, redis: Any, settings: Any, credentials: Any
) -> None:
    member = await create_member()
    payload, query = credentials(token_for(settings, Role.MEMBER, member_id=member.id))

    async with socket_for(live, payload=payload, query=query) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        assert await listening(redis, member.id) == 1
        await grant_points(member.id, 7)
        await notify.balance_changed(redis, [member.id])
        message = await receive(ws)

    assert message["payload"]["data"]["pointsBalanceChanged"]["balance"] == 7


async def test_an_invalid_token_in_connection_init_closes_the_socket(live: str) -> None:
    async with connect(f"ws://{live}/graphql", subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await send(ws, {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}})
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_without_credentials_the_subscription_is_refused(live: str) -> None:
    async with socket_for(live) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        refused = await receive(ws)

    assert refused["type"] == "error"
    assert [e["extensions"]["code"] for e in refused["payload"]] == ["UNAUTHENTICATED"]
