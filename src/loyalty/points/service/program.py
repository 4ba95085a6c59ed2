"""Program tunables and earning rules: data edited by admins, read by the earning engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from loyalty import clock, hooks
from loyalty.audit import service as audit
from loyalty.auth.principal import Principal
from loyalty.errors import FieldErrors
from loyalty.points import rules
from loyalty.points.errors import EarningRuleNotFound
from loyalty.points.models import EarningRule, PointsProgram, RuleKind

INT64_MAX = 2**63 - 1
PROGRAM_ID = 1


@dataclass(frozen=True)
class Program:
    """The program's tunables (defaults when no admin changed them)."""

    expiry_months: int | None = 12
    pending_days: int = 0
    guest_attach_window_days: int = 30
    per_order_cap: int | None = None
    per_day_cap: int | None = None


async def get_program(conn: BaseDBAsyncClient | None = None) -> Program:
    row = await PointsProgram.get_or_none(id=PROGRAM_ID).using_db(conn)
    if row is None:
        return Program()
    return Program(
        expiry_months=row.expiry_months,
        pending_days=row.pending_days,
        guest_attach_window_days=row.guest_attach_window_days,
        per_order_cap=row.per_order_cap,
        per_day_cap=row.per_day_cap,
    )


_UNSET: Any = object()


async def update_program(
    *,
    actor: Principal,
    expiry_months: int | None = _UNSET,
    pending_days: int = _UNSET,
    guest_attach_window_days: int = _UNSET,
    per_order_cap: int | None = _UNSET,
    per_day_cap: int | None = _UNSET,
) -> Program:
    """Change some tunables (unset arguments keep their value). Raises ValidationError."""
    current = await get_program()
    values = {
        "expiry_months": current.expiry_months if expiry_months is _UNSET else expiry_months,
        "pending_days": current.pending_days if pending_days is _UNSET else pending_days,
        "guest_attach_window_days": current.guest_attach_window_days
        if guest_attach_window_days is _UNSET
        else guest_attach_window_days,
        "per_order_cap": current.per_order_cap if per_order_cap is _UNSET else per_order_cap,
        "per_day_cap": current.per_day_cap if per_day_cap is _UNSET else per_day_cap,
    }
    errors = FieldErrors()
    if values["expiry_months"] is not None and not 1 <= values["expiry_months"] <= 120:
        errors.add("expiryMonths", "1–120 months, or null for never", "OUT_OF_RANGE")
    if not 0 <= values["pending_days"] <= 365:
        errors.add("pendingDays", "0–365 days", "OUT_OF_RANGE")
    if not 0 <= values["guest_attach_window_days"] <= 3650:
        errors.add("guestAttachWindowDays", "0–3650 days", "OUT_OF_RANGE")
    for name, label in (("per_order_cap", "perOrderCap"), ("per_day_cap", "perDayCap")):
        cap = values[name]
        if cap is not None and not 0 <= cap <= INT64_MAX:
            errors.add(label, "must be between 0 and 2^63−1", "OUT_OF_RANGE")
    errors.raise_if_any()
    async with in_transaction() as conn:
        # Admin edits are rare; two concurrent first edits meet the primary key (IntegrityError).
        if await PointsProgram.filter(id=PROGRAM_ID).using_db(conn).exists():
            await (
                PointsProgram.filter(id=PROGRAM_ID)
                .using_db(conn)
                .update(**values, updated_at=clock.now())
            )
        else:
            await PointsProgram.create(
                id=PROGRAM_ID, updated_at=clock.now(), using_db=conn, **values
            )
        await audit.record(
            actor=actor,
            action="points.program.update",
            target_type="PointsProgram",
            target_id=PROGRAM_ID,
            details=dict(values),
            connection=conn,
        )
    return Program(**values)


def to_rule(row: EarningRule) -> rules.Rule:
    return rules.Rule(
        code=row.code,
        kind=RuleKind(row.kind),
        active=row.active,
        currency=row.currency,
        points_per_unit=row.points_per_unit,
        multiplier_permille=row.multiplier_permille,
        categories=tuple(row.categories or ()),
        channels=tuple(row.channels or ()),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        days_of_month=tuple(row.days_of_month or ()),
        weekdays=tuple(row.weekdays or ()),
    )


async def list_rules(conn: BaseDBAsyncClient | None = None) -> list[EarningRule]:
    return list(await EarningRule.all().using_db(conn).order_by("id"))


