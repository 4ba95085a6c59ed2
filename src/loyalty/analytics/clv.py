"""Predictive customer lifetime value: BG/NBD purchase counts and Gamma-Gamma spend.

Pure functions on numpy arrays; no database access. Time is measured in one unit throughout
(the order-history loader uses weeks). References:

- Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2) — the BG/NBD model.
- Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", Journal of Marketing Research 42(4) — the Gamma-Gamma spend model.

Per customer: ``x`` repeat purchases, ``t_x`` time from the first to the last purchase
(recency), ``T`` time from the first purchase to the end of the calibration period (age),
``m_x`` mean amount of the repeat purchases. Every fit and likelihood accepts optional
``weights``: a row with weight ``w`` counts as ``w`` identical customers, so a caller may pass
distinct ``(x, t_x, T)`` triples with their counts instead of one row per customer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Mean length of a calendar month in weeks (365.25 / 12 / 7).
WEEKS_PER_MONTH = 365.25 / 12 / 7


class CLVInputError(ValueError):
    """The data handed to a model is not valid for it (negative counts, recency beyond age,
    non-positive spend, empty sample). Nothing is fitted or computed."""


# ---------------------------------------------------------------------------------------------
# Input checks


def _as_float(name: str, values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise CLVInputError(f"{name} contains a value that is not a finite number")
    return array


def _rfm(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    xa, ta, Ta = _as_float("x", x), _as_float("t_x", t_x), _as_float("T", T)
    xa, ta, Ta = np.broadcast_arrays(xa, ta, Ta)
    if np.any(xa < 0) or np.any(xa != np.floor(xa)):
        raise CLVInputError("x must be a non-negative whole number of repeat purchases")
    if np.any(ta < 0) or np.any(ta > Ta):
        raise CLVInputError("t_x must lie between 0 and T")
    if np.any((xa > 0) & (ta <= 0)):
        raise CLVInputError("a customer with repeat purchases has t_x > 0")
    return xa, ta, Ta


def _weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = _as_float("weights", weights).reshape(-1)
    if w.shape[0] != n or np.any(w < 0):
        raise CLVInputError("weights must be one non-negative number per customer")
    return w


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise CLVInputError(f"{name} must be a positive finite number")
    return float(value)


# ---------------------------------------------------------------------------------------------
# BG/NBD


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters.

    ``r``, ``alpha``: shape and rate of the gamma distribution of purchase rates λ (purchases
    per time unit while alive). ``a``, ``b``: beta distribution of the dropout probability p
    after each purchase. ``log_likelihood`` is the total over the sample, ``n`` the number of
    customers (sum of weights), ``converged`` whether the optimizer reported success.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n: int = 0
    converged: bool = True


def bgnbd_log_likelihood_terms(
    r: float, alpha: float, a: float, b: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-customer BG/NBD log-likelihood ln L(r, α, a, b | x, t_x, T) (FHL 2005, eq. 6).

    L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] · B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x)),
    evaluated in logs (gammaln, betaln) and combined with logaddexp.
    """
    x, t_x, T = _rfm(x, t_x, T)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    alive = special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    has_repeat = x > 0
    # For x = 0 the second term is absent; b + x - 1 would even be invalid there.
    x_dead = np.where(has_repeat, x, 1.0)
    dead = special.betaln(a + 1.0, b + x_dead - 1.0) - (r + x) * np.log(alpha + t_x)
    dead = np.where(has_repeat, dead, -np.inf)
    return common + np.logaddexp(alive, dead)


def bgnbd_log_likelihood(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
) -> float:
    """Total BG/NBD log-likelihood of a sample (weighted sum of the per-customer terms)."""
    terms = bgnbd_log_likelihood_terms(r, alpha, a, b, x, t_x, T).reshape(-1)
    return float(np.dot(_weights(weights, terms.shape[0]), terms))


