"""Uplift against the control group: a known simulated uplift lies inside the reported interval, and an effect of
zero is not reported as significant (at the interval's advertised rate)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.programs.outcomes import program_outcomes, uplift, wilson


def test_wilson_interval_contains_the_rate():
    low, high = wilson(30, 100)
    assert low < 0.3 < high and low > 0.2 and high < 0.41


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80, hybrid score interval 0.0524 to 0.3339
    result = uplift(56, 70, 48, 80)
    assert round(result.low, 4) == 0.0524 and round(result.high, 4) == 0.3339


def simulate(rng, n: int, base: float, effect: float, holdout: float = 0.2) -> pd.DataFrame:
    control = rng.random(n) < holdout
    success = rng.random(n) < np.where(control, base, base + effect)
    return pd.DataFrame({
        "status": "exited", "exit_reason": np.where(success, "recovered", "churned"), "holdout": control,
        "arr_at_entry": 10_000.0, "arr_at_end": 10_000.0,
    })  # fmt: skip


def test_a_known_uplift_lies_inside_the_interval_at_the_advertised_rate():
    rng = np.random.default_rng(11)
    inside = 0
    for _ in range(200):
        up = program_outcomes(simulate(rng, 2000, 0.3, 0.1), ("recovered",))["uplift"]
        inside += up["low"] <= 0.1 <= up["high"]
    assert inside >= 180  # 95 % nominal coverage: at least 90 % of 200 runs
    assert program_outcomes(simulate(rng, 5000, 0.3, 0.1), ("recovered",))["uplift"]["significant"]


def test_an_effect_of_zero_is_rarely_significant():
    rng = np.random.default_rng(12)
    significant = sum(
        program_outcomes(simulate(rng, 2000, 0.3, 0.0), ("recovered",))["uplift"]["significant"] for _ in range(200)
    )
    assert significant <= 20  # about 5 % expected
    figures = program_outcomes(simulate(rng, 2000, 0.3, 0.0), ("recovered",))
    assert figures["entered"] == 2000 and figures["exited"]["recovered"] + figures["exited"]["churned"] == 2000
