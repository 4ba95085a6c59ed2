"""Predictive CLV models against the CDNOW sample (Fader, Hardie & Lee 2005) and against
brute-force integration over the posterior. No database."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special

from loyalty.analytics import (
    BGNBDParams,
    CLVInputError,
    CustomerSummary,
    GammaGammaParams,
    bgnbd_conditional_expected_purchases,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    bgnbd_log_likelihood_terms,
    bgnbd_probability_alive,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
    predicted_clv,
    summarize_orders,
)
from loyalty.analytics.clv import WEEKS_PER_MONTH

CDNOW = Path(__file__).parent.parent / "data" / "CDNOW_sample.txt"
CALIBRATION_END = dt.date(1997, 9, 30)
# The published estimates (FHL 2005) on the CDNOW sample.
PUBLISHED = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def cdnow() -> CustomerSummary:
    ids, dates, amounts = [], [], []
    for line in CDNOW.read_text().splitlines():
        _full_id, sample_id, day, _cds, amount = line.split()
        ids.append(int(sample_id))
        dates.append(dt.date(int(day[:4]), int(day[4:6]), int(day[6:])))
        amounts.append(float(amount))
    return summarize_orders(ids, dates, amounts, calibration_end=CALIBRATION_END)


@pytest.fixture(scope="module")
def bgnbd(cdnow: CustomerSummary) -> BGNBDParams:
    return fit_bgnbd(cdnow.x, cdnow.t_x, cdnow.T)


@pytest.fixture(scope="module")
def gamma_gamma(cdnow: CustomerSummary) -> GammaGammaParams:
    repeat = cdnow.x > 0
    return fit_gamma_gamma(cdnow.x[repeat], cdnow.m_x[repeat])


# --- loading order histories -------------------------------------------------------------------


def test_cdnow_calibration_summary(cdnow: CustomerSummary) -> None:
    assert len(cdnow) == 2357
    assert int((cdnow.x > 0).sum()) == 946
    assert np.all(cdnow.t_x <= cdnow.T)
    # Everyone was acquired in the first quarter of 1997: ages between 39 and 39 + 13 weeks.
    assert cdnow.T.min() >= (CALIBRATION_END - dt.date(1997, 3, 31)).days / 7
    assert cdnow.T.max() == (CALIBRATION_END - dt.date(1997, 1, 1)).days / 7


def test_summary_follows_the_counting_rules() -> None:
    # Given customer 7: two records on the first day, a repeat on 10 Jan (two records), one on
    # 22 Jan, one after the calibration end; customer 3: one purchase; customer 9: only after.
    rows = [
        (7, "2024-01-01", 10.0),
        (7, "2024-01-01", 5.0),
        (3, "2024-01-29", 8.0),
        (7, "2024-01-10", 4.0),
        (7, "2024-01-10", 6.0),
        (7, "2024-01-22", 30.0),
        (7, "2024-02-15", 99.0),
        (9, "2024-02-20", 50.0),
    ]
    ids, days, amounts = zip(*rows, strict=True)
    summary = summarize_orders(
        list(ids),
        list(days),
        list(amounts),
        calibration_end=dt.date(2024, 1, 29),
        holdout_end=dt.date(2024, 3, 31),
    )
    assert summary.customer_id.tolist() == [3, 7]
    assert summary.x.tolist() == [0.0, 2.0]
    assert summary.t_x.tolist() == [0.0, 3.0]
    assert summary.T.tolist() == [0.0, 4.0]
    assert summary.m_x.tolist() == [0.0, 20.0]  # (4 + 6 + 30) / 2 repeat purchases
    assert summary.first_amount.tolist() == [8.0, 15.0]
    assert summary.x_holdout.tolist() == [0.0, 1.0]


def test_summary_refuses_bad_records() -> None:
    with pytest.raises(CLVInputError):
        summarize_orders([1, 2], ["2024-01-01"], [1.0, 2.0], calibration_end=dt.date(2024, 2, 1))
    with pytest.raises(CLVInputError):
        summarize_orders([1], ["not a date"], [1.0], calibration_end=dt.date(2024, 2, 1))
    with pytest.raises(CLVInputError):
        summarize_orders([1], ["2024-01-01"], [math.nan], calibration_end=dt.date(2024, 2, 1))


# --- BG/NBD -----------------------------------------------------------------------------------


def test_bgnbd_fit_reproduces_the_published_estimates(bgnbd: BGNBDParams) -> None:
    assert bgnbd.converged
    assert bgnbd.n == 2357
    for name in ("r", "alpha", "a", "b"):
        assert getattr(bgnbd, name) == pytest.approx(getattr(PUBLISHED, name), rel=0.01), name
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_likelihood_at_the_published_estimates(cdnow: CustomerSummary) -> None:
    ll = bgnbd_log_likelihood(0.243, 4.414, 0.793, 2.426, cdnow.x, cdnow.t_x, cdnow.T)
    assert ll == pytest.approx(-9582.4, abs=0.5)


def test_bgnbd_fit_on_counted_distinct_rows_equals_fit_on_customers(
    cdnow: CustomerSummary, bgnbd: BGNBDParams
) -> None:
    rows, counts = np.unique(
        np.stack([cdnow.x, cdnow.t_x, cdnow.T], axis=1), axis=0, return_counts=True
    )
    assert rows.shape[0] < len(cdnow)
    grouped = fit_bgnbd(rows[:, 0], rows[:, 1], rows[:, 2], weights=counts)
    assert grouped.n == 2357
    for name in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(grouped, name) == pytest.approx(getattr(bgnbd, name), rel=1e-4), name


def _posterior_integrals(
    params: BGNBDParams, x: float, t_x: float, T: float, t: float
) -> tuple[float, float, float]:
    """(∫∫ L·prior, ∫∫ alive part of L·prior, ∫∫ alive part · expected count · prior) by
    quadrature over λ and p, each scaled by the closed-form likelihood so they are O(1).

    Given (λ, p): L = (1-p)^x λ^x e^{-λT} (alive at T) + [x>0] p (1-p)^{x-1} λ^x e^{-λ t_x},
    and a customer alive at T makes (1 - e^{-λ p t}) / p purchases in (T, T+t] on average.
    p = u^{1/a} removes the prior's p^{a-1} singularity at 0.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_scale = float(bgnbd_log_likelihood_terms(r, alpha, a, b, x, t_x, T))
    log_prior_const = r * math.log(alpha) - special.gammaln(r) - special.betaln(a, b) - math.log(a)

    def pieces(lam: float, u: float) -> tuple[float, float, float]:
        p = u ** (1.0 / a)
        if lam <= 0.0 or p >= 1.0:
            return 0.0, 0.0, 0.0
        # Prior density in (λ, u): λ^{r-1} e^{-αλ} α^r/Γ(r) · (1-p)^{b-1}/(a·B(a, b)).
        base = log_prior_const + (r - 1.0) * math.log(lam) - alpha * lam
        base += (b - 1.0) * math.log1p(-p) + x * math.log(lam) - log_scale
        alive = math.exp(base + x * math.log1p(-p) - lam * T)
        dead = 0.0
        if x > 0:
            dead = math.exp(base + math.log(p) + (x - 1.0) * math.log1p(-p) - lam * t_x)
        future = -math.expm1(-lam * p * t) / p if p > 0 else lam * t
        return alive + dead, alive, alive * future

    # Split λ at a few multiples of its posterior scale so quadrature sees the mass.
    scale = (r + x) / (alpha + t_x)
    cuts = [0.0, scale, 10.0 * scale, math.inf]

    def integral(which: int) -> float:
        def over_lambda(u: float) -> float:
            return sum(
                integrate.quad(
                    lambda lam: pieces(lam, u)[which], lo, hi, epsabs=0.0, epsrel=1e-8, limit=100
                )[0]
                for lo, hi in itertools.pairwise(cuts)
            )

        return integrate.quad(over_lambda, 0.0, 1.0, epsabs=0.0, epsrel=1e-7, limit=100)[0]

    return integral(0), integral(1), integral(2)


