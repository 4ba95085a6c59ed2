"""The member profile ceiling: one hand-written SQL statement on asyncpg, JSON by orjson.

It answers exactly what the app answers to :data:`bench.profile.PROFILE` for an admin (the
tier, progress and benefit rules of the tiers and benefits domains, written again by hand),
and appends the personal-data read audit entry such a read requires, in the same statement.
Members are never merged in the bench data, so merges are not followed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loyalty import clock
from loyalty.benefits import periods
from loyalty.benefits.models import QuotaPeriod
from loyalty.members.models import ConsentPurpose

PAGE = 10  # orders and ledger entries on the profile
EXPIRING_DAYS = 30  # default of `points { expiringSoon }`
ADMIN_SUBJECT = "bench-admin"


def _metric_since(start: str) -> str:
    """The tier ``t``'s metric for member ``m`` summed from ``start`` (see tiers.metrics)."""
    return f"""CASE t.metric
      WHEN 'SPEND' THEN (SELECT COALESCE(SUM(o.paid_amount - o.refunded_amount), 0)
                         FROM customer_order o
                         WHERE o.member_id = m.id AND o.occurred_at >= {start})
      WHEN 'ORDERS' THEN (SELECT COUNT(*) FILTER (WHERE o.refunded_amount < o.paid_amount
                                                   OR o.paid_amount = 0)
                          FROM customer_order o
                          WHERE o.member_id = m.id AND o.occurred_at >= {start})
      ELSE (SELECT COALESCE(SUM(p.amount), 0) FROM points_entry p
            WHERE p.member_id = m.id AND p.created_at >= {start}
              AND p.kind IN ('EARN', 'REVERSE'))
    END::bigint"""


def _window_start(at: str) -> str:
    """First instant of tier ``t``'s window when evaluated at ``at``."""
    return f"""(CASE WHEN t."window" = 'CALENDAR_YEAR'
      THEN date_trunc('year', {at} AT TIME ZONE $3) AT TIME ZONE $3
      ELSE {at} - make_interval(secs => COALESCE(t.window_days, 0) * 86400) END)"""


CEILING_SQL = f"""
WITH m AS (SELECT * FROM member WHERE id = $1),
audit AS (
  INSERT INTO audit_entry (at, actor, actor_role, action, target_type, target_id, details)
  SELECT $2, $5, 'ADMIN', 'member.pii_read', 'Member', m.id::text,
         '{{"operation": "MemberProfile"}}'::jsonb
  FROM m
)
SELECT m.id, m.display_name, m.phone, m.email, m.birth_date, m.birth_month, m.birth_day,
  m.gender, m.timezone, m.region, m.registered_channel, m.registered_at, m.status,
  m.lifecycle_stage, m.tags, m.total_spend, m.order_count, m.first_order_at, m.last_order_at,
  mt.tier_id, mt.since, mt.expires_at, pa.balance, pa.pending, pa.debt,
  ARRAY(SELECT ROW(i.kind, i.scope, i.channel, i.linked_at, i.value)
        FROM channel_identity i WHERE i.member_id = m.id ORDER BY i.id) AS identities,
  ARRAY(SELECT ROW(c.purpose, c.granted, c.channel, c.policy_version, c.recorded_at)
        FROM (SELECT DISTINCT ON (purpose) * FROM consent WHERE member_id = m.id
              ORDER BY purpose, id DESC) c) AS consents,
  ARRAY(SELECT ROW(t.id, t.code, t.name, t.rank, t.metric, t.threshold, t."window",
                   t.window_days, t.retention_days, t.multiplier_permille, t.description,
                   {_metric_since(_window_start("$2"))},
                   CASE WHEN mt.expires_at IS NOT NULL
                        THEN {_metric_since(_window_start("mt.expires_at"))} END)
        FROM tier t ORDER BY t.rank) AS ladder,
  ARRAY(SELECT ROW(e.tier_id, e.benefit_id, e.period, e.quota, e.excluded)
        FROM tier_entitlement e ORDER BY e.id) AS entitlements,
  ARRAY(SELECT ROW(b.id, b.code, b.name, b.kind, b.config, b.channels, b.description)
        FROM benefit b WHERE b.active) AS benefits,
  ARRAY(SELECT ROW(bc.benefit_id, bc.period_key, bc.used) FROM benefit_counter bc
        WHERE bc.member_id = m.id AND bc.period_key = ANY($4::text[])) AS counters,
  ARRAY(SELECT ROW(l.id, l.amount, l.remaining, l.expires_at, l.created_at)
        FROM points_entry l WHERE l.member_id = m.id AND l.remaining > 0
        ORDER BY l.expires_at NULLS LAST, l.id) AS lots,
  ARRAY(SELECT ROW(o.id, o.channel, o.external_id, o.store_id, o.occurred_at, o.currency,
                   o.subtotal, o.discount_total, o.points_payment, o.paid_amount,
                   o.refunded_amount, o.points_earned, o.points_pending)
        FROM customer_order o WHERE o.member_id = m.id
        ORDER BY o.occurred_at DESC, o.id DESC LIMIT {PAGE + 1}) AS orders,
  ARRAY(SELECT ROW(ol.order_id, ol.line_no, ol.sku, ol.name, ol.category, ol.quantity,
                   ol.unit_price, ol.paid, ol.points, ol.refunded_quantity)
        FROM customer_order_line ol
        WHERE ol.order_id IN (SELECT o.id FROM customer_order o WHERE o.member_id = m.id
                              ORDER BY o.occurred_at DESC, o.id DESC LIMIT {PAGE})
        ORDER BY ol.order_id, ol.line_no) AS lines,
  ARRAY(SELECT ROW(p.id, p.kind, p.amount, p.debt_delta, p.balance_after, p.created_at,
                   p.expires_at, p.remaining, p.reason, p.source_type, p.source_ref,
                   p.order_id, p.order_channel, p.order_external_id)
        FROM points_entry p WHERE p.member_id = m.id
        ORDER BY p.id DESC LIMIT {PAGE + 1}) AS history
FROM m
LEFT JOIN member_tier mt ON mt.member_id = m.id
LEFT JOIN points_account pa ON pa.member_id = m.id
"""

