"""The ledger against a small pure-Python model of it (hypothesis state machine).

Earn (grants and orders), redeem, refund (partial, whole, after spending), expire, adjust,
replays with the same key and with a different payload. After every step the real account
equals the model and ``check_ledger`` finds nothing. ``HYPOTHESIS_PROFILE=fuzz`` runs longer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from loyalty import clock
from loyalty.auth.principal import SYSTEM
from loyalty.orders.refunds import RefundLineIn, refund
from loyalty.points import service
from loyalty.points.audit import check_ledger
from loyalty.points.errors import IdempotencyConflict, InsufficientPoints
from loyalty.points.models import EarningRule, RuleKind
from loyalty.points.service import ledger
from tests.factories.members import create_member
from tests.factories.orders import line, record_order

T = TypeVar("T")
_ids = itertools.count(1)


@dataclass
class Lot:
    seq: int
    expires: datetime
    remaining: int
    order: int | None = None


@dataclass
class ModelOrder:
    external_id: str
    quantity: int
    points: int
    refunded: int = 0
    reversed: int = 0


class LedgerModel:
    """What the ledger should hold: lots, balance, debt (same draw order as the service)."""

    def __init__(self) -> None:
        self.lots: list[Lot] = []
        self.debt = 0
        self.seq = 0

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def _draw(self, amount: int, prefer: int | None = None) -> None:
        order = sorted(
            (lot for lot in self.lots if lot.remaining > 0),
            key=lambda lot: (prefer is None or lot.order != prefer, lot.expires, lot.seq),
        )
        for lot in order:
            take = min(amount, lot.remaining)
            lot.remaining -= take
            amount -= take
        assert amount == 0

    def credit(self, amount: int, now: datetime, order: int | None = None) -> None:
        self.seq += 1
        expires = ledger.expiry_for(now, 12)
        assert expires is not None
        self.lots.append(Lot(self.seq, expires, amount, order))
        settle = min(self.debt, self.balance)
        if settle:
            self.debt -= settle
            self._draw(settle)

    def redeem(self, amount: int) -> bool:
        if amount > self.balance:
            return False
        self._draw(amount)
        return True

    def reverse(self, amount: int, order: int) -> None:
        take = min(amount, self.balance)
        self._draw(take, prefer=order)
        self.debt += amount - take

    def expire(self, now: datetime) -> int:
        total = 0
        for lot in self.lots:
            if lot.remaining and lot.expires < now:
                total += lot.remaining
                lot.remaining = 0
        return total


class LedgerMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.model = LedgerModel()
        self.now = datetime(2024, 1, 15, 4, tzinfo=UTC)
        self.orders: list[ModelOrder] = []
        self.order_ids: dict[str, int] = {}
        self.redemptions: list[tuple[str, int, int]] = []  # key, amount, balance after

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with clock.frozen(self.now):
            return self.loop.run_until_complete(coro)

    @initialize()
    def new_member(self) -> None:
        self.member_id = self.run(create_member()).id

    @rule(amount=st.integers(1, 400))
    def grant(self, amount: int) -> None:
        from tests.factories.points import grant_points

        self.run(grant_points(self.member_id, amount))
        self.model.credit(amount, self.now)

    @rule(quantity=st.integers(1, 4), units=st.integers(1, 60))
    def order(self, quantity: int, units: int) -> None:
        external_id = f"M-{next(_ids)}"
        result = self.run(
            record_order(
                self.member_id,
                external_id=external_id,
                lines=[line(quantity=quantity, unit_price=units * 100)],
            )
        )
        points = quantity * units
        assert result.points_earned == points
        self.order_ids[external_id] = result.order.id
        self.orders.append(ModelOrder(external_id, quantity, points))
        self.model.credit(points, self.now, order=result.order.id)

    @precondition(lambda self: any(o.refunded < o.quantity for o in self.orders))
    @rule(data=st.data(), whole=st.booleans())
    def refund_order(self, data: st.DataObject, whole: bool) -> None:
        open_orders = [o for o in self.orders if o.refunded < o.quantity]
        target = data.draw(st.sampled_from(open_orders))
        left = target.quantity - target.refunded
        quantity = left if whole else data.draw(st.integers(1, left))
        self.run(
            refund(
                channel="POS",
                order_external_id=target.external_id,
                refund_id=f"R-{next(_ids)}",
                lines=None if whole else [RefundLineIn(1, quantity)],
                whole=whole,
            )
        )
        target.refunded += quantity
        due = target.points * target.refunded // target.quantity - target.reversed
        target.reversed += due
        self.model.reverse(due, self.order_ids[target.external_id])

    @rule(amount=st.integers(1, 500))
    def redeem(self, amount: int) -> None:
        key = f"k-{next(_ids)}"
        expected = self.model.redeem(amount)
        try:
            movement = self.run(
                service.redeem(member_id=self.member_id, amount=amount, idempotency_key=key)
            )
        except InsufficientPoints:
            assert not expected
            return
        assert expected
        assert movement.balance == self.model.balance
        self.redemptions.append((key, amount, movement.balance))

    @precondition(lambda self: bool(self.redemptions))
    @rule(data=st.data())
    def replay_same_key(self, data: st.DataObject) -> None:
        key, amount, balance = data.draw(st.sampled_from(self.redemptions))
        movement = self.run(
            service.redeem(member_id=self.member_id, amount=amount, idempotency_key=key)
        )
        assert movement.replayed and movement.balance == balance

    @precondition(lambda self: bool(self.redemptions))
    @rule(data=st.data())
    def replay_other_payload(self, data: st.DataObject) -> None:
        key, amount, _balance = data.draw(st.sampled_from(self.redemptions))
        with pytest.raises(IdempotencyConflict):
            self.run(
                service.redeem(member_id=self.member_id, amount=amount + 1, idempotency_key=key)
            )

    @rule(amount=st.integers(-300, 300).filter(bool))
    def adjust(self, amount: int) -> None:
        key = f"a-{next(_ids)}"
        call = service.adjust(
            actor=SYSTEM,
            member_id=self.member_id,
            amount=amount,
            reason="模型测试",
            idempotency_key=key,
        )
        if amount > 0:
            self.run(call)
            self.model.credit(amount, self.now)
        elif self.model.redeem(-amount):
            self.run(call)
        else:
            with pytest.raises(InsufficientPoints):
                self.run(call)

    @rule(days=st.integers(1, 420))
    def time_passes_and_lots_expire(self, days: int) -> None:
        self.now += timedelta(days=days)
        expired = self.run(service.expire_member(member_id=self.member_id))
        assert expired == self.model.expire(self.now)

    @invariant()
    def books_agree(self) -> None:
        if not hasattr(self, "member_id"):
            return
        account = self.run(service.get_account(member_id=self.member_id))
        assert account.balance >= 0
        assert (account.balance, account.debt) == (self.model.balance, self.model.debt)
        assert self.run(check_ledger()) == []


@pytest_asyncio.fixture
async def session_loop(orm: Any) -> asyncio.AbstractEventLoop:
    """The loop the database connections belong to (idle while a sync test runs)."""
    return asyncio.get_running_loop()


@pytest.fixture
def base_rule(session_loop: asyncio.AbstractEventLoop) -> None:
    async def create() -> None:
        now = clock.now()
        await EarningRule.create(
            code="model-base",
            name="基础",
            kind=RuleKind.BASE,
            points_per_unit=1,
            created_at=now,
            updated_at=now,
        )

    session_loop.run_until_complete(create())


def test_ledger_matches_its_model(session_loop: asyncio.AbstractEventLoop, base_rule: None) -> None:
    LedgerMachine.loop = session_loop
    LedgerMachine.TestCase().runTest()