MEMBERS = [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 29.43, 32.43), (1, 2.0, 51.0)]


@pytest.mark.parametrize(("x", "t_x", "T"), MEMBERS)
def test_conditional_expectation_equals_integration_over_the_posterior(
    x: float, t_x: float, T: float
) -> None:
    t = 39.0
    likelihood, alive, future = _posterior_integrals(PUBLISHED, x, t_x, T, t)
    # The closed-form likelihood is the integral of the individual likelihood over the priors.
    assert likelihood == pytest.approx(1.0, rel=1e-6)
    expected = float(bgnbd_conditional_expected_purchases(PUBLISHED, t, x, t_x, T))
    assert expected == pytest.approx(future / likelihood, rel=1e-5)
    p_alive = float(bgnbd_probability_alive(PUBLISHED, x, t_x, T))
    assert p_alive == pytest.approx(alive / likelihood, rel=1e-5)


def test_probability_alive_is_one_without_repeat_purchases(cdnow: CustomerSummary) -> None:
    # P(alive) = 1 / (1 + [x>0]·a/(b+x-1)·((α+T)/(α+t_x))^(r+x)): the dropout term needs a
    # repeat purchase, since a customer can only drop out right after one.
    none = cdnow.x == 0
    assert none.sum() == 2357 - 946
    assert np.all(
        bgnbd_probability_alive(PUBLISHED, cdnow.x[none], cdnow.t_x[none], cdnow.T[none]) == 1.0
    )
    assert np.all(
        bgnbd_probability_alive(PUBLISHED, cdnow.x[~none], cdnow.t_x[~none], cdnow.T[~none]) < 1.0
    )


