"""Tier rules as plain values, and the checks a ladder must pass (stored or proposed)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty import clock
from loyalty.errors import FieldErrors
from loyalty.tiers.models import Metric, Tier, Window

CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
MAX_DAYS = 3660
MAX_THRESHOLD = 10**15


@dataclass(frozen=True)
class TierRule:
    """One rung: qualify with ``metric`` ≥ ``threshold`` over ``window`` (ending now)."""

    code: str
    name: str
    rank: int
    metric: Metric = Metric.SPEND
    threshold: int = 0
    window: Window = Window.ROLLING_DAYS
    window_days: int | None = 365
    retention_days: int | None = 365
    multiplier_permille: int = 1000
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", Metric(self.metric))
        object.__setattr__(self, "window", Window(self.window))

    @classmethod
    def from_model(cls, row: Tier) -> TierRule:
        return cls(
            code=row.code,
            name=row.name,
            rank=row.rank,
            metric=Metric(row.metric),
            threshold=row.threshold,
            window=Window(row.window),
            window_days=row.window_days,
            retention_days=row.retention_days,
            multiplier_permille=row.multiplier_permille,
            description=row.description,
        )

    def with_changes(self, **changes: Any) -> TierRule:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def window_start(self, at: datetime) -> datetime:
        """First instant counted when evaluating at ``at`` (inclusive), UTC."""
        if self.window is Window.CALENDAR_YEAR:
            zone = clock.business_zone()
            year = at.astimezone(zone).year
            return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
        return at - timedelta(days=self.window_days or 0)

    def expiry_from(self, at: datetime) -> datetime | None:
        return at + timedelta(days=self.retention_days) if self.retention_days else None


def check_rule(rule: TierRule, errors: FieldErrors, prefix: str) -> None:
    """Field errors of one rule (``prefix`` is the input path, e.g. ``input`` or ``rules[2]``)."""
    if not CODE_RE.match(rule.code):
        errors.add(f"{prefix}.code", "1–32 of A–Z, 0–9 and _, starting with a letter")
    if not rule.name.strip() or len(rule.name) > 64:
        errors.add(f"{prefix}.name", "1–64 characters", "REQUIRED" if not rule.name else "INVALID")
    if not 0 <= rule.rank <= 1000:
        errors.add(f"{prefix}.rank", "must be 0–1000")
    if rule.threshold < 0:
        errors.add(f"{prefix}.threshold", "must not be negative", "NEGATIVE")
    elif rule.threshold > MAX_THRESHOLD:
        errors.add(f"{prefix}.threshold", "too large")
    if rule.window is Window.ROLLING_DAYS:
        if rule.window_days is None or not 1 <= rule.window_days <= MAX_DAYS:
            errors.add(f"{prefix}.windowDays", f"a rolling window needs 1–{MAX_DAYS} days")
    elif rule.window_days is not None:
        errors.add(f"{prefix}.windowDays", "only a rolling window takes a number of days")
    if rule.retention_days is not None and not 1 <= rule.retention_days <= MAX_DAYS:
        errors.add(f"{prefix}.retentionDays", f"must be 1–{MAX_DAYS} days (or null: never)")
    if not 100 <= rule.multiplier_permille <= 10_000:
        errors.add(f"{prefix}.multiplierPermille", "must be 100–10000 (1000 = x1)")
    if len(rule.description) > 2000:
        errors.add(f"{prefix}.description", "at most 2000 characters", "TOO_LONG")


def check_ladder(
    rules: Sequence[TierRule], errors: FieldErrors, prefix: str, *, indexed: bool = True
) -> None:
    """Errors of a whole ladder: each rule, unique codes and ranks, an entry tier at 0, and
    thresholds rising with rank among tiers measured the same way.

    With ``indexed`` the paths are ``prefix[i].field``; otherwise every error is reported on
    ``prefix.field`` (a single edited tier checked against the stored ladder).
    """

    def path(i: int) -> str:
        return f"{prefix}[{i}]" if indexed else prefix

    if not rules:
        errors.add(prefix, "a ladder needs at least one tier", "REQUIRED")
        return
    seen_codes: dict[str, int] = {}
    seen_ranks: dict[int, int] = {}
    for i, rule in enumerate(rules):
        if indexed:
            check_rule(rule, errors, path(i))
        if rule.code in seen_codes:
            errors.add(f"{path(i)}.code", f"duplicate code {rule.code}", "DUPLICATE")
        if rule.rank in seen_ranks:
            errors.add(f"{path(i)}.rank", f"duplicate rank {rule.rank}", "DUPLICATE")
        seen_codes.setdefault(rule.code, i)
        seen_ranks.setdefault(rule.rank, i)
    ordered = sorted(enumerate(rules), key=lambda pair: pair[1].rank)
    entry_index, entry = ordered[0]
    if entry.threshold != 0:
        errors.add(
            f"{path(entry_index)}.threshold",
            "the lowest-ranked tier is the entry tier and must have threshold 0",
        )
    last: dict[tuple[Metric, Window, int | None], TierRule] = {}
    for i, rule in ordered:
        key = (rule.metric, rule.window, rule.window_days)
        lower = last.get(key)
        if lower is not None and rule.threshold <= lower.threshold:
            errors.add(
                f"{path(i)}.threshold",
                f"must be above {lower.code}'s threshold ({lower.threshold}), which ranks lower",
                "NOT_ASCENDING",
            )
        last[key] = rule