_BGNBD_STARTS = (
    (0.0, 0.0, 0.0, 0.0),
    (np.log(0.5), np.log(5.0), np.log(0.5), np.log(2.0)),
    (np.log(2.0), np.log(20.0), np.log(2.0), np.log(8.0)),
)


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    starts: Sequence[Sequence[float]] | None = None,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit.

    Minimises the mean negative log-likelihood over the logs of (r, α, a, b) with L-BFGS-B from
    a few starting points (``starts``, in log space) and keeps the best. Raises
    :class:`CLVInputError` on invalid data or an empty sample.
    """
    xa, ta, Ta = (v.reshape(-1) for v in _rfm(x, t_x, T))
    w = _weights(weights, xa.shape[0])
    n = float(w.sum())
    if n <= 0:
        raise CLVInputError("the sample is empty")

    def objective(log_params: FloatArray) -> float:
        r, alpha, a, b = np.exp(log_params)
        terms = bgnbd_log_likelihood_terms(r, alpha, a, b, xa, ta, Ta)
        value = -float(np.dot(w, terms)) / n
        return value if np.isfinite(value) else 1e300

    best: Any = None
    for start in starts or _BGNBD_STARTS:
        result = optimize.minimize(
            objective,
            np.asarray(start, dtype=np.float64),
            method="L-BFGS-B",
            bounds=[(-20.0, 20.0)] * 4,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )
        if best is None or result.fun < best.fun:
            best = result
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    return BGNBDParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=-float(best.fun) * n,
        n=round(n),
        converged=bool(best.success),
    )


def _log_odds_dead(
    params: BGNBDParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """ln of a/(b+x-1) · ((α+T)/(α+t_x))^(r+x) for x > 0; -inf for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    has_repeat = x > 0
    x_safe = np.where(has_repeat, x, 1.0)
    log_odds = (
        np.log(a) - np.log(b + x_safe - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(has_repeat, log_odds, -np.inf)


def bgnbd_probability_alive(
    params: BGNBDParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) (FHL 2005, eq. 11 note):
    1 / (1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)).

    Under the BG/NBD a customer can drop out only right after a repeat purchase, so a customer
    with no repeat purchase (x = 0) is alive with probability 1.
    """
    xa, ta, Ta = _rfm(x, t_x, T)
    return special.expit(-_log_odds_dead(params, xa, ta, Ta))


def _expected_count(
    r: ArrayLike, alpha: ArrayLike, a: float, b: ArrayLike, t: ArrayLike
) -> FloatArray:
    """(a+b-1)/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b; a+b-1; t/(α+t))], the BG/NBD expected
    number of purchases in (0, t] of a customer alive at 0 with a gamma(r, α) purchase rate
    and a beta(a, b) dropout probability (r, α, b and t broadcast).

    Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the
    bracket into 1 - (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b-1; z). Its series converges quickly
    when r and b are large (the conditional expectation puts r+x and b+x there: C grows with x
    while C-A = a+b-1-r stays fixed) and the power is taken in logs, so it stays accurate as
    z → 1. The removable singularity at a = 1 is evaluated as the mean of a = 1 ± h.
    """
    if abs(a - 1.0) < 1e-6:
        h = 1e-4
        return 0.5 * (
            _expected_count(r, alpha, 1.0 - h, b, t) + _expected_count(r, alpha, 1.0 + h, b, t)
        )
    r, alpha, b, t = (np.asarray(v, dtype=np.float64) for v in (r, alpha, b, t))
    z = t / (alpha + t)
    c = a + b - 1.0
    log_decay = (a - 1.0) * (np.log(alpha) - np.log(alpha + t))
    hyp = special.hyp2f1(c - r, a - 1.0, c, z)
    bracket = -np.expm1(log_decay) + np.exp(log_decay) * (1.0 - hyp)
    return c / (a - 1.0) * bracket


def bgnbd_expected_purchases(params: BGNBDParams, t: ArrayLike) -> FloatArray:
    """Unconditional E[X(t)]: expected purchases in (0, t] of a customer who has just made the
    first purchase at time 0 (FHL 2005, eq. 9)."""
    ta = _as_float("t", t)
    if np.any(ta < 0):
        raise CLVInputError("t must be non-negative")
    return _expected_count(params.r, params.alpha, params.a, params.b, ta)


def bgnbd_conditional_expected_purchases(
    params: BGNBDParams, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005, eq. 10).

    Equals P(alive | x, t_x, T) times the expected count of a customer alive at T whose
    posterior is gamma(r+x, α+T) for λ and beta(a, b+x) for p.
    """
    xa, ta, Ta = _rfm(x, t_x, T)
    tt = _as_float("t", t)
    if np.any(tt < 0):
        raise CLVInputError("t must be non-negative")
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    alive_count = _expected_count(r + xa, alpha + Ta, a, b + xa, tt)
    return alive_count * special.expit(-_log_odds_dead(params, xa, ta, Ta))


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma spend per purchase


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters: each purchase amount is gamma(p, ν) with a customer's ν
    drawn from gamma(q, γ). The population mean spend per purchase is γ·p/(q-1) (q > 1).
    ``log_likelihood``, ``n`` and ``converged`` as for :class:`BGNBDParams`."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")
    n: int = 0
    converged: bool = True


