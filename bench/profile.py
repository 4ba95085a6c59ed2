"""Member profile: the GraphQL app against a hand-written asyncpg + orjson endpoint.

Candidate: the real app (``create_app`` with a real arq pool, an admin token) answering
:data:`PROFILE`, about a hundred fields of one member: scalars, identities, consents, stats,
tier and progress, points and lots, benefits, ten orders with their lines and ten ledger
entries.

Ceiling: a Starlette route in the same process reading the same data with one hand-written
SQL statement on its own asyncpg pool and answering the same JSON with orjson. Like the
candidate, it appends the personal-data read audit entry an admin's read requires (in the same
statement). Both are driven the same way: ``clients`` concurrent callers over random members
through ``httpx.ASGITransport``.

Goals (DESIGN §5): the candidate's req/s ≥ 30% of the ceiling's; ≤ 2 SQL round trips per
request; p99 ≤ 50 ms at half of the candidate's max load.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
from arq.connections import RedisSettings, create_pool
from pydantic import SecretStr
from tortoise.context import TortoiseContext

from bench.load import Load, count_round_trips, drive
from bench.profile_ceiling import ADMIN_SUBJECT, Ceiling, global_id
from loyalty import clock, db, hooks, seed
from loyalty.app import Resources, create_app
from loyalty.auth.principal import Principal, Role
from loyalty.auth.tokens import issue_access_token
from loyalty.jobs import QUEUE_NAME
from loyalty.members.models import Member
from loyalty.settings import Settings

ACTIVITY_MEMBERS = 1_000  # members given redemptions, adjustments and benefit uses
GOALS = {"ratio": 0.30, "sql_round_trips": 2, "p99_half_load_ms": 50.0}

PROFILE = """
query MemberProfile($id: ID!) {
  member(id: $id) {
    id displayName phone email birthDate birthMonth birthDay gender timezone region
    registeredChannel registeredAt status lifecycleStage tags
    identities { kind scope channel linkedAt value }
    consents { purpose granted channel policyVersion recordedAt }
    stats { totalSpend orderCount firstOrderAt lastOrderAt averageOrderValue }
    tier { ...TierFields }
    tierSince tierExpiresAt
    tierProgress {
      tier { ...TierFields } nextTier { ...TierFields }
      metric currentValue amountToNextTier retainMetric amountToRetain retainBy
    }
    points {
      balance pending debt expiringSoon
      lots { entryId amount remaining expiresAt earnedAt }
    }
    benefits {
      benefit { code name kind config channels description active }
      period quota used usesLeft renewsAt
    }
    orders(first: 10) {
      hasNextPage endCursor
      edges { cursor node {
        id channel externalId storeId occurredAt currency subtotal discountTotal
        pointsPayment paidAmount refundedAmount pointsEarned pointsPending guest
        lines { lineNo sku name category quantity unitPrice paid points refundedQuantity }
      } }
    }
    pointsHistory(first: 10) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        entryId kind amount debtChange balanceAfter createdAt expiresAt remaining reason
        source { type reference orderId orderChannel orderExternalId }
      } }
    }
  }
}

