"""Recording orders from channel systems: idempotent, with points, stats and tier hooks in the
same transaction. Refunds live in :mod:`loyalty.orders.refunds`, guest attachment in
:mod:`loyalty.orders.guests`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Case, F, Q, When
from tortoise.transactions import in_transaction

from loyalty import clock, db, hooks
from loyalty.errors import FieldErrors, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members import service as members
from loyalty.members.errors import MemberNotActive
from loyalty.members.models import Channel, IdentityKind, Member, MemberStatus
from loyalty.orders.errors import OrderConflict
from loyalty.orders.models import MemberCategoryStat, Order, OrderLine
from loyalty.points import rules, sql
from loyalty.points.service import ledger, program
from loyalty.points.service.earn import grant_order_points

log = structlog.get_logger(__name__)

INT64_MAX = 2**63 - 1
MAX_LINES = 500
MAX_QUANTITY = 1_000_000
FUTURE_SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class LineIn:
    """An order line as a channel sends it; ``unit_price`` in minor units."""

    sku: str
    quantity: int
    unit_price: int
    name: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class IdentityRef:
    kind: IdentityKind
    value: str
    scope: str | None = None


@dataclass(frozen=True)
class OrderResult:
    """What ``recordOrder`` answers; a replay answers the first result with ``replayed``."""

    order: Order
    points_earned: int
    points_pending: int
    balance: int | None
    tier_change: dict[str, Any] | None
    replayed: bool = False

    @property
    def guest(self) -> bool:
        return self.order.member_id is None  # type: ignore[attr-defined]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_lines(errors: FieldErrors, lines: Sequence[LineIn], prefix: str = "lines") -> int:
    """Check every line; returns the subtotal (0 when invalid)."""
    if not lines:
        errors.add(prefix, "at least one line", "REQUIRED")
    if len(lines) > MAX_LINES:
        errors.add(prefix, f"at most {MAX_LINES} lines", "TOO_LONG")
    subtotal = 0
    for i, line in enumerate(lines):
        at = f"{prefix}[{i}]"
        if not 0 < len(line.sku.strip()) <= 64:
            errors.add(f"{at}.sku", "1–64 characters", "INVALID")
        if line.name is not None and len(line.name) > 200:
            errors.add(f"{at}.name", "at most 200 characters", "TOO_LONG")
        if line.category is not None and not 0 < len(line.category.strip()) <= 64:
            errors.add(f"{at}.category", "1–64 characters", "INVALID")
        if not _is_int(line.quantity) or not 0 < line.quantity <= MAX_QUANTITY:
            errors.add(f"{at}.quantity", f"a whole number 1–{MAX_QUANTITY}", "OUT_OF_RANGE")
            continue
        if not _is_int(line.unit_price) or not 0 <= line.unit_price <= INT64_MAX:
            errors.add(f"{at}.unitPrice", "a whole number of minor units ≥ 0", "OUT_OF_RANGE")
            continue
        gross = line.quantity * line.unit_price
        subtotal += gross
        if gross > INT64_MAX or subtotal > INT64_MAX:
            errors.add(f"{at}.unitPrice", "the order total exceeds 64 bits", "TOO_LARGE")
    return subtotal if subtotal <= INT64_MAX else 0


def _line_amounts(
    lines: Sequence[LineIn], discount: int, points_payment: int
) -> list[tuple[int, int, int, int]]:
    """Per line ``(gross, discount, points_payment, paid)``; shares add up exactly."""
    gross = {i: line.quantity * line.unit_price for i, line in enumerate(lines)}
    combined = rules.share(discount + points_payment, gross)
    discounts = rules.share(discount, combined)
    result = []
    for i in gross:
        d = discounts[i]
        p = combined[i] - d
        result.append((gross[i], d, p, gross[i] - combined[i]))
    return result


def _canonical(
    *,
    channel: str,
    external_id: str,
    member_id: int | None,
    identity: tuple[str, str, str] | None,
    store_id: str | None,
    occurred_at: datetime,
    currency: str,
    discount_total: int,
    points_payment: int,
    lines: Sequence[LineIn],
) -> dict[str, Any]:
    return {
        "channel": channel,
        "external_id": external_id,
        "member_id": member_id,
        "identity": list(identity) if identity else None,
        "store_id": store_id,
        "occurred_at": occurred_at.astimezone(clock.now().tzinfo).isoformat(),
        "currency": currency,
        "discount_total": discount_total,
        "points_payment": points_payment,
        "lines": [
            [line.sku.strip(), line.name, line.category, line.quantity, line.unit_price]
            for line in lines
        ],
    }


@db.retry_conflicts
async def record(
    *,
    channel: str,
    external_id: str,
    occurred_at: datetime,
    currency: str,
    lines: Sequence[LineIn],
    member_id: int | None = None,
    identity: IdentityRef | None = None,
    store_id: str | None = None,
    discount_total: int = 0,
    points_payment: int = 0,
    jobs: JobQueue | None = None,
) -> OrderResult:
    """Record an order; points, running stats, favourite categories and tier hooks follow in
    the same transaction.

    The member is given by id or by identity; an identity nobody owns yet makes a guest order
    (kept, attached later when the identity is linked). Idempotent on ``(channel,
    external_id)``: the same order again returns the first result; other content under the
    same id raises :class:`OrderConflict`. Raises ValidationError (nothing written) for bad
    input, MemberNotFound / MemberNotActive. A member merged before the order is written
    has it written on the survivor.
    """
    errors = FieldErrors()
    if channel not in Channel.__members__:
        errors.add("channel", "unknown channel", "INVALID")
    external_id = (external_id or "").strip()
    if not 0 < len(external_id) <= 128:
        errors.add("externalId", "1–128 characters", "INVALID")
    if (member_id is None) == (identity is None):
        errors.add("member", "give exactly one of a member id or an identity", "INVALID")
    if currency not in rules.CURRENCY_EXPONENTS:
        errors.add("currency", f"unknown currency {currency!r}", "UNKNOWN_CURRENCY")
    if store_id is not None and not 0 < len(store_id.strip()) <= 64:
        errors.add("storeId", "1–64 characters", "INVALID")
    if occurred_at.tzinfo is None:
        errors.add("occurredAt", "needs a time zone", "INVALID")
    elif occurred_at > clock.now() + FUTURE_SKEW:
        errors.add("occurredAt", "must not be in the future", "INVALID")
    subtotal = validate_lines(errors, lines)
    for name, value in (("discountTotal", discount_total), ("pointsPayment", points_payment)):
        if not _is_int(value) or not 0 <= value <= INT64_MAX:
            errors.add(name, "a whole number of minor units ≥ 0", "OUT_OF_RANGE")
    if not errors.errors and discount_total + points_payment > subtotal:
        errors.add("discountTotal", "discounts and points payment exceed the subtotal", "INVALID")
    identity_key: tuple[IdentityKind, str, str] | None = None
    if identity is not None:
        try:
            identity_key = members.identity_key(
                identity.kind, identity.value, identity.scope, field="identity.value"
            )
        except ValidationError as exc:
            errors.errors.extend(exc.errors)
    errors.raise_if_any()

    payload = _canonical(
        channel=channel,
        external_id=external_id,
        member_id=member_id,
        identity=(identity_key[0].value, identity_key[1], identity_key[2])
        if identity_key
        else None,
        store_id=store_id,
        occurred_at=occurred_at,
        currency=currency,
        discount_total=discount_total,
        points_payment=points_payment,
        lines=lines,
    )
    request_hash = ledger.fingerprint(payload)
    existing = await _replay(channel, external_id, request_hash)
    if existing is not None:
        return existing

    member: Member | None
    if member_id is not None:
        member = await members.get(member_id=member_id)
        if member.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(f"member is {member.status.value.lower()}")
    else:
        assert identity is not None
        member = await members.find_by_identity(
            kind=identity.kind, value=identity.value, scope=identity.scope
        )
    settings = await program.get_program()
    amounts = _line_amounts(lines, discount_total, points_payment)
    paid_amount = sum(a[3] for a in amounts)
    try:
        async with in_transaction() as conn:
            if member is not None:
                # The member's row lock comes first (see the ledger's lock order); a merge
                # that committed since the look-up above sends the order to the survivor.
                member = await ledger.lock_member(conn, member.id)
                if member.status is not MemberStatus.ACTIVE:
                    raise MemberNotActive(f"member is {member.status.value.lower()}")
            order = await Order.create(
                using_db=conn,
                channel=channel,
                external_id=external_id,
                request_hash=request_hash,
                member_id=member.id if member else None,
                guest_identity_kind=identity_key[0].value if identity_key else None,
                guest_identity_scope=identity_key[1] if identity_key else None,
                guest_identity_value=identity_key[2] if identity_key else None,
                store_id=store_id.strip() if store_id else None,
                occurred_at=occurred_at,
                recorded_at=clock.now(),
                currency=currency,
                subtotal=subtotal,
                discount_total=discount_total,
                points_payment=points_payment,
                paid_amount=paid_amount,
            )
            line_rows = [
                OrderLine(
                    order_id=order.id,
                    line_no=i + 1,
                    sku=line.sku.strip(),
                    name=line.name,
                    category=line.category.strip() if line.category else None,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    gross=gross,
                    discount=discount,
                    points_payment=paid_with_points,
                    paid=paid,
                )
                for i, (line, (gross, discount, paid_with_points, paid)) in enumerate(
                    zip(lines, amounts, strict=True)
                )
            ]
            await OrderLine.bulk_create(line_rows, using_db=conn)
            line_rows = list(await OrderLine.filter(order_id=order.id).using_db(conn))
            result = OrderResult(order, 0, 0, None, None)
            if member is not None:
                result = await apply_member_effects(
                    conn, order=order, lines=line_rows, member_id=member.id, settings=settings
                )
            event_id = await events.record(
                kind="order.recorded",
                dedupe_key=f"order.recorded:{order.id}",
                member_id=order.member_id,  # type: ignore[attr-defined]
                payload={
                    "order_id": order.id,
                    "channel": channel,
                    "paid_amount": paid_amount,
                    "points_earned": result.points_earned,
                    "points_pending": result.points_pending,
                },
                connection=conn,
            )
    except IntegrityError:
        existing = await _replay(channel, external_id, request_hash)
        if existing is None:
            raise
        return existing
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return result


async def _replay(channel: str, external_id: str, request_hash: str) -> OrderResult | None:
    order = await Order.get_or_none(channel=channel, external_id=external_id)
    if order is None:
        return None
    if order.request_hash != request_hash:
        raise OrderConflict("this order id was recorded before with different content")
    return OrderResult(
        order=order,
        points_earned=order.points_earned,
        points_pending=order.points_pending,
        balance=order.balance_after,
        tier_change=order.tier_change,
        replayed=True,
    )


async def apply_member_effects(
    conn: BaseDBAsyncClient,
    *,
    order: Order,
    lines: list[OrderLine],
    member_id: int,
    settings: program.Program,
    earn: bool = True,
) -> OrderResult:
    """Inside the order's transaction: points, running stats, categories and tier hooks for a
    member's order (a new one, or a guest order being attached)."""
    state = await ledger.lock_account(conn, member_id)
    calc = await calculate(conn, order=order, lines=lines, member_id=member_id, settings=settings)
    points = calc.points if earn else 0
    line_points = calc.line_points if earn else dict.fromkeys(calc.line_points, 0)
    # Points of lines already refunded (a guest order refunded before it was attached) are
    # counted as reversed and never granted.
    withheld = 0
    for line in lines:
        line.points = line_points.get(line.line_no, 0)
        already = line.points * line.refunded_quantity // line.quantity
        withheld += already
        await (
            OrderLine.filter(id=line.id)
            .using_db(conn)
            .update(points=line.points, points_reversed=already)
        )
        line.points_reversed = already
    grant = await grant_order_points(
        conn,
        member_id=member_id,
        order_id=order.id,
        amount=points - withheld,
        at=order.occurred_at,
        pending_days=settings.pending_days,
        expiry_months=settings.expiry_months,
    )
    state = grant.state
    net_paid = order.paid_amount - order.refunded_amount
    await update_stats(conn, member_id=member_id, order=order, lines=lines, spend=net_paid)
    tier_change = await run_order_hooks(
        conn,
        hooks.OrderFacts(
            member_id=member_id,
            order_id=order.id,
            channel=order.channel,
            paid_amount=net_paid,
            occurred_at=order.occurred_at,
        ),
    )
    order.points_earned = grant.earned
    order.points_pending = grant.pending
    order.balance_after = state.balance
    order.tier_change = tier_change
    order.rules_applied = [o.code for o in calc.outcomes if o.applied]
    await (
        Order.filter(id=order.id)
        .using_db(conn)
        .update(
            points_earned=grant.earned,
            points_pending=grant.pending,
            balance_after=state.balance,
            tier_change=tier_change,
            rules_applied=order.rules_applied,
        )
    )
    return OrderResult(order, grant.earned, grant.pending, state.balance, tier_change)


