"""The earning calculation: pure integer arithmetic over rules as data.

For each line the exact value is ``paid × rate × tier × category bonus × promotion`` over
``10^exponent × 1000³`` (multipliers are per-mille). The order's points are the floor of the
sum (rounded down once, per order), then capped, then shared out to the lines in proportion
(largest remainder) so refunds reverse exactly what each line earned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from loyalty import clock
from loyalty.points.models import RuleKind

#: ISO 4217 currencies accepted on orders, with their minor-unit exponent.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "HKD": 2,
    "MOP": 2,
    "TWD": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "SGD": 2,
    "MYR": 2,
    "THB": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
}


class Reason(StrEnum):
    """Why a rule did or did not apply."""

    APPLIED = "APPLIED"
    INACTIVE = "INACTIVE"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    CHANNEL_EXCLUDED = "CHANNEL_EXCLUDED"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    NOT_A_PROMOTION_DAY = "NOT_A_PROMOTION_DAY"
    NO_MATCHING_LINES = "NO_MATCHING_LINES"
    SUPERSEDED = "SUPERSEDED"
    NOTHING_PAID = "NOTHING_PAID"


@dataclass(frozen=True)
class Rule:
    """An earning rule as the calculation sees it."""

    code: str
    kind: RuleKind
    active: bool = True
    currency: str = "CNY"
    points_per_unit: int = 0
    multiplier_permille: int = 1000
    categories: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days_of_month: tuple[int, ...] = ()
    weekdays: tuple[int, ...] = ()


@dataclass(frozen=True)
class Line:
    line_no: int
    category: str | None
    paid: int


@dataclass(frozen=True)
class Outcome:
    code: str
    kind: RuleKind
    applied: bool
    reason: Reason
    detail: str


@dataclass(frozen=True)
class Calculation:
    """The result: ``points`` after caps; ``line_points`` add up to it exactly."""

    points: int
    uncapped: int
    line_points: dict[int, int]
    tier_permille: int
    outcomes: list[Outcome] = field(default_factory=list)
    capped_by: str | None = None


def combine_permille(factors: Iterable[int]) -> int:
    """Multiply per-mille factors with integer arithmetic, rounding down at each step."""
    result = 1000
    for factor in factors:
        result = result * max(0, factor) // 1000
    return result


def _eligible(rule: Rule, *, currency: str, channel: str, at: datetime) -> Reason | None:
    """None when the rule may apply to this order; the reason why not otherwise."""
    if not rule.active:
        return Reason.INACTIVE
    if rule.kind is RuleKind.BASE and rule.currency != currency:
        return Reason.CURRENCY_MISMATCH
    if rule.channels and channel not in rule.channels:
        return Reason.CHANNEL_EXCLUDED
    if (rule.starts_at and at < rule.starts_at) or (rule.ends_at and at >= rule.ends_at):
        return Reason.OUTSIDE_WINDOW
    local = at.astimezone(clock.business_zone())
    if rule.days_of_month and local.day not in rule.days_of_month:
        return Reason.NOT_A_PROMOTION_DAY
    if rule.weekdays and local.isoweekday() not in rule.weekdays:
        return Reason.NOT_A_PROMOTION_DAY
    return None


def calculate(
    *,
    lines: Sequence[Line],
    currency: str,
    channel: str,
    at: datetime,
    rules: Sequence[Rule],
    tier_permille: int = 1000,
    per_order_cap: int | None = None,
    per_day_cap: int | None = None,
    earned_today: int = 0,
) -> Calculation:
    """Points for an order; every rule gets an :class:`Outcome` saying why it (did not) apply."""
    outcomes: dict[str, Outcome] = {}

    def note(rule: Rule, reason: Reason, detail: str) -> None:
        outcomes[rule.code] = Outcome(
            rule.code, rule.kind, reason is Reason.APPLIED, reason, detail
        )

    eligible: list[Rule] = []
    for rule in rules:
        why = _eligible(rule, currency=currency, channel=channel, at=at)
        if why is None:
            eligible.append(rule)
        else:
            note(rule, why, why.value.replace("_", " ").lower())

    bases = sorted(
        (r for r in eligible if r.kind is RuleKind.BASE),
        key=lambda r: (-r.points_per_unit, r.code),
    )
    base = bases[0] if bases else None
    for other in bases[1:]:
        note(other, Reason.SUPERSEDED, f"base rule {base.code} gives more")  # type: ignore[union-attr]
    promotions = sorted(
        (r for r in eligible if r.kind is RuleKind.PROMOTION),
        key=lambda r: (-r.multiplier_permille, r.code),
    )
    promotion = promotions[0] if promotions else None
    for other in promotions[1:]:
        note(other, Reason.SUPERSEDED, f"promotion {promotion.code} is larger")  # type: ignore[union-attr]
    bonuses = [r for r in eligible if r.kind is RuleKind.CATEGORY_BONUS]

    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    rate = base.points_per_unit if base else 0
    promo = promotion.multiplier_permille if promotion else 1000
    denominator = 10**exponent * 1000**3
    numerators: dict[int, int] = {}
    bonus_used: dict[str, int] = {}
    bonus_matched: set[str] = set()
    for line in lines:
        best: Rule | None = None
        for bonus in bonuses:
            if line.category is not None and line.category in bonus.categories:
                bonus_matched.add(bonus.code)
                if best is None or bonus.multiplier_permille > best.multiplier_permille:
                    best = bonus
        bonus_pm = best.multiplier_permille if best else 1000
        if best is not None and line.paid > 0:
            bonus_used[best.code] = bonus_used.get(best.code, 0) + 1
        numerators[line.line_no] = max(0, line.paid) * rate * tier_permille * bonus_pm * promo

    paid_total = sum(max(0, line.paid) for line in lines)
    if base is not None:
        if paid_total > 0:
            note(base, Reason.APPLIED, f"{rate} points per {currency} unit paid")
        else:
            note(base, Reason.NOTHING_PAID, "nothing was paid outside points")
    for bonus in bonuses:
        if bonus.code in bonus_used:
            note(bonus, Reason.APPLIED, f"×{bonus.multiplier_permille / 1000:g} on matching lines")
        elif bonus.code in bonus_matched:
            note(bonus, Reason.SUPERSEDED, "a larger category bonus applied to those lines")
        else:
            note(bonus, Reason.NO_MATCHING_LINES, "no line in its categories")
    if promotion is not None:
        note(promotion, Reason.APPLIED, f"×{promotion.multiplier_permille / 1000:g} on the order")

    total_numerator = sum(numerators.values())
    uncapped = total_numerator // denominator
    points = uncapped
    capped_by: str | None = None
    if per_order_cap is not None and points > per_order_cap:
        points, capped_by = per_order_cap, "PER_ORDER_CAP"
    if per_day_cap is not None:
        room = max(0, per_day_cap - earned_today)
        if points > room:
            points, capped_by = room, "PER_DAY_CAP"
    return Calculation(
        points=points,
        uncapped=uncapped,
        line_points=share(points, numerators),
        tier_permille=tier_permille,
        outcomes=[outcomes[r.code] for r in rules if r.code in outcomes],
        capped_by=capped_by,
    )


def share(total: int, weights: dict[int, int]) -> dict[int, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder); the parts add up to
    ``total`` exactly. Ties go to the smaller key. All-zero weights get nothing."""
    weight_sum = sum(weights.values())
    if weight_sum <= 0 or total <= 0:
        return dict.fromkeys(weights, 0)
    parts = {k: total * w // weight_sum for k, w in weights.items()}
    left = total - sum(parts.values())
    by_remainder = sorted(weights, key=lambda k: (-(total * weights[k] % weight_sum), k))
    for k in by_remainder[:left]:
        parts[k] += 1
    return parts
