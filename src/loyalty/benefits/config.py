"""Per-kind benefit configuration: the keys each kind accepts, checked before anything is stored.

Amounts are minor units (fen); multipliers per-mille (1500 = x1.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loyalty.benefits.models import BenefitKind
from loyalty.errors import FieldErrors

MAX_AMOUNT = 100_000_000  # ¥1,000,000


@dataclass(frozen=True)
class Key:
    """One accepted key: its type check, whether it is required, and a rule for people."""

    check: Callable[[Any], bool]
    rule: str
    required: bool = False


def _int_between(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _text(max_length: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and 0 < len(v.strip()) <= max_length


SCHEMAS: dict[BenefitKind, dict[str, Key]] = {
    BenefitKind.PERCENT_DISCOUNT: {
        "percent": Key(_int_between(1, 100), "an integer 1–100", required=True),
        "maxDiscount": Key(_int_between(1, MAX_AMOUNT), "a positive amount in fen"),
    },
    BenefitKind.AMOUNT_OFF: {
        "amount": Key(_int_between(1, MAX_AMOUNT), "a positive amount in fen", required=True),
        "minSpend": Key(_int_between(0, MAX_AMOUNT), "an amount in fen, 0 or more"),
    },
    BenefitKind.FREE_SHIPPING: {
        "maxShippingFee": Key(_int_between(1, MAX_AMOUNT), "a positive amount in fen"),
        "minSpend": Key(_int_between(0, MAX_AMOUNT), "an amount in fen, 0 or more"),
    },
    BenefitKind.BIRTHDAY_GIFT: {
        "giftSku": Key(_text(64), "a SKU of 1–64 characters"),
        "points": Key(_int_between(1, 1_000_000), "a positive number of points"),
    },
    BenefitKind.PRIORITY_SERVICE: {
        "hotline": Key(_text(32), "a phone line of 1–32 characters"),
        "level": Key(_text(32), "1–32 characters"),
    },
    BenefitKind.EVENT_ACCESS: {
        "eventCode": Key(_text(64), "an event code of 1–64 characters"),
        "guests": Key(_int_between(0, 10), "an integer 0–10"),
    },
    BenefitKind.POINTS_MULTIPLIER: {
        "multiplierPermille": Key(_int_between(1001, 10_000), "an integer 1001–10000", True),
    },
}


def validate(kind: BenefitKind, config: Any, *, field: str = "config") -> dict[str, Any]:
    """The config for ``kind``, or :class:`ValidationError` listing every bad key.

    CUSTOM takes any JSON object; every other kind accepts only its documented keys.
    """
    errors = FieldErrors()
    if not isinstance(config, dict):
        errors.add(field, "must be a JSON object")
        errors.raise_if_any()
    if kind is BenefitKind.CUSTOM:
        return dict(config)
    schema = SCHEMAS[kind]
    for key in config:
        if key not in schema:
            errors.add(
                f"{field}.{key}",
                f"unknown key for {kind.value}; expected one of {sorted(schema)}",
                "UNKNOWN_KEY",
            )
    for key, spec in schema.items():
        if key not in config:
            if spec.required:
                errors.add(f"{field}.{key}", f"required for {kind.value}", "REQUIRED")
            continue
        if not spec.check(config[key]):
            errors.add(f"{field}.{key}", f"must be {spec.rule}")
    if kind is BenefitKind.BIRTHDAY_GIFT and not ({"giftSku", "points"} & set(config)):
        errors.add(field, "a birthday gift needs `giftSku` or `points`", "REQUIRED")
    errors.raise_if_any()
    return dict(config)