async def calculate(
    conn: BaseDBAsyncClient | None,
    *,
    order: Order,
    lines: Sequence[OrderLine],
    member_id: int | None,
    settings: program.Program,
) -> rules.Calculation:
    """The earning calculation for ``order`` (used by recording and by :func:`simulate`)."""
    rule_rows = await program.list_rules(conn)
    tier = await program.tier_permille(member_id, conn) if member_id is not None else 1000
    earned_today = 0
    if member_id is not None and settings.per_day_cap is not None:
        earned_today = await _earned_on_day(conn, member_id, order.occurred_at, order.id)
    return rules.calculate(
        lines=[rules.Line(line.line_no, line.category, line.paid) for line in lines],
        currency=order.currency,
        channel=order.channel,
        at=order.occurred_at,
        rules=[program.to_rule(r) for r in rule_rows],
        tier_permille=tier,
        per_order_cap=settings.per_order_cap,
        per_day_cap=settings.per_day_cap,
        earned_today=earned_today,
    )


async def _earned_on_day(
    conn: BaseDBAsyncClient | None, member_id: int, at: datetime, order_id: int | None
) -> int:
    zone = clock.business_zone()
    local = at.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    query = Order.filter(member_id=member_id, occurred_at__gte=start, occurred_at__lt=end)
    if order_id is not None:
        query = query.exclude(id=order_id)
    rows = await query.using_db(conn).values_list("points_earned", "points_pending")
    return sum(e + p for e, p in rows)


