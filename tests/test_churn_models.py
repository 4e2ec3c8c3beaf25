"""Candidate selection, calibration, determinism and cross-validation of engine.learning.models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.learning.evaluate import calibration_table, classification_metrics, expected_calibration_error
from engine.learning.models import (
    CompiledTransform,
    FeatureSpec,
    TrainConfig,
    cross_validate,
    prepare_frame,
    split_rows,
    train_classifier,
)

SPEC = FeatureSpec(("usage", "tickets", "tenure", "noise"), ("segment",))


def synthetic(n: int = 1500, seed: int = 0, nonlinear: bool = False, dates: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "usage": rng.normal(0, 1, n),
            "tickets": rng.poisson(1.0, n).astype(float),
            "tenure": rng.uniform(0, 1000, n),
            "noise": rng.normal(0, 1, n),
            "segment": rng.choice(["smb", "mid_market", "enterprise"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "usage"] = np.nan  # no usage feed: risky in this world
    usage = frame["usage"].fillna(-1.5)
    z = -1.5 - 1.2 * usage + 0.5 * frame["tickets"] + 0.6 * (frame["segment"] == "smb")
    if nonlinear:
        z = -2.0 + 3.5 * (np.abs(usage) > 1.0) * (frame["tickets"] > 1)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    frame["as_of"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(7 * (np.arange(n) % dates), unit="D")
    return frame


def test_training_is_deterministic_with_a_seed():
    data = synthetic()
    first = train_classifier(data, data["y"], SPEC, TrainConfig(seed=3))
    second = train_classifier(data, data["y"], SPEC, TrainConfig(seed=3))
    assert first.name == second.name
    assert first.candidates == second.candidates
    np.testing.assert_array_equal(first.predict_proba(data), second.predict_proba(data))


def test_the_linear_candidate_wins_on_a_linear_world_and_boosting_on_interactions():
    linear = synthetic(2000)
    assert train_classifier(linear, linear["y"], SPEC).name == "logreg"
    interactions = synthetic(3000, nonlinear=True)
    model = train_classifier(interactions, interactions["y"], SPEC)
    assert model.name == "hgb"
    assert model.candidates["hgb"]["roc_auc"] > model.candidates["logreg"]["roc_auc"] + 0.05


def test_calibrated_probabilities_match_the_base_rate_and_predict_well():
    data = synthetic(4000, seed=1)
    train, test = data.iloc[:3000], data.iloc[3000:]
    model = train_classifier(train, train["y"], SPEC)
    metrics = classification_metrics(test["y"], model.predict_proba(test))
    assert metrics["roc_auc"] > 0.75
    assert abs(metrics["mean_predicted"] - metrics["base_rate"]) < 0.05
    assert expected_calibration_error(calibration_table(test["y"], model.predict_proba(test), bins=5)) < 0.06
    assert 0 < model.threshold < 1 and model.validation["rows"] > 0


def test_time_split_validates_on_the_latest_dates_with_a_gap():
    data = synthetic(1200, dates=12)
    y = data["y"].to_numpy()
    train, valid = split_rows(y, data["as_of"].to_numpy(), TrainConfig(validation_share=0.25, gap_days=14))
    last_train, first_valid = data["as_of"].iloc[train].max(), data["as_of"].iloc[valid].min()
    assert first_valid == data["as_of"].unique()[-3]  # 25 % of 12 dates
    assert (first_valid - last_train).days >= 14


def test_compiled_transform_equals_the_sklearn_pipeline():
    data = synthetic(800)
    for candidates in (("logreg",), ("hgb",)):
        model = train_classifier(data, data["y"], SPEC, TrainConfig(candidates=candidates))
        compiled = CompiledTransform.from_pipeline(model.pipeline, SPEC)
        unseen = data.head(50).assign(segment=["new_segment"] * 50)  # unknown category -> all zeros
        for frame in (data, unseen):
            expected = model.pipeline[:-1].transform(frame)
            np.testing.assert_allclose(compiled(prepare_frame(frame, SPEC)), expected, rtol=0, atol=1e-12)
        raw = model.pipeline.predict_proba(data)[:, 1]
        a, b = model.calibration
        z = np.log(np.clip(raw, 1e-7, 1 - 1e-7) / (1 - np.clip(raw, 1e-7, 1 - 1e-7)))
        np.testing.assert_allclose(model.predict_proba(data), 1 / (1 + np.exp(-(a * z + b))), atol=1e-12)


def test_missing_columns_and_odd_types_are_tolerated():
    data = synthetic(600)
    model = train_classifier(data, data["y"], SPEC)
    odd = data.drop(columns=["noise"]).assign(tickets=data["tickets"].astype(str), segment=None)
    p = model.predict_proba(odd)
    assert p.shape == (600,) and np.isfinite(p).all()


def test_cross_validation_reports_every_fold_and_keeps_groups_together():
    data = synthetic(900, dates=3)
    data["account"] = np.arange(len(data)) // 3
    result = cross_validate(data, data["y"], SPEC, TrainConfig(seed=0), folds=3, groups=data["account"])
    assert len(result["per_fold"]) == 3 and len(result["chosen"]) == 3
    assert 0.5 < result["roc_auc"] <= 1 and result["roc_auc_sd"] >= 0
    assert not np.isnan(result["out_of_fold"]).any()
    assert {"roc_auc", "pr_auc", "brier"} <= set(result["pooled"])


def test_a_single_class_is_refused():
    data = synthetic(200)
    with pytest.raises(ValueError, match="both classes"):
        train_classifier(data, np.zeros(len(data), dtype=int), SPEC)


def test_few_validation_positives_choose_by_grouped_folds_over_all_rows():
    data = synthetic(3000, nonlinear=True, dates=12)
    data["account"] = np.arange(len(data)) % 1000
    config = TrainConfig(seed=0, min_selection_positives=10_000)  # force the few-positives path
    model = train_classifier(data, data["y"], SPEC, config, dates=data["as_of"], groups=data["account"])
    assert model.name == "hgb"
    cv = {name: result["selection_cv_roc_auc"] for name, result in model.candidates.items()}
    assert cv["hgb"] > cv["logreg"] + 0.02
    plenty = train_classifier(data, data["y"], SPEC, TrainConfig(seed=0), dates=data["as_of"], groups=data["account"])
    assert "selection_cv_roc_auc" not in plenty.candidates["hgb"]  # enough validation positives: time split


def test_grouped_selection_does_not_reward_memorising_accounts():
    # 60 accounts seen on 50 dates each, a label fixed per account and unrelated to anything but the account's own
    # key: only a model that saw the account's other rows can "predict" it.
    rng = np.random.default_rng(4)
    accounts, dates = 60, 50
    account = np.repeat(np.arange(accounts), dates)
    churner = rng.random(accounts) < 0.3
    data = pd.DataFrame({"usage": account.astype(float), "tickets": 0.0, "tenure": 0.0,
                         "noise": rng.normal(size=len(account)), "segment": "smb",
                         "y": churner[account].astype(int)})  # fmt: skip
    data["as_of"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(7 * np.tile(np.arange(dates), accounts), unit="D")
    config = TrainConfig(seed=0, min_selection_positives=10_000, candidates=("hgb", "logreg"))
    grouped = train_classifier(data, data["y"], SPEC, config, dates=data["as_of"], groups=account)
    pooled = train_classifier(data, data["y"], SPEC, config, dates=data["as_of"])
    assert pooled.candidates["hgb"]["selection_cv_roc_auc"] > 0.8  # rows of one account on both sides
    assert grouped.candidates["hgb"]["selection_cv_roc_auc"] < 0.7


def _wide(n: int, noise: int, seed: int = 0) -> tuple[pd.DataFrame, FeatureSpec]:
    """Five weak real signals among `noise` pure-noise columns, about 10 % positives, accounts seen on 4 dates."""
    rng = np.random.default_rng(seed)
    columns = [*[f"s{k}" for k in range(5)], *[f"n{k}" for k in range(noise)]]
    frame = pd.DataFrame(rng.normal(size=(n, len(columns))), columns=columns)
    z = -3.0 + 0.6 * frame[columns[:5]].sum(axis=1)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    frame["as_of"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(30 * (np.arange(n) % 4), unit="D")
    frame["account"] = np.arange(n) // 4
    return frame, FeatureSpec(tuple(columns))


def _roc(frame: pd.DataFrame, model) -> float:
    return classification_metrics(frame["y"].to_numpy(), model.predict_proba(frame))["roc_auc"]


def test_logreg_penalty_is_chosen_on_grouped_folds_of_the_training_rows():
    data, spec = _wide(1200, noise=150)
    config = TrainConfig(seed=0, candidates=("logreg",), gap_days=30, logreg_c_grid=(0.003, 0.03, 1.0))
    tuned = train_classifier(data, data["y"], spec, config, dates=data["as_of"], groups=data["account"])
    fixed = train_classifier(data, data["y"], spec, TrainConfig(seed=0, candidates=("logreg",), gap_days=30),
                             dates=data["as_of"], groups=data["account"])  # fmt: skip
    c = tuned.candidates["logreg"]["regularization_c"]
    assert c < 1.0  # 150 noise columns and about a hundred positives: a strong penalty wins
    assert c == tuned.pipeline.named_steps["model"].C  # the refitted model uses it
    assert fixed.pipeline.named_steps["model"].C == 0.5 and "regularization_c" not in fixed.candidates["logreg"]
    fresh, _ = _wide(4000, noise=150, seed=9)
    assert _roc(fresh, tuned) > _roc(fresh, fixed) + 0.01
