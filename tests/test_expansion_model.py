"""Expansion score blended with a learned propensity (engine.learning.expansion_model)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.expansion import UPLIFT
from engine.learning.expansion_model import MIN_POSITIVES, combine_expansion, train_expansion_model
from engine.learning.models import FeatureSpec, TrainConfig
from engine.learning.predict import ModelBundle, predict_expansion
from tests.test_churn_models import SPEC, synthetic


def heuristic() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "expansion_score": [80.0, 20.0, 0.0],
            "expansion_type": ["plan", "feature", None],
            "revenue_potential": [4000.0, 200.0, 0.0],
        },
        index=[1, 2, 3],
    )


def test_without_a_propensity_the_heuristic_stands():
    out = combine_expansion(heuristic(), pd.Series({1: 10000.0, 2: 5000.0, 3: 1000.0}), None)
    pd.testing.assert_frame_equal(out.drop(columns="expansion_propensity_pct"), heuristic())
    assert out["expansion_propensity_pct"].isna().all()


def test_the_propensity_moves_the_score_type_and_revenue():
    arr = pd.Series({1: 10000.0, 2: 5000.0, 3: 1000.0})
    out = combine_expansion(heuristic(), arr, np.array([0.2, 0.95, 0.9]), weight=0.5)
    assert out["expansion_score"].tolist() == [50.0, 57.5, 45.0]
    assert out["expansion_type"].tolist() == ["plan", "feature", "seat"]  # only the model saw account 3 coming
    assert out.loc[3, "revenue_potential"] == round(1000.0 * UPLIFT["seat"] * 0.45, 2)
    assert out.loc[1, "revenue_potential"] == round(10000.0 * UPLIFT["plan"] * 0.50, 2)


def test_too_little_history_trains_no_model():
    data = synthetic(300)
    y = np.zeros(len(data), dtype=int)
    y[: MIN_POSITIVES - 1] = 1
    assert train_expansion_model(data, y, SPEC) is None


def test_learned_propensity_ranks_expanders_and_feeds_the_score():
    data = synthetic(1500, seed=4)
    expanded = (data["usage"].fillna(0) > 0.8).astype(int)  # heavy users add seats
    model = train_expansion_model(data, expanded, SPEC, TrainConfig(seed=0))
    assert model is not None and model.validation["roc_auc"] > 0.9
    bundle = ModelBundle(churn=model, horizon_days=30, expansion=model)
    accounts = data.head(3).set_axis([1, 2, 3]).assign(usage=[2.0, -1.0, 0.0])
    out = predict_expansion(bundle, accounts, heuristic(), pd.Series({1: 1.0, 2: 1.0, 3: 1.0}))
    assert out.loc[1, "expansion_propensity_pct"] > out.loc[2, "expansion_propensity_pct"]
    no_model = predict_expansion(
        ModelBundle(churn=model, horizon_days=30), accounts, heuristic(), pd.Series(dtype=float)
    )
    assert no_model["expansion_score"].tolist() == heuristic()["expansion_score"].tolist()
    assert isinstance(FeatureSpec.from_dict(SPEC.to_dict()), FeatureSpec)
