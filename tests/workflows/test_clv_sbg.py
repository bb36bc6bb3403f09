"""The sBG model: published fits of Fader & Hardie, survival identities, DERL."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import betaln

from clghub.workflows import sbg
from clghub.workflows.clv import fit_sbg
from clghub.workflows.sbg import SbgFit, fit_sbg_counts

# Fader & Hardie (2007), "How to Project Customer Retention", Journal of
# Interactive Marketing 21(1): survivors of 1,000 customers over years 0..7,
# and the maximum-likelihood fits the paper reports for them.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
PUBLISHED = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


@pytest.mark.parametrize(("name", "survivors"), [("regular", REGULAR), ("high_end", HIGH_END)])
def test_fit_reproduces_fader_hardie_2007(name: str, survivors: list[int]) -> None:
    fit = fit_sbg(survivors)
    alpha, beta = PUBLISHED[name]
    assert fit.alpha == pytest.approx(alpha, abs=6e-4)
    assert fit.beta == pytest.approx(beta, abs=6e-4)
    assert fit.converged
    assert not fit.at_bound
    assert fit.customers == 1000
    assert fit.periods == 7
    # The fit's own curve is close to the data it was fitted on (paper, figure 2).
    for t, observed in enumerate(fit.observed_survival, start=1):
        assert observed == pytest.approx(survivors[t] / 1000)
        assert abs(fit.survival(t) - observed) < 0.02
    # The likelihood is the maximum: no nearby point is better.
    best = _log_likelihood(fit.alpha, fit.beta, survivors)
    assert fit.log_likelihood == pytest.approx(best)
    for da, db in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert _log_likelihood(fit.alpha + da, fit.beta + db, survivors) < best


def _log_likelihood(alpha: float, beta: float, survivors: list[int]) -> float:
    """Fader & Hardie (2007) eq. 5, written out directly."""
    total = 0.0
    base = betaln(alpha, beta)
    for t in range(1, len(survivors)):
        churn = math.exp(betaln(alpha + 1, beta + t - 1) - base)
        total += (survivors[t - 1] - survivors[t]) * math.log(churn)
    last = len(survivors) - 1
    return total + survivors[-1] * (betaln(alpha, beta + last) - base)


def test_probabilities_fit_together() -> None:
    model = SbgFit.from_parameters(0.704, 1.182)
    assert model.survival(0) == 1.0
    assert model.churn_probability(1) == pytest.approx(0.704 / (0.704 + 1.182))
    running = 1.0
    for t in range(1, 30):
        running *= model.retention(t)
        assert model.survival(t) == pytest.approx(running)
        assert model.survival(t - 1) - model.survival(t) == pytest.approx(
            model.churn_probability(t)
        )
        # P(T = t) = (beta + t - 2) / (alpha + beta + t - 1) x P(T = t - 1)
        if t > 1:
            assert model.churn_probability(t) == pytest.approx(
                (1.182 + t - 2) / (0.704 + 1.182 + t - 1) * model.churn_probability(t - 1)
            )


def test_derl_is_the_discounted_sum_of_residual_survival() -> None:
    for alpha, beta in [(0.704, 1.182), (0.668, 3.806), (3.8, 15.2), (0.05, 0.3)]:
        model = SbgFit.from_parameters(alpha, beta)
        for d in (0.1, 0.03):
            for n in (0, 1, 4, 10):
                direct = sum(
                    model.survival(n + 1 + j) / model.survival(n) / (1 + d) ** j
                    for j in range(4000)
                )
                assert model.derl(d, n) == pytest.approx(direct, rel=1e-9)
                # A just-acquired customer's discounted expected lifetime:
                # 2F1(1, beta; alpha + beta; 1/(1+d)) = 1 + DERL(d | 0) / (1 + d).
        discounted = sum(model.survival(t) / 1.1**t for t in range(4000))
        assert 1 + model.derl(0.1, 0) / 1.1 == pytest.approx(discounted, rel=1e-9)


def test_derl_matches_an_independent_implementation() -> None:
    """The eCLV R functions (K. Khitalishvili) truncate the sums at 70 periods; with
    their fit of the high-end data they print DEL = 5.920551 and DERL(renewals = 4)
    = 6.893253 at d = 0.1. The same truncated sums of this model agree, so
    "renewals = n" means the same thing in both."""
    model = SbgFit.from_parameters(0.6677123, 3.8024773)
    z = 1 / 1.1
    del_70 = sum(model.survival(t) * z**t for t in range(71))
    derl_70 = sum(model.survival(t) / model.survival(4) * z ** (t - 5) for t in range(5, 71))
    assert del_70 == pytest.approx(5.920551, abs=1e-6)
    assert derl_70 == pytest.approx(6.893253, abs=1e-6)
    assert model.derl(0.1, 4) > derl_70  # the full sum adds the tail after 70 periods


def test_derl_falls_back_to_the_sum_where_scipy_gives_up() -> None:
    # scipy's hyp2f1 returns nan here; the defining sum does not.
    model = SbgFit.from_parameters(5.0, 1e4)
    value = model.derl(0.001, 0)
    retention = [(1e4 + t - 1) / (5 + 1e4 + t - 1) for t in range(1, 200_000)]
    direct, product = 0.0, 1.0
    for j, rate in enumerate(retention):
        product *= rate
        direct += product / 1.001**j
    assert value == pytest.approx(direct, rel=1e-9)


def test_multi_cohort_fit_maximizes_the_multi_cohort_likelihood() -> None:
    """Cohorts observed for 4, 3, 2 and 1 periods (Fader & Hardie, "Fitting the sBG
    model to multi-cohort data", 2007): censored counts per cohort."""
    cohorts = [[10000, 8000, 6480, 5307, 4391], [10000, 8000, 6480, 5307], [10000, 8000, 6480]]
    churned: dict[int, int] = {}
    censored: dict[int, int] = {}
    for survivors in cohorts:
        for t in range(1, len(survivors)):
            churned[t] = churned.get(t, 0) + survivors[t - 1] - survivors[t]
        censored[len(survivors) - 1] = censored.get(len(survivors) - 1, 0) + survivors[-1]
    fit = fit_sbg_counts(churned, censored)

    def negative(params: np.ndarray) -> float:
        return -sum(_log_likelihood(*np.exp(params), survivors) for survivors in cohorts)

    reference = minimize(negative, np.log([1.0, 1.0]), method="Nelder-Mead", tol=1e-12)
    alpha, beta = np.exp(reference.x)
    assert fit.alpha == pytest.approx(alpha, rel=1e-4)
    assert fit.beta == pytest.approx(beta, rel=1e-4)
    assert fit.customers == 30000
    # Kaplan-Meier: period 4 is seen only in the first cohort.
    assert fit.observed_survival[3] == pytest.approx(0.8 * 0.81 * (5307 / 6480) * (4391 / 5307))


def test_degenerate_data_is_flagged() -> None:
    nobody_left = fit_sbg([50, 50, 50])
    assert nobody_left.warning is not None
    assert "no customer churned" in nobody_left.warning
    assert nobody_left.retention(3) > 0.999
    assert math.isfinite(nobody_left.derl(0.1, 2))
    everybody_left = fit_sbg([50, 0])
    assert everybody_left.warning is not None
    assert "no customer renewed" in everybody_left.warning
    one_period = fit_sbg([50, 40])
    assert one_period.warning is not None
    assert "only one period" in one_period.warning
    assert one_period.retention(1) == pytest.approx(0.8)
    assert fit_sbg(REGULAR).warning is None


@pytest.mark.parametrize(
    ("survivors", "message"),
    [
        ([100], "at least one period"),
        ([0, 0], "cohort size"),
        ([100, 120], "must not grow"),
        ([100, 50, -1], "must not grow or go below 0"),
    ],
)
def test_bad_survivors_are_refused(survivors: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_sbg(survivors)


def test_nothing_observed_is_refused() -> None:
    with pytest.raises(ValueError, match="full period"):
        fit_sbg_counts({}, {0: 12})


def test_documented_example_runs() -> None:
    failures, tried = doctest.testmod(sbg, raise_on_error=False)
    assert tried >= 3
    assert failures == 0