async def update_stats(
    conn: BaseDBAsyncClient,
    *,
    member_id: int,
    order: Order,
    lines: Sequence[OrderLine],
    spend: int,
) -> None:
    """Running stats (one UPDATE) and per-category spend (one upsert) for a new order."""
    at = order.occurred_at
    await (
        Member.filter(id=member_id)
        .using_db(conn)
        .update(
            total_spend=F("total_spend") + spend,
            order_count=F("order_count") + 1,
            first_order_at=Case(
                When(Q(first_order_at__isnull=True) | Q(first_order_at__gt=at), then=at),
                default=F("first_order_at"),
            ),
            last_order_at=Case(
                When(Q(last_order_at__isnull=True) | Q(last_order_at__lt=at), then=at),
                default=F("last_order_at"),
            ),
        )
    )
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        if line.category:
            refunded = line.refunded_quantity
            per_category[line.category][0] += line.paid - line.refunded_paid
            per_category[line.category][1] += line.quantity - refunded
    await upsert_categories(conn, member_id, per_category, orders=1)


async def upsert_categories(
    conn: BaseDBAsyncClient, member_id: int, per_category: dict[str, list[int]], *, orders: int
) -> None:
    """Add ``[spend, quantity]`` per category (negative to subtract), ``orders`` to counts."""
    if not per_category:
        return
    values = ", ".join("(?, ?, ?, ?, ?)" for _ in per_category)
    params: list[Any] = []
    for category, (spend, quantity) in sorted(per_category.items()):
        params += [member_id, category, spend, quantity, orders]
    await sql.execute(
        conn,
        "INSERT INTO member_category_stat (member_id, category, spend, quantity, order_count) "
        f"VALUES {values} ON CONFLICT (member_id, category) DO UPDATE SET "
        "spend = member_category_stat.spend + excluded.spend, "
        "quantity = member_category_stat.quantity + excluded.quantity, "
        "order_count = member_category_stat.order_count + excluded.order_count",
        *params,
    )