def _spend(x: ArrayLike, m_x: ArrayLike) -> tuple[FloatArray, FloatArray]:
    xa, ma = np.broadcast_arrays(_as_float("x", x), _as_float("m_x", m_x))
    if np.any(xa <= 0) or np.any(xa != np.floor(xa)):
        raise CLVInputError("the Gamma-Gamma model needs customers with x > 0 repeat purchases")
    if np.any(ma <= 0):
        raise CLVInputError("m_x must be a positive mean spend per purchase")
    return xa, ma


def gamma_gamma_log_likelihood_terms(
    p: float, q: float, gamma: float, x: ArrayLike, m_x: ArrayLike
) -> FloatArray:
    """Per-customer log density of the mean spend m_x of x purchases (FHL 2005, RFM and CLV):

    f(m_x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q · m_x^(px-1) · x^(px) / (γ + m_x·x)^(px+q).
    """
    xa, ma = _spend(x, m_x)
    px = p * xa
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(ma)
        + px * np.log(xa)
        - (px + q) * np.log(gamma + ma * xa)
    )


def fit_gamma_gamma(
    x: ArrayLike,
    m_x: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    starts: Sequence[Sequence[float]] | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on customers with x > 0 (L-BFGS-B on the logs of
    p, q, γ from a few starting points). Raises :class:`CLVInputError` on x = 0 rows,
    non-positive spend or an empty sample."""
    xa, ma = (v.reshape(-1) for v in _spend(x, m_x))
    w = _weights(weights, xa.shape[0])
    n = float(w.sum())
    if n <= 0:
        raise CLVInputError("the sample is empty")
    scale = float(np.average(ma, weights=w))

    def objective(log_params: FloatArray) -> float:
        p, q, gamma = np.exp(log_params)
        value = -float(np.dot(w, gamma_gamma_log_likelihood_terms(p, q, gamma, xa, ma))) / n
        return value if np.isfinite(value) else 1e300

    default_starts = (
        (0.0, 0.0, 0.0),
        (np.log(2.0), np.log(3.0), np.log(scale)),
        (np.log(5.0), np.log(5.0), np.log(scale * 2.0)),
    )
    best: Any = None
    for start in starts or default_starts:
        result = optimize.minimize(
            objective,
            np.asarray(start, dtype=np.float64),
            method="L-BFGS-B",
            bounds=[(-20.0, 20.0)] * 3,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )
        if best is None or result.fun < best.fun:
            best = result
    p, q, gamma = (float(v) for v in np.exp(best.x))
    return GammaGammaParams(
        p=p,
        q=q,
        gamma=gamma,
        log_likelihood=-float(best.fun) * n,
        n=round(n),
        converged=bool(best.success),
    )


def gamma_gamma_expected_spend(
    params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike
) -> FloatArray:
    """E[M | x, m_x]: expected spend per future purchase,
    (γ + m_x·x)·p / (p·x + q - 1) — a weighted mean of the population mean γp/(q-1) and the
    customer's own m_x. For x = 0 (m_x ignored) it is the population mean. Needs q > 1."""
    xa, ma = np.broadcast_arrays(_as_float("x", x), _as_float("m_x", m_x))
    if np.any(xa < 0) or np.any(ma < 0):
        raise CLVInputError("x and m_x must be non-negative")
    if params.q <= 1.0:
        raise CLVInputError("the mean spend is infinite for q <= 1")
    ma = np.where(xa > 0, ma, 0.0)
    return (params.gamma + ma * xa) * params.p / (params.p * xa + params.q - 1.0)


# ---------------------------------------------------------------------------------------------
# CLV


def predicted_clv(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m_x: ArrayLike,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    weeks_per_month: float = WEEKS_PER_MONTH,
    margin: float = 1.0,
) -> FloatArray:
    """Discounted expected value of the next ``months`` months (time unit: weeks).

    CLV = margin · E[M | x, m_x] · Σ_{k=1..months} (E[Y(k·w)] - E[Y((k-1)·w)]) / (1 + d)^k,

    with E[Y(t)] = E[Y(t) | x, t_x, T] the BG/NBD conditional expected purchases in the next t
    weeks, w = ``weeks_per_month`` (a mean calendar month, 365.25/12/7 weeks) and
    d = ``monthly_discount_rate``: the purchases expected in month k are valued at the end of
    that month. d = 0 gives the undiscounted E[Y(12 months)] · E[M]. The default 1% a month is
    about 12.7% a year.
    """
    if months < 0:
        raise CLVInputError("months must be non-negative")
    if not (np.isfinite(monthly_discount_rate) and monthly_discount_rate > -1.0):
        raise CLVInputError("monthly_discount_rate must be greater than -1")
    _positive("weeks_per_month", weeks_per_month)
    xa, ta, Ta = _rfm(x, t_x, T)
    spend = gamma_gamma_expected_spend(gamma_gamma, xa, m_x)
    horizons = np.arange(months + 1, dtype=np.float64) * weeks_per_month
    # Shape (months + 1, *customers): cumulative expected purchases at each month end.
    cumulative = bgnbd_conditional_expected_purchases(
        bgnbd, horizons.reshape((-1,) + (1,) * xa.ndim), xa, ta, Ta
    )
    monthly = np.diff(cumulative, axis=0)
    discount = (1.0 + monthly_discount_rate) ** -np.arange(1, months + 1, dtype=np.float64)
    discounted = np.tensordot(discount, monthly, axes=(0, 0))
    return margin * spend * discounted


# ---------------------------------------------------------------------------------------------
# Order histories → per-customer summary


@dataclass(frozen=True)
class CustomerSummary:
    """Per-customer statistics of a calibration period (arrays aligned by position).

    ``customer_id``: ids of the customers whose first purchase falls on or before the
    calibration end, sorted. ``x``: repeat purchases; ``t_x``, ``T`` in weeks; ``m_x``: mean
    amount of the repeat purchases (0 where x = 0); ``first_amount``: amount of the first
    purchase. ``x_holdout``: purchases after the calibration end up to the holdout end (zeros
    when no holdout end was given).
    """

    customer_id: npt.NDArray[Any]
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m_x: FloatArray
    first_amount: FloatArray
    x_holdout: FloatArray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _days(name: str, values: ArrayLike | Sequence[dt.date]) -> npt.NDArray[np.int64]:
    try:
        days = np.asarray(values, dtype="datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise CLVInputError(f"{name} must hold dates") from exc
    if np.any(np.isnat(days)):
        raise CLVInputError(f"{name} contains a missing date")
    return days.astype(np.int64)


def summarize_orders(
    customer_ids: ArrayLike,
    dates: ArrayLike | Sequence[dt.date],
    amounts: ArrayLike,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
) -> CustomerSummary:
    """Turn order records (customer id, date, amount) into per-customer (x, t_x, T, m_x).

    Rules: the records of one customer on one day are one purchase (amounts added); only
    purchases on or before ``calibration_end`` count; x = purchases after the first one;
    t_x = weeks (days / 7) from the first to the last purchase; T = weeks from the first
    purchase to ``calibration_end``; m_x = mean amount of the repeat purchases. Customers whose
    first purchase is after ``calibration_end`` are left out. Dates are calendar days
    (``datetime.date``, ISO strings or ``datetime64``); times of day are dropped.
    """
    ids = np.asarray(customer_ids)
    days = _days("dates", dates)
    money = _as_float("amounts", amounts)
    if not (ids.ndim == days.ndim == money.ndim == 1) or not (
        ids.shape[0] == days.shape[0] == money.shape[0]
    ):
        raise CLVInputError("customer_ids, dates and amounts must be 1-d and of equal length")
    end = int(np.datetime64(calibration_end, "D").astype(np.int64))
    holdout = None if holdout_end is None else int(np.datetime64(holdout_end, "D").astype(np.int64))
    if holdout is not None and holdout < end:
        raise CLVInputError("holdout_end must not be before calibration_end")

    if ids.shape[0] == 0:
        empty = np.zeros(0)
        return CustomerSummary(ids[:0], empty, empty, empty, empty, empty, empty)

    unique_ids, customer = np.unique(ids, return_inverse=True)
    customer = customer.reshape(-1)
    # One purchase per (customer, day): sort by both and sum amounts over runs.
    order = np.lexsort((days, customer))
    c_sorted, d_sorted, m_sorted = customer[order], days[order], money[order]
    new_run = np.ones(c_sorted.shape[0], dtype=bool)
    new_run[1:] = (c_sorted[1:] != c_sorted[:-1]) | (d_sorted[1:] != d_sorted[:-1])
    starts = np.flatnonzero(new_run)
    p_customer, p_day = c_sorted[starts], d_sorted[starts]
    p_amount = np.add.reduceat(m_sorted, starts)

    n_customers = unique_ids.shape[0]
    in_cal = p_day <= end
    cal_customer, cal_day, cal_amount = p_customer[in_cal], p_day[in_cal], p_amount[in_cal]
    count = np.bincount(cal_customer, minlength=n_customers).astype(np.float64)
    acquired = count > 0
    first_day = np.full(n_customers, np.iinfo(np.int64).max)
    np.minimum.at(first_day, cal_customer, cal_day)
    last_day = np.full(n_customers, np.iinfo(np.int64).min)
    np.maximum.at(last_day, cal_customer, cal_day)
    total = np.bincount(cal_customer, weights=cal_amount, minlength=n_customers)
    # Purchases are sorted by day within a customer: the first calibration purchase of each
    # customer is where the customer changes.
    is_first = np.ones(cal_customer.shape[0], dtype=bool)
    is_first[1:] = cal_customer[1:] != cal_customer[:-1]
    first_amount = np.zeros(n_customers)
    first_amount[cal_customer[is_first]] = cal_amount[is_first]

    if holdout is not None:
        in_holdout = (p_day > end) & (p_day <= holdout)
        x_holdout = np.bincount(p_customer[in_holdout], minlength=n_customers).astype(np.float64)
    else:
        x_holdout = np.zeros(n_customers)

    x = count - 1.0
    keep = acquired
    x, first_day, last_day = x[keep], first_day[keep], last_day[keep]
    repeat_total = total[keep] - first_amount[keep]
    m_x = np.divide(repeat_total, x, out=np.zeros_like(repeat_total), where=x > 0)
    return CustomerSummary(
        customer_id=unique_ids[keep],
        x=x,
        t_x=(last_day - first_day) / 7.0,
        T=(end - first_day) / 7.0,
        m_x=m_x,
        first_amount=first_amount[keep],
        x_holdout=x_holdout[keep],
    )