def test_recent_buyers_are_more_likely_alive() -> None:
    t_x = np.linspace(0.5, 38.0, 60)
    for x in (1, 3, 10):
        p_alive = bgnbd_probability_alive(PUBLISHED, x, t_x, 38.0)
        assert np.all(np.diff(p_alive) > 0)
        expected = bgnbd_conditional_expected_purchases(PUBLISHED, 52.0, x, t_x, 38.0)
        assert np.all(np.diff(expected) > 0)
    # More purchases at the same recent last purchase: more future purchases.
    expected = bgnbd_conditional_expected_purchases(PUBLISHED, 52.0, np.arange(1, 30), 37.0, 38.0)
    assert np.all(np.diff(expected) > 0)


def test_unconditional_expectation_is_the_conditional_one_at_age_zero() -> None:
    t = np.array([0.0, 1.0, 13.0, 39.0, 78.0, 520.0])
    unconditional = bgnbd_expected_purchases(PUBLISHED, t)
    assert unconditional[0] == 0.0
    assert np.all(np.diff(unconditional) > 0)
    assert unconditional == pytest.approx(
        bgnbd_conditional_expected_purchases(PUBLISHED, t, 0, 0.0, 0.0), rel=1e-12
    )
    # For small t a new customer buys at the mean rate r/α.
    assert float(bgnbd_expected_purchases(PUBLISHED, 1e-6)) == pytest.approx(
        PUBLISHED.r / PUBLISHED.alpha * 1e-6, rel=1e-4
    )


def test_expectation_is_continuous_across_a_equal_to_one() -> None:
    values = [
        float(
            bgnbd_conditional_expected_purchases(BGNBDParams(0.5, 4.0, a, 2.5), 52.0, 3, 30.0, 38.0)
        )
        for a in (1.0 - 1e-3, 1.0 - 1e-9, 1.0, 1.0 + 1e-9, 1.0 + 1e-3)
    ]
    assert all(math.isfinite(v) for v in values)
    assert values[2] == pytest.approx(values[0], rel=1e-3)
    assert values[2] == pytest.approx(values[4], rel=1e-3)
    assert values[1] == pytest.approx(values[2], rel=1e-8)
    assert values[3] == pytest.approx(values[2], rel=1e-8)