async def tier_permille(member_id: int, conn: BaseDBAsyncClient | None) -> int:
    """The product of every registered multiplier provider (per-mille, rounded down)."""
    factors = [await provider(member_id, conn) for provider in hooks.MULTIPLIER_PROVIDERS]
    return rules.combine_permille(factors)


_RULE_FIELDS = (
    "name",
    "kind",
    "active",
    "currency",
    "points_per_unit",
    "multiplier_permille",
    "categories",
    "channels",
    "starts_at",
    "ends_at",
    "days_of_month",
    "weekdays",
)


def _validate_rule(values: dict[str, Any], errors: FieldErrors) -> None:
    kind = values.get("kind")
    name = values.get("name")
    if name is not None and not 1 <= len(name.strip()) <= 128:
        errors.add("name", "1–128 characters", "INVALID")
    currency = values.get("currency")
    if currency is not None and currency not in rules.CURRENCY_EXPONENTS:
        errors.add("currency", f"unknown currency {currency!r}", "UNKNOWN_CURRENCY")
    ppu = values.get("points_per_unit")
    if ppu is not None and not 0 <= ppu <= 1_000_000:
        errors.add("pointsPerUnit", "0–1000000", "OUT_OF_RANGE")
    if kind is RuleKind.BASE and not ppu:
        errors.add("pointsPerUnit", "a base rule needs a positive rate", "REQUIRED")
    multiplier = values.get("multiplier_permille")
    if multiplier is not None and not 0 <= multiplier <= 100_000:
        errors.add("multiplierPermille", "0–100000 (per-mille)", "OUT_OF_RANGE")
    if kind is RuleKind.CATEGORY_BONUS and not values.get("categories"):
        errors.add("categories", "a category bonus needs categories", "REQUIRED")
    days = values.get("days_of_month") or []
    if any(not 1 <= d <= 31 for d in days):
        errors.add("daysOfMonth", "days are 1–31", "OUT_OF_RANGE")
    weekdays = values.get("weekdays") or []
    if any(not 1 <= d <= 7 for d in weekdays):
        errors.add("weekdays", "weekdays are 1 (Monday) – 7 (Sunday)", "OUT_OF_RANGE")
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if isinstance(starts, datetime) and isinstance(ends, datetime) and ends <= starts:
        errors.add("endsAt", "must be after startsAt", "INVALID")


async def save_rule(
    *, actor: Principal, code: str, rule_id: int | None = None, **values: Any
) -> EarningRule:
    """Create a rule (``rule_id`` None) or change one. Raises ValidationError,
    :class:`EarningRuleNotFound`."""
    errors = FieldErrors()
    code = code.strip()
    if not 1 <= len(code) <= 64:
        errors.add("code", "1–64 characters", "INVALID")
    values = {k: v for k, v in values.items() if k in _RULE_FIELDS and v is not _UNSET}
    for key in ("categories", "channels", "days_of_month", "weekdays"):
        if key in values and values[key] is not None:
            values[key] = sorted(set(values[key]))
    async with in_transaction() as conn:
        if rule_id is None:
            if values.get("kind") is None:
                errors.add("kind", "required", "REQUIRED")
            _validate_rule(values, errors)
            if await EarningRule.filter(code=code).using_db(conn).exists():
                errors.add("code", "already used by another rule", "DUPLICATE")
            errors.raise_if_any()
            now = clock.now()
            row = await EarningRule.create(
                using_db=conn, code=code, created_at=now, updated_at=now, **values
            )
        else:
            row = await EarningRule.get_or_none(id=rule_id).using_db(conn)
            if row is None:
                raise EarningRuleNotFound(rule_id)
            merged = {f: getattr(row, f) for f in _RULE_FIELDS} | values
            merged["kind"] = RuleKind(merged["kind"])
            _validate_rule(merged, errors)
            if code != row.code and await EarningRule.filter(code=code).using_db(conn).exists():
                errors.add("code", "already used by another rule", "DUPLICATE")
            errors.raise_if_any()
            for key, value in values.items():
                setattr(row, key, value)
            row.code = code
            row.updated_at = clock.now()
            await row.save(using_db=conn)
        await audit.record(
            actor=actor,
            action="points.rule.save",
            target_type="EarningRule",
            target_id=row.id,
            details={"code": row.code, "created": rule_id is None},
            connection=conn,
        )
    return row