async def run_order_hooks(
    conn: BaseDBAsyncClient, facts: hooks.OrderFacts
) -> dict[str, Any] | None:
    """Call every order hook; the last ``tier_change`` any of them reports is returned."""
    tier_change: dict[str, Any] | None = None
    for hook in hooks.ORDER_HOOKS:
        outcome = await hook(facts, conn)
        if outcome and outcome.get("tier_change") is not None:
            # Stored on the order as JSON: keep only JSON-safe values.
            tier_change = orjson.loads(orjson.dumps(outcome["tier_change"], default=str))
    return tier_change


async def favourite_categories(member_ids: Sequence[int], *, top: int = 3) -> dict[int, list[str]]:
    """Each member's categories by spend (highest first), at most ``top``."""
    rows = await MemberCategoryStat.filter(member_id__in=list(member_ids), spend__gt=0).order_by(
        "member_id", "-spend", "category"
    )
    result: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        picked = result[row.member_id]  # type: ignore[attr-defined]
        if len(picked) < top:
            picked.append(row.category)
    return result


async def get(*, order_id: int) -> Order | None:
    return await Order.get_or_none(id=order_id)


async def store_of(*, channel: str, external_id: str) -> str | None:
    """The store of the order ``(channel, external_id)``; None when it has none or is unknown."""
    rows = await Order.filter(channel=channel, external_id=external_id).values_list(
        "store_id", flat=True
    )
    return rows[0] if rows else None