fragment TierFields on Tier {
  code name rank metric threshold window windowDays retentionDays multiplierPermille description
}
"""

# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileResult:
    members: int
    orders: int
    clients: int
    phase_seconds: float
    json_checked: int  # members whose candidate and ceiling answers were compared (all equal)
    candidate: Load
    ceiling: Load
    half_load: Load  # the candidate, paced at half of its max req/s
    sql_round_trips: float  # statements per candidate request, pool resets apart
    sql_round_trips_max: int  # statements of the costliest candidate request
    pool_resets: float  # connection resets per candidate request (asyncpg pool release)
    ceiling_sql_round_trips: float

    @property
    def ratio(self) -> float:
        return self.candidate.rps / self.ceiling.rps if self.ceiling.rps else 0.0

    def goals(self) -> dict[str, dict[str, Any]]:
        """Each DESIGN §5 goal, the measured value and whether it was met."""
        return {
            "ratio": {
                "goal": f">= {GOALS['ratio']}",
                "value": self.ratio,
                "met": self.ratio >= GOALS["ratio"],
            },
            "sql_round_trips": {
                "goal": f"<= {GOALS['sql_round_trips']}",
                "value": self.sql_round_trips,
                "met": self.sql_round_trips <= GOALS["sql_round_trips"],
            },
            "p99_half_load_ms": {
                "goal": f"<= {GOALS['p99_half_load_ms']}",
                "value": self.half_load.p99_ms,
                "met": self.half_load.p99_ms <= GOALS["p99_half_load_ms"],
            },
        }


# --- set-up ---------------------------------------------------------------------------------


@dataclass
class Setup:
    """A seeded database with both endpoints ready; ``candidate`` and ``ceiling`` answer the
    profile of one member id as decoded JSON."""

    members: int
    orders: int
    member_ids: list[int]
    candidate: Callable[[int], Awaitable[dict[str, Any]]]
    ceiling: Callable[[int], Awaitable[dict[str, Any]]]


def _pg(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def _seed_activity(member_ids: Sequence[int]) -> None:
    """Redemptions, admin adjustments and benefit uses through the real services, so ledger
    pages and quota counters hold more than order earnings."""
    from loyalty.auth.principal import SYSTEM
    from loyalty.benefits import service as benefits
    from loyalty.errors import DomainError
    from loyalty.points import service as points

    for member_id in member_ids:
        with contextlib.suppress(DomainError):
            if member_id % 4 == 0:
                await points.redeem(
                    member_id=member_id,
                    amount=100,
                    idempotency_key=f"bench-redeem-{member_id}",
                    order_channel="POS",
                    order_external_id=f"bench-{member_id}",
                )
            if member_id % 7 == 0:
                await points.adjust(
                    actor=SYSTEM,
                    member_id=member_id,
                    amount=50,
                    reason="goodwill",
                    idempotency_key=f"bench-adjust-{member_id}",
                )
            if member_id % 2 == 0:
                await benefits.claim(
                    member_id=member_id,
                    benefit_code="FREE_SHIP",
                    channel="APP",
                    idempotency_key=f"bench-claim-{member_id}",
                )


async def _seed_contacts(url: str) -> None:
    """Consent decisions for the seeded members (the seed links identities, not consents)."""
    conn = await asyncpg.connect(_pg(url))
    try:
        await conn.execute(
            """
            INSERT INTO consent (purpose, granted, channel, policy_version, recorded_at, member_id)
            SELECT purpose, (id + length(purpose)) % 4 <> 0, registered_channel, 'v1',
                   registered_at, id
            FROM member, unnest(ARRAY['PROFILING', 'MARKETING_SMS']) AS purpose;
            INSERT INTO consent (purpose, granted, channel, policy_version, recorded_at, member_id)
            SELECT 'MARKETING_SMS', false, 'APP', 'v2', registered_at + interval '30 days', id
            FROM member WHERE id % 5 = 0;
            ANALYZE;
            """
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def setup(
    admin_url: str, *, members: int, redis_url: str, seed_value: int = 2026
) -> AsyncIterator[Setup]:
    """A fresh database seeded with ``members`` demo members (orders through the real
    services), the app and the ceiling on it; the database is dropped on exit."""
    name = f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    settings = Settings(
        env="test",
        database_url=url,
        redis_url=redis_url,
        jwt_secret=SecretStr("bench-secret-" + "x" * 40),
        worker_in_process=False,
        log_level="WARNING",
        rate_limit_per_minute=10**9,
        anonymous_rate_limit_per_minute=10**9,
    )
    await db.migrate(url, create_db=True)
    try:
        hooks.load()
        clock.configure(settings.business_timezone)
        async with contextlib.AsyncExitStack() as stack:
            ctx = await stack.enter_async_context(TortoiseContext())
            # This task's context (no global fallback: a test session may hold that one);
            # requests through ASGITransport run in this task and see it.
            await ctx.init(config=db.config_from_settings(settings))
            stack.push_async_callback(ctx.close_connections)
            await seed.ensure_program()
            seeded = await seed.run(members=members, seed=seed_value)
            rows = await Member.all().order_by("id").values_list("id", flat=True)
            ids: list[int] = [int(i) for i in rows]  # type: ignore[call-overload]
            await _seed_activity(ids[:ACTIVITY_MEMBERS])
            await _seed_contacts(url)

            redis = await create_pool(
                RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE_NAME
            )
            stack.push_async_callback(redis.aclose)
            app = create_app(settings, resources=Resources(redis=redis))
            await stack.enter_async_context(app.router.lifespan_context(app))
            candidate_http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
            )
            token = issue_access_token(
                settings, Principal(Role.ADMIN, subject=ADMIN_SUBJECT, scopes=frozenset({"pii"}))
            )
            headers = {"Authorization": f"Bearer {token}"}

            # Same pool size as the app's (Tortoise's asyncpg default: 1 to 5 connections).
            pool = await asyncpg.create_pool(_pg(url), min_size=1, max_size=5)
            stack.push_async_callback(pool.close)
            ceiling = Ceiling(pool, settings.business_timezone)
            ceiling_http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=ceiling.app), base_url="http://bench"
                )
            )

            async def ask_candidate(member_id: int) -> dict[str, Any]:
                response = await candidate_http.post(
                    "/graphql",
                    json={
                        "query": PROFILE,
                        "variables": {"id": global_id("Member", member_id)},
                        "operationName": "MemberProfile",
                    },
                    headers=headers,
                )
                body: dict[str, Any] = orjson.loads(response.content)
                if response.status_code != 200 or "errors" in body:
                    raise RuntimeError(f"profile of member {member_id} failed: {body}")
                return body

            async def ask_ceiling(member_id: int) -> dict[str, Any]:
                response = await ceiling_http.get(f"/profile/{member_id}")
                response.raise_for_status()
                body: dict[str, Any] = orjson.loads(response.content)
                return body

            yield Setup(
                members=seeded.members,
                orders=seeded.orders,
                member_ids=ids,
                candidate=ask_candidate,
                ceiling=ask_ceiling,
            )
    finally:
        admin = await asyncpg.connect(_pg(admin_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def per_request_round_trips(
    ask: Callable[[int], Awaitable[Any]], member_ids: Sequence[int]
) -> tuple[float, float, int]:
    """Mean statements and pool resets per request, asked one at a time, and the statements
    of the costliest request."""
    statements = resets = most = 0
    for member_id in member_ids:
        with count_round_trips() as counts:
            await ask(member_id)
        statements += counts.statements
        resets += counts.resets
        most = max(most, counts.statements)
    n = max(1, len(member_ids))
    return statements / n, resets / n, most


def json_sample(member_ids: Sequence[int], size: int, rng: random.Random) -> list[int]:
    return rng.sample(list(member_ids), min(size, len(member_ids)))


async def compare(s: Setup, member_ids: Sequence[int]) -> int:
    """Raises unless the candidate and the ceiling answer the same JSON for each member."""
    for member_id in member_ids:
        candidate, ceiling = await s.candidate(member_id), await s.ceiling(member_id)
        if candidate != ceiling:
            raise AssertionError(
                f"member {member_id}: candidate and ceiling differ\n{candidate}\n{ceiling}"
            )
    return len(member_ids)


async def measure(s: Setup, *, seconds: float, clients: int) -> ProfileResult:
    rng = random.Random(11)
    checked = await compare(s, json_sample(s.member_ids, 20, rng))
    sample = json_sample(s.member_ids, 20, rng)
    statements, resets, most = await per_request_round_trips(s.candidate, sample)
    ceiling_statements, _, _ = await per_request_round_trips(s.ceiling, sample)
    candidate = await drive(s.candidate, s.member_ids, clients=clients, seconds=seconds)
    ceiling = await drive(s.ceiling, s.member_ids, clients=clients, seconds=seconds)
    half = await drive(
        s.candidate, s.member_ids, clients=clients, seconds=seconds, rate=candidate.rps / 2
    )
    return ProfileResult(
        members=s.members,
        orders=s.orders,
        clients=clients,
        phase_seconds=seconds,
        json_checked=checked,
        candidate=candidate,
        ceiling=ceiling,
        half_load=half,
        sql_round_trips=statements,
        sql_round_trips_max=most,
        pool_resets=resets,
        ceiling_sql_round_trips=ceiling_statements,
    )


async def run(
    admin_url: str, *, members: int, seconds: float, redis_url: str, clients: int = 16
) -> ProfileResult:
    async with setup(admin_url, members=members, redis_url=redis_url) as s:
        return await measure(s, seconds=seconds, clients=clients)
