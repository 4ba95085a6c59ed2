"""Customer-base analytics: predictive lifetime value (BG/NBD, Gamma-Gamma) on numpy arrays."""

from loyalty.analytics.clv import (
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
    gamma_gamma_log_likelihood_terms,
    predicted_clv,
    summarize_orders,
)

__all__ = [
    "BGNBDParams",
    "CLVInputError",
    "CustomerSummary",
    "GammaGammaParams",
    "bgnbd_conditional_expected_purchases",
    "bgnbd_expected_purchases",
    "bgnbd_log_likelihood",
    "bgnbd_log_likelihood_terms",
    "bgnbd_probability_alive",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_expected_spend",
    "gamma_gamma_log_likelihood_terms",
    "predicted_clv",
    "summarize_orders",
]
