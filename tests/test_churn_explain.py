"""Risk drivers come from the model: they add up (linear), and they change when the driving feature changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.learning import tree_paths
from engine.learning.explain import _occlusion, contributions, global_importance, top_drivers
from engine.learning.models import TrainConfig, prepare_frame, train_classifier
from tests.test_churn_models import SPEC, synthetic


@pytest.fixture(scope="module")
def linear_model():
    data = synthetic(2000)
    return train_classifier(data, data["y"], SPEC, TrainConfig(candidates=("logreg",))), data


@pytest.fixture(scope="module")
def boosted_model():
    data = synthetic(3000, nonlinear=True)
    return train_classifier(data, data["y"], SPEC, TrainConfig(candidates=("hgb",))), data


def test_linear_contributions_add_up_to_the_log_odds_gap(linear_model):
    model, data = linear_model
    sample = data.head(200)
    contrib = contributions(model, sample)
    reference = data.head(1).copy()
    for name in SPEC.columns:
        reference[name] = model.reference[name]
    gap = model.logit(sample) - model.logit(reference)[0]
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), gap, atol=1e-9)


@pytest.mark.parametrize("fixture", ["linear_model", "boosted_model"])
def test_drivers_follow_the_driving_feature(fixture, request):
    model, data = request.getfixturevalue(fixture)
    account = data.head(1).copy()
    account[["usage", "tickets", "tenure", "noise", "segment"]] = [-2.5, 6.0, 500.0, 0.0, "enterprise"]
    drivers = top_drivers(model, account)[0]
    names = [d["feature"] for d in drivers]
    assert names and names[0] in {"usage", "tickets"}
    assert all(d["direction"] == "raises" and d["effect"] > 0 for d in drivers)
    assert drivers[0]["value"] == {"usage": -2.5, "tickets": 6.0}[names[0]]
    assert drivers[0]["relation"] == {"usage": "lower", "tickets": "higher"}[names[0]]

    # Make the top driver typical: it disappears from the drivers and the risk drops.
    fixed = account.copy()
    fixed[names[0]] = model.reference[names[0]]
    after = top_drivers(model, fixed)[0]
    assert names[0] not in [d["feature"] for d in after]
    assert model.predict_proba(fixed)[0] < model.predict_proba(account)[0]


def test_a_typical_account_has_no_drivers(linear_model):
    model, data = linear_model
    typical = data.head(1).copy()
    for name in SPEC.columns:
        typical[name] = model.reference[name]
    assert top_drivers(model, typical) == [[]]


def test_global_importance_ranks_signal_above_noise(linear_model):
    model, data = linear_model
    importance = global_importance(contributions(model, data.head(500)), model)
    order = importance["feature"].tolist()
    assert order.index("usage") < order.index("noise")


def test_occlusion_equals_occluding_the_raw_feature(boosted_model):
    """The method boosted drivers used before tree paths (still the one for other estimators)."""
    model, data = boosted_model
    sample = data.head(40)
    contrib = _occlusion(model, prepare_frame(sample, model.spec), sample.index)
    for name in ("usage", "segment", "tickets"):
        occluded = sample.copy()
        occluded[name] = model.reference[name]
        expected = model.logit(sample) - model.logit(occluded)
        np.testing.assert_allclose(contrib[name].to_numpy(), expected, atol=1e-9)


def test_boosted_path_credits_add_up_to_the_log_odds_gap(boosted_model):
    model, data = boosted_model
    sample = data.head(300)
    estimator = model.pipeline.named_steps["model"]
    assert tree_paths.supports(estimator)
    table = tree_paths.tree_table(estimator)
    a, b = model.calibration
    expected_logit = a * (float(np.ravel(estimator._baseline_prediction)[0]) + table.expected[table.roots].sum()) + b
    contrib = contributions(model, sample)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), model.logit(sample) - expected_logit, atol=1e-9)


@pytest.fixture(scope="module")
def boosted_linear_world():
    data = synthetic(3000)
    return train_classifier(data, data["y"], SPEC, TrainConfig(candidates=("hgb",))), data


def test_tree_paths_and_occlusion_agree_on_a_clear_top_driver(boosted_linear_world):
    """Accounts with one far-from-typical feature: both methods must name it first."""
    model, data = boosted_linear_world
    accounts = pd.concat([data.head(1)] * 2, ignore_index=True)
    for name in SPEC.columns:
        accounts[name] = model.reference[name]
    accounts.loc[0, "usage"] = -3.0
    accounts.loc[1, "tickets"] = 7.0
    paths = contributions(model, accounts)
    occluded = _occlusion(model, prepare_frame(accounts, model.spec), accounts.index)
    assert paths.idxmax(axis=1).tolist() == occluded.idxmax(axis=1).tolist() == ["usage", "tickets"]


def test_boosted_drivers_use_the_models_own_probability(boosted_model):
    """Tree paths yield the log-odds on the way; the drivers (points of probability) are those computed with the
    probability the model predicts."""
    model, data = boosted_model
    sample = data.head(300)
    assert top_drivers(model, sample) == top_drivers(model, sample, probability=model.predict_proba(sample))