def test_heavy_buyers_stay_finite() -> None:
    x = np.array([0.0, 50.0, 500.0, 5000.0])
    t_x = np.array([0.0, 50.0, 100.0, 100.0])
    T = np.full(4, 104.0)
    terms = bgnbd_log_likelihood_terms(0.243, 4.414, 0.793, 2.426, x, t_x, T)
    assert np.all(np.isfinite(terms))
    expected = bgnbd_conditional_expected_purchases(PUBLISHED, 52.0, x, t_x, T)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    # A customer buying 48 times a week for two years, last seen 4 weeks ago, is likely gone.
    assert float(bgnbd_probability_alive(PUBLISHED, 5000, 100.0, 104.0)) < 1e-6


def test_bgnbd_refuses_impossible_histories() -> None:
    with pytest.raises(CLVInputError):
        bgnbd_probability_alive(PUBLISHED, 1, 10.0, 5.0)  # last purchase after the period
    with pytest.raises(CLVInputError):
        bgnbd_probability_alive(PUBLISHED, -1, 0.0, 5.0)
    with pytest.raises(CLVInputError):
        fit_bgnbd([], [], [])


# --- Gamma-Gamma and CLV ------------------------------------------------------------------------


def test_gamma_gamma_fit_reproduces_the_published_estimates(gamma_gamma: GammaGammaParams) -> None:
    assert gamma_gamma.converged
    assert gamma_gamma.n == 946
    assert gamma_gamma.p == pytest.approx(6.25, rel=0.01)
    assert gamma_gamma.q == pytest.approx(3.74, rel=0.01)
    assert gamma_gamma.gamma == pytest.approx(15.44, rel=0.01)


def test_expected_spend_shrinks_towards_the_population_mean(gamma_gamma: GammaGammaParams) -> None:
    g = gamma_gamma
    population = g.gamma * g.p / (g.q - 1.0)
    assert float(gamma_gamma_expected_spend(g, 0, 123.0)) == pytest.approx(population)
    spend = gamma_gamma_expected_spend(g, np.array([1, 5, 50]), 100.0)
    assert np.all((spend > population) & (spend < 100.0))
    assert np.all(np.diff(spend) > 0)  # more purchases: more weight on the customer's own mean
    with pytest.raises(CLVInputError):
        fit_gamma_gamma([0, 2], [10.0, 20.0])
    with pytest.raises(CLVInputError):
        fit_gamma_gamma([1, 2], [0.0, 20.0])


def test_clv_is_the_discounted_monthly_expected_purchases_times_spend(
    cdnow: CustomerSummary, bgnbd: BGNBDParams, gamma_gamma: GammaGammaParams
) -> None:
    members = slice(0, 40)
    x, t_x, T, m_x = cdnow.x[members], cdnow.t_x[members], cdnow.T[members], cdnow.m_x[members]
    spend = gamma_gamma_expected_spend(gamma_gamma, x, m_x)

    undiscounted = predicted_clv(bgnbd, gamma_gamma, x, t_x, T, m_x, monthly_discount_rate=0.0)
    year = bgnbd_conditional_expected_purchases(bgnbd, 12 * WEEKS_PER_MONTH, x, t_x, T)
    assert undiscounted == pytest.approx(year * spend, rel=1e-10)

    clv = predicted_clv(bgnbd, gamma_gamma, x, t_x, T, m_x, monthly_discount_rate=0.02)
    by_hand = np.zeros_like(clv)
    for k in range(1, 13):
        month = bgnbd_conditional_expected_purchases(
            bgnbd, k * WEEKS_PER_MONTH, x, t_x, T
        ) - bgnbd_conditional_expected_purchases(bgnbd, (k - 1) * WEEKS_PER_MONTH, x, t_x, T)
        by_hand += month * spend / 1.02**k
    assert clv == pytest.approx(by_hand, rel=1e-10)
    assert np.all(clv < undiscounted) and np.all(clv > undiscounted / 1.02**12)