async def by_ids(ids: Sequence[int]) -> list[Order]:
    return list(await Order.filter(id__in=list(ids)))


async def lines_for(order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    rows = await OrderLine.filter(order_id__in=list(order_ids)).order_by("order_id", "line_no")
    grouped: dict[int, list[OrderLine]] = defaultdict(list)
    for row in rows:
        grouped[row.order_id].append(row)  # type: ignore[attr-defined]
    return grouped


_MEMBER_PAGE_ORDER = ("-occurred_at", "-id")


async def member_page(
    *, member_id: int, first: int, after: tuple[datetime, int] | None = None
) -> tuple[list[Order], bool]:
    """A member's orders, newest first, keyset on ``(occurred_at, id)``."""
    query = Order.filter(member_id=member_id)
    if after is not None:
        at, order_id = after
        query = query.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=order_id))
    rows = await query.order_by(*_MEMBER_PAGE_ORDER).limit(first + 1)
    return rows[:first], len(rows) > first


async def first_member_pages(
    member_ids: Sequence[int], *, first: int
) -> dict[int, tuple[list[Order], bool]]:
    """:func:`member_page` without ``after`` for many members, in one query."""
    found = await db.first_rows_per_key(
        Order, key="member_id", keys=member_ids, order_by=_MEMBER_PAGE_ORDER, limit=first + 1
    )
    pages: dict[int, tuple[list[Order], bool]] = {}
    for member_id in member_ids:
        rows = found.get(member_id, [])
        pages[member_id] = (rows[:first], len(rows) > first)
    return pages


@dataclass(frozen=True)
class Simulation:
    calculation: rules.Calculation
    paid_amount: int
    pending_days: int


async def simulate(
    *,
    channel: str,
    occurred_at: datetime,
    currency: str,
    lines: Sequence[LineIn],
    member_id: int | None = None,
    discount_total: int = 0,
    points_payment: int = 0,
) -> Simulation:
    """What :func:`record` would earn, without writing anything. Raises ValidationError."""
    errors = FieldErrors()
    if channel not in Channel.__members__:
        errors.add("channel", "unknown channel", "INVALID")
    if currency not in rules.CURRENCY_EXPONENTS:
        errors.add("currency", f"unknown currency {currency!r}", "UNKNOWN_CURRENCY")
    subtotal = validate_lines(errors, lines)
    for name, value in (("discountTotal", discount_total), ("pointsPayment", points_payment)):
        if not _is_int(value) or not 0 <= value <= INT64_MAX:
            errors.add(name, "a whole number of minor units ≥ 0", "OUT_OF_RANGE")
    if not errors.errors and discount_total + points_payment > subtotal:
        errors.add("discountTotal", "discounts and points payment exceed the subtotal", "INVALID")
    errors.raise_if_any()
    if member_id is not None:
        member_id = (await members.get(member_id=member_id)).id
    amounts = _line_amounts(lines, discount_total, points_payment)
    order = Order(channel=channel, currency=currency, occurred_at=occurred_at)
    order.id = None  # type: ignore[assignment]
    fake_lines = [
        OrderLine(line_no=i + 1, category=line.category, quantity=line.quantity, paid=a[3])
        for i, (line, a) in enumerate(zip(lines, amounts, strict=True))
    ]
    settings = await program.get_program()
    calc = await calculate(
        None, order=order, lines=fake_lines, member_id=member_id, settings=settings
    )
    return Simulation(calc, sum(a[3] for a in amounts), settings.pending_days)
