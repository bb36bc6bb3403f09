"""`clghub run` end to end under injected faults and SIGKILL: it ends where a clean run ends.

Every fault kind of the sandbox (429 with and without Retry-After, 500, 503,
dropped connections, stalls longer than the client's timeout, truncated
bodies), and kills aimed at each stage. After each, the store (row for row),
the value fields in both CRMs and the Slack messages equal those of an
uninterrupted, fault-free run; no CRM field was ever written with two
different values, and no message was posted twice.
"""

from __future__ import annotations

import random

import pytest

from clghub.http import METRICS
from clghub.sandbox.state import FAULT_KINDS
from tests.resilience.conftest import Org
from tests.support.chaos import (
    STAGES,
    cli,
    control,
    kill_during,
    rewritten_fields,
)
from tests.support.store_state import SOURCE_CLOCK, summarize


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.4])
def test_a_run_under_faults_ends_as_the_clean_run(org: Org, rate: float) -> None:
    config, store = org.fresh_run(f"faults-{rate}")
    control(org.server, "POST", "/_sandbox/faults", {"rate": rate, "seed": 3, "slow_seconds": 1.3})
    METRICS.reset()
    result = cli(config, "run")
    injected = control(org.server, "GET", "/_sandbox/faults")["injected"]
    control(org.server, "POST", "/_sandbox/faults", {"rate": 0.0})
    assert result.code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sum(injected.values()) >= 5
    if rate == 0.4:
        assert set(injected) == set(FAULT_KINDS), injected
    assert sum(METRICS.snapshot().values()) > 0
    outcome = org.outcome(store)
    differences = org.reference.outcome.differences(outcome)
    assert not differences, summarize(differences)
    assert rewritten_fields(org.server) == []
    # Faulted posts were looked up before any repost: as many messages as the clean run.
    assert len(outcome.slack) == len(org.reference.outcome.slack)


def test_sigkill_in_every_stage_then_a_rerun_converges(org: Org) -> None:
    rng = random.Random(20261207)
    landed = []
    for stage in STAGES:
        config, store = org.fresh_run(f"kill-{stage}")
        # Somewhere inside the stage, judged by how long it took in the clean run.
        delay = rng.uniform(0.0, 0.8 * org.reference.seconds.get(stage, 0.5))
        kill = kill_during(config, store, stage, delay)
        landed.append(kill.killed_in)
        rerun = cli(config, "run")
        assert rerun.code == 0, f"after a kill in {stage}: " + rerun.stderr[-3000:]
        # Like the reference's second run, the rerun read back the CRM writes made
        # before it, whose CRM clocks no two runs share.
        outcome = org.outcome(store, clocks=SOURCE_CLOCK)
        differences = org.reference.echoed.differences(outcome)
        assert not differences, f"killed in {kill.killed_in}:\n" + summarize(
            sorted(differences, key=lambda d: d.split("(", 1)[-1]), 6
        )
        assert rewritten_fields(org.server) == [], f"killed in {kill.killed_in}"
    # The kills hit the stages they were aimed at (not the end of the run).
    assert None not in landed, landed
    assert len(set(landed) & set(STAGES)) >= 3, landed
