"""The shifted-beta-geometric (sBG) model of contract renewals.

Fader, P. S. and Hardie, B. G. S. (2007), "How to Project Customer
Retention", *Journal of Interactive Marketing* 21(1), 76-90; and (2010),
"Customer-Base Valuation in a Contractual Setting: The Perils of Ignoring
Heterogeneity", *Marketing Science* 29(1), 85-93.

Each customer renews at the end of every period with her own probability
``1 - theta``; ``theta`` varies across customers as Beta(alpha, beta). With T
the period in which a customer churns:

- P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
- survival S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta), S(0) = 1
- retention r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)
- discounted expected residual lifetime of a customer who has renewed n
  times, just before her next renewal decision, at discount rate d per period
  (Fader & Hardie 2010, eq. 6 with n - 1 renewals written as n):
  DERL(d | n) = sum_{j >= 0} S(n + 1 + j) / S(n) / (1 + d)^j
              = B(alpha, beta + n + 1) / B(alpha, beta + n)
                x 2F1(1, beta + n + 1; alpha + beta + n + 1; 1 / (1 + d))

This module is pure computation (numpy and scipy), usable without a store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, hyp2f1

__all__ = ["PARAMETER_BOUNDS", "SbgFit", "fit_sbg", "fit_sbg_counts"]

# alpha and beta are searched on a log scale between these bounds; a fit that
# ends on one says the data cannot tell (e.g. nobody ever churned).
PARAMETER_BOUNDS = (1e-3, 1e5)
_GRID = np.logspace(-2, 3, 11)
_SERIES_CHUNK = 4096
_SERIES_LIMIT = 10_000_000


@dataclass(frozen=True)
class SbgFit:
    """A fitted sBG model with its fit diagnostics."""

    alpha: float
    beta: float
    log_likelihood: float
    converged: bool
    message: str
    customers: int
    """Customers whose renewals entered the fit (observed at least one period)."""
    periods: int
    """The longest observed history, in periods."""
    at_bound: bool = False
    """An estimate sits on :data:`PARAMETER_BOUNDS`: the data cannot pin it down."""
    iterations: int = 0
    observed_survival: tuple[float, ...] = field(default=())
    """Kaplan-Meier survival S(1..periods) of the data (exact for one cohort)."""
    warning: str | None = None
    """Why the estimates say little (no churn seen, or an estimate on a bound)."""

    @classmethod
    def from_parameters(cls, alpha: float, beta: float) -> SbgFit:
        """A model from stored parameters (no fit diagnostics)."""
        if alpha <= 0 or beta <= 0:
            raise ValueError("alpha and beta must be above 0")
        return cls(alpha, beta, math.nan, True, "from stored parameters", 0, 0)

    def churn_probability(self, t: int) -> float:
        """P(T = t): the chance a new customer churns in period ``t`` (t >= 1)."""
        if t < 1:
            raise ValueError("periods are counted from 1")
        return math.exp(betaln(self.alpha + 1, self.beta + t - 1) - betaln(self.alpha, self.beta))

    def survival(self, t: int) -> float:
        """S(t): the fraction of a cohort still active after ``t`` periods."""
        if t < 0:
            raise ValueError("t must not be negative")
        return math.exp(betaln(self.alpha, self.beta + t) - betaln(self.alpha, self.beta))

    def retention(self, t: int) -> float:
        """r(t) = S(t) / S(t - 1): the renewal rate at the end of period ``t`` (t >= 1)."""
        if t < 1:
            raise ValueError("periods are counted from 1")
        return (self.beta + t - 1) / (self.alpha + self.beta + t - 1)

    def derl(self, discount: float, renewals: int) -> float:
        """Discounted expected residual lifetime, in periods' margins.

        For a customer who has renewed ``renewals`` times and stands just
        before her next renewal decision: the expected number of further
        periods she pays for, each discounted by ``1 / (1 + discount)`` per
        period after the first (which is paid at that renewal).
        """
        if discount <= 0:
            raise ValueError("the discount rate must be above 0")
        if renewals < 0:
            raise ValueError("renewals must not be negative")
        a, b, n = self.alpha, self.beta, renewals
        ratio = math.exp(betaln(a, b + n + 1) - betaln(a, b + n))
        closed = ratio * float(hyp2f1(1.0, b + n + 1, a + b + n + 1, 1.0 / (1.0 + discount)))
        if math.isfinite(closed):
            return closed
        # scipy's 2F1 gives up for some extreme parameters; the defining sum
        # converges geometrically, so it is summed directly instead.
        return _derl_series(self.alpha, self.beta, renewals, discount)

    def diagnostics(self) -> dict[str, object]:
        """JSON-ready fit diagnostics: convergence, likelihood, fitted vs observed survival."""
        return {
            "converged": self.converged,
            "message": self.message,
            "iterations": self.iterations,
            "at_bound": self.at_bound,
            "warning": self.warning,
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "periods": self.periods,
            "survival": [
                {
                    "period": t,
                    "observed": round(observed, 6),
                    "fitted": round(self.survival(t), 6),
                }
                for t, observed in enumerate(self.observed_survival, start=1)
            ],
        }


def fit_sbg(survivors: Sequence[int]) -> SbgFit:
    """Fit alpha and beta by maximum likelihood to one cohort's survivors.

    ``survivors[0]`` is the cohort's size and ``survivors[t]`` the number still
    active after ``t`` periods. The log-likelihood (Fader & Hardie 2007, eq. 5)
    is ``sum_t (survivors[t-1] - survivors[t]) ln P(T = t) + survivors[-1] ln S(T)``
    with T the last period observed.

    >>> fit = fit_sbg([1000, 869, 743, 653, 593, 551, 517, 491])  # "high end", F&H 2007
    >>> round(fit.alpha, 3), round(fit.beta, 3)
    (0.668, 3.806)
    >>> round(fit.retention(8), 3), round(fit.derl(0.10, renewals=7), 2)
    (0.942, 7.53)
    """
    counts = [int(count) for count in survivors]
    if len(counts) < 2:
        raise ValueError("survivors needs the cohort size and at least one period")
    if counts[0] <= 0:
        raise ValueError("survivors[0] (the cohort size) must be above 0")
    for t in range(1, len(counts)):
        if counts[t] < 0 or counts[t] > counts[t - 1]:
            raise ValueError(
                f"survivors must not grow or go below 0 (survivors[{t}] = {counts[t]}, "
                f"survivors[{t - 1}] = {counts[t - 1]})"
            )
    churned = {t: counts[t - 1] - counts[t] for t in range(1, len(counts))}
    censored = {len(counts) - 1: counts[-1]}
    return fit_sbg_counts(churned, censored)


def fit_sbg_counts(churned: Mapping[int, int], censored: Mapping[int, int]) -> SbgFit:
    """Fit alpha and beta to right-censored renewal histories of many cohorts.

    ``churned[t]`` counts customers who churned in period ``t``;
    ``censored[t]`` counts customers still active after their last fully
    observed period ``t`` (younger cohorts are observed for fewer periods).
    The log-likelihood is ``sum churned[t] ln P(T=t) + sum censored[t] ln S(t)``.
    """
    churn_t, churn_n = _arrays(churned, "churned")
    alive_t, alive_n = _arrays(censored, "censored")
    customers = int(churn_n.sum() + alive_n[alive_t > 0].sum())
    periods = int(max(churn_t.max(initial=0), alive_t.max(initial=0)))
    if customers == 0:
        raise ValueError("no customer has been observed for a full period")

    def negative_log_likelihood(log_params: np.ndarray) -> float:
        a, b = np.exp(log_params)
        base = betaln(a, b)
        value = float(np.sum(churn_n * (betaln(a + 1.0, b + churn_t - 1.0) - base)))
        value += float(np.sum(alive_n * (betaln(a, b + alive_t) - base)))
        return -value

    low, high = math.log(PARAMETER_BOUNDS[0]), math.log(PARAMETER_BOUNDS[1])
    grid = [(math.log(a), math.log(b)) for a in _GRID for b in _GRID]
    start = min(grid, key=lambda p: negative_log_likelihood(np.array(p)))
    result = minimize(
        negative_log_likelihood,
        np.array(start),
        method="L-BFGS-B",
        bounds=[(low, high), (low, high)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    log_a, log_b = (float(v) for v in result.x)
    at_bound = any(min(v - low, high - v) < 1e-6 for v in (log_a, log_b))
    warning = None
    if churn_n.sum() == 0:
        # The likelihood keeps rising as churn goes to zero: the estimates are
        # wherever the search stopped, and retention reads as almost 100%.
        warning = "no customer churned: retention cannot be estimated below 100%"
    elif customers == int(churned.get(1, 0)):
        warning = "no customer renewed: retention cannot be estimated above 0%"
    elif periods == 1:
        # One renewal rate identifies alpha / (alpha + beta) only, not their sum.
        warning = "only one period observed: how churn rates spread cannot be estimated"
    elif at_bound:
        warning = "an estimate sits on the search bound: the data cannot pin it down"
    return SbgFit(
        alpha=math.exp(log_a),
        beta=math.exp(log_b),
        log_likelihood=-float(result.fun),
        converged=bool(result.success),
        message=str(result.message),
        customers=customers,
        periods=periods,
        at_bound=at_bound,
        iterations=int(result.nit),
        observed_survival=_kaplan_meier(churned, censored, periods),
        warning=warning,
    )


def _arrays(counts: Mapping[int, int], name: str) -> tuple[np.ndarray, np.ndarray]:
    for t, n in counts.items():
        if n < 0:
            raise ValueError(f"{name}[{t}] must not be negative")
        if t < 0 or (name == "churned" and t < 1):
            raise ValueError(f"{name} has period {t}; periods are counted from 1")
    items = sorted((t, n) for t, n in counts.items() if n > 0)
    return (
        np.array([t for t, _ in items], dtype=float),
        np.array([n for _, n in items], dtype=float),
    )


def _kaplan_meier(
    churned: Mapping[int, int], censored: Mapping[int, int], periods: int
) -> tuple[float, ...]:
    """Observed survival S(1..periods), right-censoring handled (Kaplan-Meier)."""
    at_risk = sum(churned.values()) + sum(censored.values())
    survival = 1.0
    curve: list[float] = []
    for t in range(1, periods + 1):
        at_risk -= censored.get(t - 1, 0)
        lost = churned.get(t, 0)
        if at_risk > 0:
            survival *= 1.0 - lost / at_risk
        curve.append(survival)
        at_risk -= lost
    return tuple(curve)


def _derl_series(alpha: float, beta: float, renewals: int, discount: float) -> float:
    """sum_{j >= 0} S(n + 1 + j) / S(n) / (1 + d)^j, summed until the terms vanish."""
    log_z = -math.log1p(discount)
    total = 0.0
    log_term = 0.0
    done = 0
    while done < _SERIES_LIMIT:
        t = np.arange(renewals + 1 + done, renewals + 1 + done + _SERIES_CHUNK, dtype=float)
        steps = np.log((beta + t - 1.0) / (alpha + beta + t - 1.0)) + log_z
        steps[0] -= log_z if done == 0 else 0.0
        logs = log_term + np.cumsum(steps)
        terms = np.exp(logs)
        total += float(terms.sum())
        log_term = float(logs[-1])
        done += _SERIES_CHUNK
        if terms[-1] < 1e-17 * total:
            return total
    raise ArithmeticError("the residual lifetime sum did not converge")