_CONSENT_ORDER = {purpose.value: i for i, purpose in enumerate(ConsentPurpose)}


def _cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(b"k1:" + orjson.dumps(list(values))).decode().rstrip("=")


def global_id(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _tier(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "code": row[1],
        "name": row[2],
        "rank": row[3],
        "metric": row[4],
        "threshold": row[5],
        "window": row[6],
        "windowDays": row[7],
        "retentionDays": row[8],
        "multiplierPermille": row[9],
        "description": row[10],
    }


def profile_json(row: asyncpg.Record | None, now: datetime) -> dict[str, Any]:
    """The GraphQL answer to :data:`PROFILE`, built from one :data:`CEILING_SQL` row."""
    if row is None:
        return {"data": {"member": None}}
    member: dict[str, Any] = {
        "id": global_id("Member", row["id"]),
        "displayName": row["display_name"],
        "phone": row["phone"],
        "email": row["email"],
        "birthDate": row["birth_date"].isoformat() if row["birth_date"] else None,
        "birthMonth": row["birth_month"],
        "birthDay": row["birth_day"],
        "gender": row["gender"],
        "timezone": row["timezone"],
        "region": row["region"],
        "registeredChannel": row["registered_channel"],
        "registeredAt": row["registered_at"],
        "status": row["status"],
        "lifecycleStage": row["lifecycle_stage"],
        "tags": orjson.loads(row["tags"]),
        "identities": [
            {"kind": k, "scope": s or None, "channel": c, "linkedAt": at, "value": v}
            for k, s, c, at, v in row["identities"]
        ],
        "consents": [
            {"purpose": p, "granted": g, "channel": c, "policyVersion": v, "recordedAt": at}
            for p, g, c, v, at in sorted(row["consents"], key=lambda c: _CONSENT_ORDER[c[0]])
        ],
        "stats": {
            "totalSpend": row["total_spend"],
            "orderCount": row["order_count"],
            "firstOrderAt": row["first_order_at"],
            "lastOrderAt": row["last_order_at"],
            "averageOrderValue": row["total_spend"] // row["order_count"]
            if row["order_count"]
            else 0,
        },
    }
    member.update(_tiers_and_benefits(row, now))
    horizon = now + timedelta(days=EXPIRING_DAYS)
    lots = row["lots"]
    member["points"] = {
        "balance": row["balance"] or 0,
        "pending": row["pending"] or 0,
        "debt": row["debt"] or 0,
        "expiringSoon": sum(r or 0 for _, _, r, exp, _ in lots if exp and exp <= horizon),
        "lots": [
            {"entryId": i, "amount": a, "remaining": r or 0, "expiresAt": exp, "earnedAt": at}
            for i, a, r, exp, at in lots
        ],
    }
    lines: dict[int, list[dict[str, Any]]] = {}
    for line in row["lines"]:
        lines.setdefault(line[0], []).append(
            {
                "lineNo": line[1],
                "sku": line[2],
                "name": line[3],
                "category": line[4],
                "quantity": line[5],
                "unitPrice": line[6],
                "paid": line[7],
                "points": line[8],
                "refundedQuantity": line[9],
            }
        )
    orders = [
        {
            "cursor": _cursor(o[4].isoformat(), o[0]),
            "node": {
                "id": global_id("Order", o[0]),
                "channel": o[1],
                "externalId": o[2],
                "storeId": o[3],
                "occurredAt": o[4],
                "currency": o[5],
                "subtotal": o[6],
                "discountTotal": o[7],
                "pointsPayment": o[8],
                "paidAmount": o[9],
                "refundedAmount": o[10],
                "pointsEarned": o[11],
                "pointsPending": o[12],
                "guest": False,
                "lines": lines.get(o[0], []),
            },
        }
        for o in row["orders"][:PAGE]
    ]
    member["orders"] = {
        "hasNextPage": len(row["orders"]) > PAGE,
        "endCursor": orders[-1]["cursor"] if orders else None,
        "edges": orders,
    }
    entries = [
        {
            "cursor": _cursor(e[0]),
            "node": {
                "entryId": e[0],
                "kind": e[1],
                "amount": e[2],
                "debtChange": e[3],
                "balanceAfter": e[4],
                "createdAt": e[5],
                "expiresAt": e[6],
                "remaining": e[7],
                "reason": e[8],
                "source": {
                    "type": e[9],
                    "reference": e[10],
                    "orderId": e[11],
                    "orderChannel": e[12],
                    "orderExternalId": e[13],
                },
            },
        }
        for e in row["history"][:PAGE]
    ]
    member["pointsHistory"] = {
        "pageInfo": {
            "hasNextPage": len(row["history"]) > PAGE,
            "endCursor": entries[-1]["cursor"] if entries else None,
        },
        "edges": entries,
    }
    return {"data": {"member": member}}


def _tiers_and_benefits(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    """Tier, progress and benefits, with the rules of the tiers and benefits domains."""
    ladder = row["ladder"]
    empty: dict[str, Any] = {"tier": None, "tierProgress": None, "benefits": []}
    if not ladder:
        return {**empty, "tierSince": row["since"], "tierExpiresAt": row["expires_at"]}
    ordinal = next((i for i, t in enumerate(ladder) if t[0] == row["tier_id"]), 0)
    current = ladder[ordinal]
    shown = ladder[ordinal + 1] if ordinal + 1 < len(ladder) else current
    value = shown[11]
    retained = ordinal > 0 and row["expires_at"] is not None
    progress = {
        "tier": _tier(current),
        "nextTier": _tier(shown) if shown is not current else None,
        "metric": shown[4],
        "currentValue": value,
        "amountToNextTier": max(0, shown[5] - value) if shown is not current else None,
        "retainMetric": current[4] if retained else None,
        "amountToRetain": max(0, current[5] - current[12]) if retained else None,
        "retainBy": row["expires_at"] if retained else None,
    }
    # Entitlements are inherited up the ladder; an excluded row (or inactive benefit) drops one.
    benefits = {b[0]: b for b in row["benefits"]}
    by_tier: dict[int, list[Any]] = {}
    for e in row["entitlements"]:
        by_tier.setdefault(e[0], []).append(e)
    running: dict[int, tuple[Any, str, int | None]] = {}
    for tier in ladder[: ordinal + 1]:
        for _tier_id, benefit_id, period, quota, excluded in by_tier.get(tier[0], []):
            if excluded or benefit_id not in benefits:
                running.pop(benefit_id, None)
            else:
                running[benefit_id] = (benefits[benefit_id], period, quota)
    used_by = {(b, key): used for b, key, used in row["counters"]}
    member_benefits = []
    for benefit, period, quota in sorted(running.values(), key=lambda e: e[0][1]):
        key = periods.period_key(QuotaPeriod(period), now)
        used = used_by.get((benefit[0], key), 0) if key else 0
        renews = periods.renews_at(QuotaPeriod(period), now)
        member_benefits.append(
            {
                "benefit": {
                    "code": benefit[1],
                    "name": benefit[2],
                    "kind": benefit[3],
                    "config": orjson.loads(benefit[4]),
                    "channels": orjson.loads(benefit[5]),
                    "description": benefit[6],
                    "active": True,
                },
                "period": period,
                "quota": quota,
                "used": used,
                "usesLeft": None if quota is None else max(0, quota - used),
                "renewsAt": renews,
            }
        )
    return {
        "tier": _tier(current),
        "tierSince": row["since"],
        "tierExpiresAt": row["expires_at"],
        "tierProgress": progress,
        "benefits": member_benefits,
    }


class Ceiling:
    """The hand-written endpoint: ``GET /profile/{id}`` on its own asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, zone: str) -> None:
        self.pool = pool
        self.zone = zone
        self.app = Starlette(routes=[Route("/profile/{member_id:int}", self.profile)])

    async def profile(self, request: Request) -> Response:
        now = clock.now()
        keys = [k for p in QuotaPeriod if (k := periods.period_key(p, now)) is not None]
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                CEILING_SQL, request.path_params["member_id"], now, self.zone, keys, ADMIN_SUBJECT
            )
        return Response(orjson.dumps(profile_json(row, now)), media_type="application/json")
