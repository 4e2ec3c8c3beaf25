"""Cox model and concordance index (engine.learning.survival)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.learning.models import FeatureSpec
from engine.learning.survival import concordance_index, cross_validate_survival, fit_survival


def brute_force_concordance(t, e, r) -> float:
    concordant = comparable = 0.0
    for i in range(len(t)):
        if not e[i]:
            continue
        for j in range(len(t)):
            if t[i] < t[j] or (t[i] == t[j] and not e[j]):
                comparable += 1
                concordant += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    return concordant / comparable


@pytest.mark.parametrize("seed", range(4))
def test_concordance_matches_the_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 15, 250).astype(float)
    e = rng.random(250) < 0.6
    r = rng.integers(0, 20, 250).astype(float)
    assert concordance_index(t, e, r) == pytest.approx(brute_force_concordance(t, e, r), abs=1e-12)


def test_concordance_extremes():
    t = np.arange(1.0, 11.0)
    e = np.ones(10, dtype=bool)
    assert concordance_index(t, e, -t) == 1.0
    assert concordance_index(t, e, t) == 0.0
    assert np.isnan(concordance_index(t, np.zeros(10, dtype=bool), t))


def exponential_world(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"risk": rng.normal(0, 1, n), "noise": rng.normal(0, 1, n), "plan": rng.choice(["a", "b"], n)})
    hazard = 0.02 * np.exp(1.0 * frame["risk"] + 0.5 * (frame["plan"] == "a"))
    time = rng.exponential(1 / hazard)
    censor = rng.uniform(0, 150, n)
    frame["duration"] = np.minimum(time, censor).round()
    frame["event"] = (time <= censor).astype(int)
    return frame


def test_cox_recovers_the_hazard_ordering_and_median_time():
    data = exponential_world()
    spec = FeatureSpec(("risk", "noise"), ("plan",))
    model = fit_survival(data, data["duration"], data["event"], spec)
    risk = model.risk(data)
    assert concordance_index(data["duration"], data["event"], risk) > 0.7
    assert np.corrcoef(risk, data["risk"])[0, 1] > 0.8
    low, high = data.head(1).assign(risk=-2.0), data.head(1).assign(risk=2.0)
    assert model.survival_at(high, 30)[0] < model.survival_at(low, 30)[0]
    median_high = model.median_time(high)[0]
    assert np.isfinite(median_high) and median_high < 40  # true median ln2/(0.02 e^2) ≈ 4.7 (x1.6 if plan a)
    assert np.isnan(model.median_time(low)[0]) or model.median_time(low)[0] > median_high


def test_cross_validated_concordance_is_reported():
    data = exponential_world(800)
    result = cross_validate_survival(data, data["duration"], data["event"], FeatureSpec(("risk", "noise")), folds=3)
    assert result["concordance"] > 0.7 and result["folds"] == 3
