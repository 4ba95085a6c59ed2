"""Refunds: idempotent on (order, refund id); each refunded quantity moves money and points
exactly once.

Amounts per line are cumulative: after refunding ``k`` of ``n`` units a line has given back
``floor(x × k / n)`` of each amount ``x`` (paid money, earned points, points that paid for it),
so the last refund of a line returns exactly what is left and rounding never drifts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from loyalty import clock, db, hooks
from loyalty.errors import DomainError, FieldError, FieldErrors, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members.models import Member
from loyalty.orders.errors import OrderNotFound, RefundConflict, RefundExceedsOrder
from loyalty.orders.models import Order, OrderLine, Refund
from loyalty.orders.service import run_order_hooks, upsert_categories
from loyalty.points import rules, sql
from loyalty.points.service import ledger
from loyalty.points.service import refund as points_refund


@dataclass(frozen=True)
class RefundLineIn:
    line_no: int
    quantity: int


@dataclass(frozen=True)
class RefundResult:
    refund: Refund
    order: Order
    replayed: bool = False


def _cumulative(total: int, done: int, of: int) -> int:
    return total * done // of


@db.retry_conflicts
async def refund(
    *,
    channel: str,
    order_external_id: str,
    refund_id: str,
    lines: Sequence[RefundLineIn] | None = None,
    whole: bool = False,
    jobs: JobQueue | None = None,
) -> RefundResult:
    """Refund some lines (quantities) of an order, or everything still unrefunded (``whole``).

    Reverses the points earned on the refunded lines once (pending ones are cancelled without
    touching the balance; spent ones are clawed back up to the balance, the rest becomes a
    debt), and returns points that paid for them to their original lots. Idempotent on
    ``refund_id`` per order. Raises ValidationError, :class:`OrderNotFound`,
    :class:`RefundExceedsOrder`, :class:`RefundConflict`; nothing is written then.
    """
    errors = FieldErrors()
    refund_id = (refund_id or "").strip()
    if not 0 < len(refund_id) <= 128:
        errors.add("refundId", "1–128 characters", "INVALID")
    requested = list(lines or [])
    if whole == bool(requested):
        errors.add("lines", "give lines to refund, or ask for the whole order", "INVALID")
    seen: set[int] = set()
    for i, line in enumerate(requested):
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
            errors.add(f"lines[{i}].quantity", "a whole number", "OUT_OF_RANGE")
        elif line.quantity <= 0:
            errors.add(f"lines[{i}].quantity", "must be at least 1", "OUT_OF_RANGE")
        if line.line_no in seen:
            errors.add(f"lines[{i}].lineNo", "listed twice", "DUPLICATE")
        seen.add(line.line_no)
    errors.raise_if_any()

    order = await Order.get_or_none(channel=channel, external_id=order_external_id)
    if order is None:
        raise OrderNotFound(order_external_id)
    request_hash = ledger.fingerprint(
        {
            "whole": whole,
            "lines": sorted([line.line_no, line.quantity] for line in requested),
        }
    )
    replay = await _replay(order, refund_id, request_hash)
    if replay is not None:
        return replay
    try:
        async with in_transaction() as conn:
            order = await _lock_order(conn, order.id)
            member_id: int | None = order.member_id  # type: ignore[attr-defined]
            order_lines = {
                line.line_no: line
                for line in await OrderLine.filter(order_id=order.id).using_db(conn)
            }
            if whole:
                plan = {
                    no: line.quantity - line.refunded_quantity
                    for no, line in order_lines.items()
                    if line.quantity > line.refunded_quantity
                }
                if not plan:
                    raise RefundExceedsOrder(line_no=0, requested=1, refundable=0)
            else:
                plan = {}
                for item in requested:
                    line = order_lines.get(item.line_no)
                    if line is None:
                        raise ValidationError(
                            FieldError("lines.lineNo", f"the order has no line {item.line_no}")
                        )
                    refundable = line.quantity - line.refunded_quantity
                    if item.quantity > refundable:
                        raise RefundExceedsOrder(
                            line_no=item.line_no, requested=item.quantity, refundable=refundable
                        )
                    plan[item.line_no] = item.quantity

            redemptions = []
            redeemed_total = 0
            if member_id is not None:
                redemptions = await points_refund.redeemed_for_order(
                    conn, member_id=member_id, channel=order.channel, external_id=order.external_id
                )
                redeemed_total = -sum(r.amount for r in redemptions)
            redeemed_share = rules.share(
                redeemed_total, {no: line.gross for no, line in order_lines.items()}
            )

            money = reverse = give_back = 0
            detail = []
            per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for no, quantity in sorted(plan.items()):
                line = order_lines[no]
                done = line.refunded_quantity + quantity
                paid = _cumulative(line.paid, done, line.quantity) - line.refunded_paid
                points = _cumulative(line.points, done, line.quantity) - line.points_reversed
                back = max(
                    0,
                    _cumulative(redeemed_share.get(no, 0), done, line.quantity)
                    - line.points_returned,
                )
                changed = await sql.execute(
                    conn,
                    "UPDATE customer_order_line SET refunded_quantity = refunded_quantity + ?, "
                    "refunded_paid = refunded_paid + ?, points_reversed = points_reversed + ?, "
                    "points_returned = points_returned + ? "
                    "WHERE id = ? AND refunded_quantity + ? <= quantity",
                    quantity,
                    paid,
                    points,
                    back,
                    line.id,
                    quantity,
                )
                if changed != 1:
                    raise RefundExceedsOrder(
                        line_no=no,
                        requested=quantity,
                        refundable=line.quantity - line.refunded_quantity,
                    )
                money += paid
                reverse += points
                give_back += back
                detail.append({"line_no": no, "quantity": quantity, "paid": paid})
                if line.category:
                    per_category[line.category][0] -= paid
                    per_category[line.category][1] -= quantity
            fully = all(
                line.refunded_quantity + plan.get(no, 0) == line.quantity
                for no, line in order_lines.items()
            )
            await (
                Order.filter(id=order.id)
                .using_db(conn)
                .update(refunded_amount=F("refunded_amount") + money)
            )
            row = Refund(
                order_id=order.id,
                member_id=member_id,
                external_id=refund_id,
                request_hash=request_hash,
                whole=whole,
                amount=money,
                lines=detail,
                created_at=clock.now(),
            )
            if member_id is not None:
                key = f"refund:{order.id}:{refund_id}"
                returned = await points_refund.return_redeemed_points(
                    conn,
                    member_id=member_id,
                    redemptions=redemptions,
                    amount=give_back,
                    key=key,
                    order_id=order.id,
                )
                reversal = await points_refund.reverse_order_points(
                    conn, member_id=member_id, order_id=order.id, amount=reverse, key=key
                )
                row.points_reversed = reversal.clawed_back + reversal.debt
                row.debt_created = reversal.debt
                row.pending_cancelled = reversal.pending_cancelled
                row.points_returned = returned.returned
                row.points_forfeited = returned.forfeited
                row.balance_after = reversal.state.balance
                await (
                    Member.filter(id=member_id)
                    .using_db(conn)
                    .update(
                        total_spend=F("total_spend") - money,
                        **({"order_count": F("order_count") - 1} if fully else {}),
                    )
                )
                await upsert_categories(conn, member_id, per_category, orders=-1 if fully else 0)
                await run_order_hooks(
                    conn,
                    hooks.OrderFacts(
                        member_id=member_id,
                        order_id=order.id,
                        channel=order.channel,
                        paid_amount=money,
                        occurred_at=order.occurred_at,
                        is_refund=True,
                    ),
                )
            await row.save(using_db=conn)
            event_id = await events.record(
                kind="order.refunded",
                dedupe_key=f"order.refunded:{row.id}",
                member_id=member_id,
                payload={"order_id": order.id, "refund_id": row.id, "amount": money},
                connection=conn,
            )
            order = await Order.get(id=order.id).using_db(conn)
    except (IntegrityError, DomainError):
        # A twin with the same refund id that committed first: the twin waited on the order
        # row, then found the lines refunded by the refund it repeats. Answer that refund.
        replay = await _replay(order, refund_id, request_hash)
        if replay is None:
            raise
        return replay
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return RefundResult(row, order)


async def _lock_order(conn: BaseDBAsyncClient, order_id: int) -> Order:
    """Lock the order's member and points account, then the order row (the ledger's lock
    order), and return the order as locked: refunds of one order run one after another, and
    before or after a merge of its member, never during it."""
    member_id = (await Order.get(id=order_id).using_db(conn)).member_id  # type: ignore[attr-defined]
    if member_id is not None:
        # A merge that committed meanwhile gave the order to the survivor.
        member_id = (await ledger.lock_member(conn, member_id)).id
        await ledger.lock_account(conn, member_id)
    await sql.execute(
        conn, "UPDATE customer_order SET refunded_amount = refunded_amount WHERE id = ?", order_id
    )
    order = await Order.get(id=order_id).using_db(conn)
    holder: int | None = order.member_id  # type: ignore[attr-defined]
    if holder is not None and holder != member_id:
        # A guest order attached since the first read, or one left on a merged member.
        await ledger.lock_member(conn, holder)
        await ledger.lock_account(conn, holder)
    return order


async def _replay(order: Order, refund_id: str, request_hash: str) -> RefundResult | None:
    row = await Refund.get_or_none(order_id=order.id, external_id=refund_id)
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise RefundConflict("this refund id was used before with different content")
    return RefundResult(row, await Order.get(id=order.id), replayed=True)
