"""Six-factor health engine: sub-score curves, weighting, bands, trend, drivers, and its invariants."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.canonical import FACTORS, METRIC_COLUMNS, Band, Factor
from engine.health import (
    BAND_CATEGORIES,
    FACTOR_COLUMNS,
    FACTOR_CURVES,
    Curve,
    actions,
    assign_bands,
    compute_factor_scores,
    output_columns,
    score_from_factors,
    score_health,
)
from engine.health_config import HealthConfig, load_health_config

DEFAULT = load_health_config()
NAMES = [f.value for f in FACTORS]
GOOD_METRICS = [m for m in METRIC_COLUMNS if m != "tenure_days"]  # tenure is context, not good or bad
DIRECTION = {c.metric: (1 if c.higher_is_better else -1) for curves in FACTOR_CURVES.values() for c in curves}


def config(**changes: Any) -> HealthConfig:
    """The default config with whole sections (or ``weights`` given as a plain dict) replaced."""
    data = DEFAULT.model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return HealthConfig.from_mapping(data, source="test")


def only_weights(**weights: float) -> HealthConfig:
    return config(weights={name: weights.get(name, 0.0) for name in NAMES})


def factors(*rows: dict[str, float], index: list[Any] | None = None) -> pd.DataFrame:
    return pd.DataFrame(list(rows), index=index, columns=NAMES, dtype=float)


def metrics(*rows: dict[str, float], index: list[Any] | None = None) -> pd.DataFrame:
    return pd.DataFrame(list(rows), index=index, dtype=float)


def one(frame: pd.DataFrame) -> pd.Series:
    assert len(frame) == 1
    return frame.iloc[0]


# --- bands ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("health", "band"),
    [
        (100.0, Band.HEALTHY),
        (80.0, Band.HEALTHY),
        (79.99, Band.AT_RISK),
        (79.999, Band.AT_RISK),
        (60.0, Band.AT_RISK),
        (59.99, Band.CRITICAL),
        (40.0, Band.CRITICAL),
        (39.99, Band.CHURNING),
        (0.0, Band.CHURNING),
    ],
)
def test_band_boundaries(health: float, band: Band) -> None:
    assert list(assign_bands(np.array([health]), DEFAULT.bands)) == [band.value]


def test_bands_follow_configured_thresholds_and_nan_has_no_band() -> None:
    bands = config(bands={"healthy": 90, "at_risk": 50, "critical": 0}).bands
    got = assign_bands(np.array([95, 90, 89.9, 50, 49.9, 0, np.nan]), bands)
    assert list(got.categories) == BAND_CATEGORIES == [b.value for b in Band]
    assert list(got.astype(object)) == ["healthy", "healthy", "at_risk", "at_risk", "critical", "critical", np.nan]


@pytest.mark.parametrize(
    ("goal_attainment", "health", "band"),
    [
        (1.0, 100.0, "healthy"),
        (0.8, 80.0, "healthy"),
        (0.799, 79.9, "at_risk"),
        (0.6, 60.0, "at_risk"),
        (0.599, 59.9, "critical"),
        (0.4, 40.0, "critical"),
        (0.399, 39.9, "churning"),
        (0.0, 0.0, "churning"),
    ],
)
def test_band_boundaries_end_to_end(goal_attainment: float, health: float, band: str) -> None:
    # Only goal attainment has data: outcomes = 100 x attainment, and the only factor, so health equals it.
    row = one(score_health(metrics({"goal_attainment": goal_attainment}), DEFAULT))
    assert row["health"] == health
    assert row["band"] == band


def test_band_agrees_with_the_rounded_health() -> None:
    # 79.96 is shown as 80.0, so it is banded healthy: never "80.0 at_risk" on a dashboard.
    result = score_from_factors(factors({"adoption": 79.96}, {"adoption": 79.94}), DEFAULT)
    assert list(result["health"]) == [80.0, 79.9]
    assert list(result["band"]) == ["healthy", "at_risk"]


# --- sub-score curves -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "low", "high"),
    [
        ("core_adoption", 0.8, 90, 90),
        ("core_adoption", 0.95, 90, 100),
        ("core_adoption", 0.7, 70, 89.9),
        ("core_adoption", 0.6, 70, 70),
        ("core_adoption", 0.5, 50, 69.9),
        ("core_adoption", 0.2, 0, 49.9),
        ("roi_pct", 300, 90, 90),
        ("roi_pct", 450, 90, 100),
        ("roi_pct", 250, 70, 89.9),
        ("roi_pct", 150, 50, 69.9),
        ("roi_pct", 50, 0, 49.9),
        ("roi_pct", -80, 0, 0),
        ("active_days_per_week", 6, 90, 100),
        ("active_days_per_week", 4, 60, 89.9),
        ("active_days_per_week", 1.5, 40, 59.9),
        ("active_days_per_week", 0.5, 0, 39.9),
        ("avg_session_minutes", 30, 90, 90),
        ("avg_session_minutes", 5000, 100, 100),
        ("seat_growth_90d", 0.0, 60, 60),
        ("seat_growth_90d", 0.2, 80, 100),
        ("seat_growth_90d", -0.3, 0, 30),
        ("plan_change_90d", 0, 60, 60),
        ("plan_change_90d", 1, 100, 100),
        ("plan_change_90d", -1, 0, 0),
        ("tickets_per_seat_30d", 0, 100, 100),
        ("escalations_90d", 6, 0, 0),
        ("has_champion", 1, 100, 100),
        ("has_champion", 0, 0, 0),
    ],
)
def test_sub_score_tiers_follow_design(metric: str, value: float, low: float, high: float) -> None:
    curve = next(c for curves in FACTOR_CURVES.values() for c in curves if c.metric == metric)
    score = float(curve.evaluate(np.array([value]))[0])
    assert low <= score <= high


def test_time_to_first_value_tiers_and_young_accounts_are_not_penalised() -> None:
    rows = [
        {"ttfv_days": 20, "tenure_days": 400},  # reached within 30 days
        {"ttfv_days": 45, "tenure_days": 400},  # within 60
        {"ttfv_days": 80, "tenure_days": 400},  # within 90
        {"tenure_days": 10},  # no first value yet, but only 10 days old: still on track
        {"tenure_days": 45},  # no first value, 45 days old: can at best land in the <=60 tier
        {"tenure_days": 400},  # never reached
        {"ttfv_days": 10},  # tenure unknown: reached value is scored anyway
        {"core_adoption": 0.9},  # neither: adoption from core features only
    ]
    # Only time to first value (or only core adoption) has data in each row, so adoption is that sub-score.
    adoption = compute_factor_scores(metrics(*rows))["adoption"]
    assert 90 <= adoption[0] <= 100 and 70 <= adoption[1] < 90 and 50 <= adoption[2] < 70
    assert adoption[3] >= 90, "a 10-day-old account without first value must not count as 'never'"
    assert 70 <= adoption[4] < 90
    assert adoption[5] == 0
    assert adoption[3] == pytest.approx(adoption[0] + (20 - 10) / 30 * 10)  # as if value arrived on day 10
    assert adoption[6] > 90 and adoption[7] == 95
    assert not adoption.isna().any()


def test_a_pending_account_never_beats_one_that_reached_value_today() -> None:
    tenure = np.arange(0, 400, 7.0)
    pending = compute_factor_scores(pd.DataFrame({"tenure_days": tenure}))["adoption"].to_numpy()
    reached = compute_factor_scores(pd.DataFrame({"tenure_days": tenure, "ttfv_days": tenure}))["adoption"]
    np.testing.assert_array_equal(pending, reached.to_numpy())
    assert (np.diff(pending) <= 0).all()


def test_factor_is_mean_of_present_sub_scores_and_missing_when_all_nan() -> None:
    scores = compute_factor_scores(
        metrics(
            {"has_champion": 1, "responsiveness": 0.3},  # (100 x 15 + 60 x 85) / 100
            {"has_champion": 1},  # responsiveness NaN: left out, not zero
            {"core_adoption": 0.8},
        )
    )
    assert scores["relationship"].tolist()[:2] == [66.0, 100.0]
    assert np.isnan(scores["relationship"].iloc[2])
    assert scores.iloc[2].isna().sum() == 5


def test_curve_matches_np_interp_and_hits_breakpoints_exactly() -> None:
    for curves in FACTOR_CURVES.values():
        for curve in curves:
            lo, hi = curve.xp[0], curve.xp[-1]
            x = np.concatenate([curve.xp, np.linspace(lo - 1, hi + 1, 2001), [np.inf, -np.inf, np.nan, 1e300]])
            got = curve.evaluate(x)
            np.testing.assert_allclose(got, np.interp(x, curve.xp, curve.fp), atol=1e-9)
            assert got[: len(curve.xp)].tolist() == list(curve.fp)
            assert np.isnan(got[-2]) and not np.isnan(got[:-2]).any()


def test_curves_cover_every_metric_and_reject_bad_definitions() -> None:
    used = {c.metric for curves in FACTOR_CURVES.values() for c in curves}
    assert used | {"tenure_days"} == set(METRIC_COLUMNS)
    assert list(FACTOR_CURVES) == list(FACTORS)
    for curves in FACTOR_CURVES.values():
        assert sum(c.weight for c in curves) == 100
    with pytest.raises(ValueError, match="unknown metric"):
        Curve("nps", (0, 1), (0, 100), 1)
    with pytest.raises(ValueError, match="strictly increasing"):
        Curve("roi_pct", (1, 0), (0, 100), 1)
    with pytest.raises(ValueError, match="monotonic"):
        Curve("roi_pct", (0, 1, 2), (0, 100, 50), 1)


# --- weighting, renormalization and coverage ------------------------------------------------------------------


def test_missing_factors_are_left_out_and_weights_renormalized() -> None:
    row = one(score_from_factors(factors({"adoption": 80, "outcomes": 40}), DEFAULT))
    assert row["health"] == 60.0  # (25 x 80 + 25 x 40) / (25 + 25)
    assert row["coverage"] == pytest.approx((25 + 25) / 100)
    assert row["factors_present"] == 2
    assert np.isnan(row["f_engagement"])

    row = one(score_from_factors(factors({"adoption": 80, "engagement": 40}), DEFAULT))
    assert row["health"] == round((25 * 80 + 20 * 40) / 45, 1)
    assert row["coverage"] == pytest.approx(0.45)


def test_renormalization_end_to_end_from_metrics() -> None:
    row = one(score_health(metrics({"core_adoption": 0.8, "roi_pct": 100}), DEFAULT))
    # adoption = 90 (core adoption only), outcomes = 50 (ROI only); equal weights 25 / 25.
    assert (row["f_adoption"], row["f_outcomes"]) == (90.0, 50.0)
    assert row["health"] == 70.0
    assert row["coverage"] == pytest.approx(0.5)
    assert row["band"] == "at_risk"


def test_all_factors_present_is_the_plain_weighted_mean() -> None:
    values = {"adoption": 90, "engagement": 70, "support": 50, "outcomes": 30, "relationship": 100, "expansion": 0}
    row = one(score_from_factors(factors(values), DEFAULT))
    expected = (25 * 90 + 20 * 70 + 15 * 50 + 25 * 30 + 10 * 100 + 5 * 0) / 100
    assert row["health"] == round(expected, 1)
    assert (row["coverage"], row["factors_present"]) == (1.0, 6)


def test_account_without_any_data_has_nan_health_and_band() -> None:
    result = score_health(metrics({"core_adoption": np.nan}, {"core_adoption": 0.5}, index=["a", "b"]), DEFAULT)
    row = result.loc["a"]
    assert np.isnan(row["health"]) and pd.isna(row["band"])
    assert (row["coverage"], row["factors_present"]) == (0.0, 0)
    assert all(pd.isna(row[f"driver_{i}"]) for i in (1, 2, 3)) and pd.isna(row["recommended_action"])
    assert result.loc["b", "health"] == 60.0


def test_only_zero_weight_factors_present_gives_nan_health() -> None:
    row = one(score_from_factors(factors({"engagement": 90}), only_weights(adoption=1)))
    assert np.isnan(row["health"]) and pd.isna(row["band"])
    assert (row["coverage"], row["factors_present"], row["f_engagement"]) == (0.0, 1, 90.0)


def test_zero_weight_factor_stops_affecting_the_score() -> None:
    base = {"adoption": 80, "engagement": 20, "outcomes": 60}
    weights = {**DEFAULT.weights.model_dump(), "engagement": 0}
    cfg = config(weights=weights)
    low = one(score_from_factors(factors(base), cfg))
    high = one(score_from_factors(factors({**base, "engagement": 100}), cfg))
    assert low["health"] == high["health"] == 70.0
    assert low["coverage"] == pytest.approx(50 / 80)
    assert "engagement" not in {low[f"driver_{i}"] for i in (1, 2, 3)}
    # ... while with its default weight it does count.
    assert one(score_from_factors(factors(base), DEFAULT))["health"] < 70.0


def test_weight_changes_move_the_score_the_expected_way() -> None:
    frame = factors({"adoption": 90, "outcomes": 30, "support": 60})
    base = one(score_from_factors(frame, DEFAULT))["health"]
    more_outcomes = config(weights={**DEFAULT.weights.model_dump(), "outcomes": 50})
    more_adoption = config(weights={**DEFAULT.weights.model_dump(), "adoption": 50})
    assert one(score_from_factors(frame, more_outcomes))["health"] < base
    assert one(score_from_factors(frame, more_adoption))["health"] > base
    # Only ratios matter: scaling every weight changes nothing.
    scaled = config(weights={k: v * 7 for k, v in DEFAULT.weights.model_dump().items()})
    assert one(score_from_factors(frame, scaled))["health"] == base


# --- trend ----------------------------------------------------------------------------------------------------


def test_trend_against_previous_scores() -> None:
    frame = factors({"adoption": 80}, {"adoption": 50}, {"adoption": 70}, index=["a", "b", "c"])
    previous = pd.DataFrame(
        {"health_7d_ago": [55.5, 90.0, 1.0], "health_30d_ago": [np.nan, 40.0, 2.0]},
        index=["b", "a", "zz"],  # other order, one account missing, one extra
    )
    result = score_from_factors(frame, DEFAULT, previous)
    assert result["trend_7d"].tolist()[:2] == [-10.0, -5.5]
    assert result["trend_30d"].tolist()[:1] == [40.0]
    assert np.isnan(result.loc["b", "trend_30d"])
    assert result.loc["c", ["trend_7d", "trend_30d"]].isna().all()


def test_trend_is_nan_without_previous_or_column() -> None:
    frame = factors({"adoption": 80})
    assert one(score_from_factors(frame, DEFAULT))[["trend_7d", "trend_30d"]].isna().all()
    row = one(score_from_factors(frame, DEFAULT, pd.DataFrame({"health_30d_ago": [70.0]})))
    assert np.isnan(row["trend_7d"]) and row["trend_30d"] == 10.0


# --- drivers and actions --------------------------------------------------------------------------------------

DRIVER_ROW = {"adoption": 50, "engagement": 20, "support": 65, "outcomes": 90, "relationship": 69, "expansion": 0}
# Points lost (weight x (100 - score)): engagement 1600, adoption 1250, support 525, expansion 500, relationship 310.


def test_drivers_ranked_by_points_lost_and_limited_to_n() -> None:
    row = one(score_from_factors(factors(DRIVER_ROW), DEFAULT))
    assert [row["driver_1"], row["driver_2"], row["driver_3"]] == ["engagement", "adoption", "support"]
    assert "driver_4" not in row.index
    assert row["recommended_action"] == DEFAULT.actions.engagement

    five = config(drivers={"count": 5, "threshold": 70})
    row = one(score_from_factors(factors(DRIVER_ROW), five))
    assert [row[f"driver_{i}"] for i in range(1, 6)] == [
        "engagement",
        "adoption",
        "support",
        "expansion",
        "relationship",
    ]
    assert "driver_6" not in row.index
    assert actions(row, five) == [five.actions.as_dict()[Factor(row[f"driver_{i}"])] for i in range(1, 6)]


def test_driver_threshold_is_respected() -> None:
    cfg = config(drivers={"count": 6, "threshold": 60})
    row = one(score_from_factors(factors({"adoption": 60, "engagement": 59.9, "outcomes": 10}), cfg))
    assert [row["driver_1"], row["driver_2"]] == ["outcomes", "engagement"]
    assert all(pd.isna(row[f"driver_{i}"]) for i in range(3, 7))
    assert actions(row, cfg) == [cfg.actions.outcomes, cfg.actions.engagement]


def test_drivers_use_weights_missing_factors_and_ties() -> None:
    # Support is lower but lighter: 15 x 70 = 1050 < adoption 25 x 50 = 1250.
    row = one(score_from_factors(factors({"adoption": 50, "support": 30}), DEFAULT))
    assert [row["driver_1"], row["driver_2"]] == ["adoption", "support"] and pd.isna(row["driver_3"])
    # Equal points lost: canonical factor order decides.
    row = one(score_from_factors(factors({"adoption": 60, "outcomes": 60}), DEFAULT))
    assert [row["driver_1"], row["driver_2"]] == ["adoption", "outcomes"]
    # A healthy account has no drivers and no action.
    row = one(score_from_factors(factors(dict.fromkeys(NAMES, 95.0)), DEFAULT))
    assert pd.isna(row["driver_1"]) and pd.isna(row["recommended_action"]) and actions(row, DEFAULT) == []


def test_shared_action_texts_are_fine() -> None:
    same = dict.fromkeys(NAMES, "Call the customer")
    row = one(score_from_factors(factors({"support": 10}), config(actions=same)))
    assert row["recommended_action"] == "Call the customer"


# --- output shape ---------------------------------------------------------------------------------------------


def test_output_columns_index_and_dtypes() -> None:
    index = pd.Index(["acc-3", "acc-1", "acc-2"], name="account_id")
    frame = metrics({"core_adoption": 0.9}, {"roi_pct": 50}, {}, index=list(index))
    frame.index = index
    result = score_health(frame, DEFAULT)
    assert list(result.columns) == output_columns(DEFAULT)
    assert [f"f_{f.value}" for f in FACTORS] == list(FACTOR_COLUMNS.values())
    assert result.index.equals(index)
    assert result["health"].dtype == np.float64
    assert isinstance(result["band"].dtype, pd.CategoricalDtype)
    assert list(result["band"].cat.categories) == BAND_CATEGORIES
    assert isinstance(result["driver_1"].dtype, pd.CategoricalDtype)
    assert set(result["driver_1"].cat.categories) == set(NAMES)
    assert isinstance(result["recommended_action"].dtype, pd.CategoricalDtype)
    assert result["factors_present"].dtype.kind == "i"


def test_empty_input_and_odd_dtypes() -> None:
    empty = score_health(pd.DataFrame(index=pd.Index([], name="account_id")), DEFAULT)
    assert empty.empty and list(empty.columns) == output_columns(DEFAULT)

    odd = pd.DataFrame(
        {
            "has_champion": pd.array([True, False, None], dtype="boolean"),
            "escalations_90d": pd.array([0, 2, None], dtype="Int64"),
            "roi_pct": pd.Series([300, None, "x"], dtype=object).where(lambda s: s != "x"),
            "unrelated": ["a", "b", "c"],
        }
    )
    result = score_health(odd, DEFAULT)
    assert result["f_relationship"].tolist()[:2] == [100.0, 0.0]
    assert result["f_support"].tolist()[:2] == [100.0, 50.0]
    assert result["f_outcomes"].iloc[0] == 90.0
    assert result.iloc[2][list(FACTOR_COLUMNS.values())].isna().all()


# --- properties -----------------------------------------------------------------------------------------------

any_float = st.floats(allow_nan=True, allow_infinity=True)
metric_value = st.one_of(
    any_float,
    st.floats(min_value=-2, max_value=600),
    st.sampled_from([0.0, 0.4, 0.6, 0.8, 1.0, 30.0, 60.0, 90.0, 100.0, 300.0, np.nan]),
)
metric_rows = st.lists(st.fixed_dictionaries({m: metric_value for m in METRIC_COLUMNS}), min_size=1, max_size=8)
# Weights from 0.001 up (or exactly 0): subnormal weights would only test float underflow, not the engine.
weight = st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=1000), st.integers(0, 100).map(float))
weights_st = st.fixed_dictionaries({name: weight for name in NAMES}).filter(lambda w: any(v > 0 for v in w.values()))
factor_value = st.one_of(st.just(np.nan), st.floats(min_value=0, max_value=100))
factor_rows = st.lists(st.fixed_dictionaries({name: factor_value for name in NAMES}), min_size=1, max_size=8)


def _same_or_higher(after: pd.Series, before: pd.Series) -> bool:
    both_nan = after.isna() & before.isna()
    return bool(((after >= before) | both_nan).all())


@settings(max_examples=200, deadline=None)
@given(rows=metric_rows, weights=weights_st)
def test_health_always_within_0_100_for_any_metrics(rows: list[dict[str, float]], weights: dict[str, float]) -> None:
    result = score_health(pd.DataFrame(rows), config(weights=weights))
    health = result["health"]
    assert ((health >= 0) & (health <= 100) | health.isna()).all()
    factor_scores = result[list(FACTOR_COLUMNS.values())].to_numpy()
    assert np.all(np.isnan(factor_scores) | ((factor_scores >= 0) & (factor_scores <= 100)))
    assert ((result["coverage"] >= 0) & (result["coverage"] <= 1 + 1e-12)).all()
    assert (health.isna() == (result["coverage"] == 0)).all()
    assert (health.isna() == result["band"].isna()).all()
    expected_band = pd.Series(assign_bands(health.to_numpy(), DEFAULT.bands), index=result.index, name="band")
    pd.testing.assert_series_equal(result["band"], expected_band)


@settings(max_examples=300, deadline=None)
@given(
    rows=metric_rows,
    weights=weights_st,
    metric=st.sampled_from(GOOD_METRICS),
    delta=st.floats(min_value=1e-9, max_value=1e6),
    data=st.data(),
)
def test_improving_a_good_metric_never_lowers_health(
    rows: list[dict[str, float]], weights: dict[str, float], metric: str, delta: float, data: st.DataObject
) -> None:
    before_frame = pd.DataFrame(rows)
    finite = before_frame[metric].map(math.isfinite)
    assume(finite.any())
    after_frame = before_frame.copy()
    after_frame.loc[finite, metric] += DIRECTION[metric] * delta
    cfg = config(weights=weights)
    before, after = score_health(before_frame, cfg), score_health(after_frame, cfg)
    assert _same_or_higher(after["health"], before["health"])
    factor = next(f for f, curves in FACTOR_CURVES.items() if any(c.metric == metric for c in curves))
    assert _same_or_higher(after[FACTOR_COLUMNS[factor]], before[FACTOR_COLUMNS[factor]])


@settings(max_examples=300, deadline=None)
@given(rows=factor_rows, weights=weights_st, factor=st.sampled_from(NAMES), delta=st.floats(1e-9, 100))
def test_improving_a_factor_never_lowers_health_and_zero_weight_is_inert(
    rows: list[dict[str, float]], weights: dict[str, float], factor: str, delta: float
) -> None:
    before_frame = pd.DataFrame(rows, columns=NAMES)
    after_frame = before_frame.copy()
    after_frame[factor] = np.minimum(after_frame[factor] + delta, 100.0)
    cfg = config(weights=weights)
    before, after = score_from_factors(before_frame, cfg), score_from_factors(after_frame, cfg)
    assert _same_or_higher(after["health"], before["health"])
    if weights[factor] == 0:
        pd.testing.assert_series_equal(after["health"], before["health"])


@settings(max_examples=200, deadline=None)
@given(rows=factor_rows, weights=weights_st, count=st.integers(1, 6), threshold=st.floats(0, 100))
def test_health_and_drivers_match_a_row_by_row_reference(
    rows: list[dict[str, float]], weights: dict[str, float], count: int, threshold: float
) -> None:
    cfg = config(weights=weights, drivers={"count": count, "threshold": threshold})
    result = score_from_factors(pd.DataFrame(rows, columns=NAMES), cfg)
    for row, (_, got) in zip(rows, result.iterrows(), strict=True):
        present = [n for n in NAMES if not math.isnan(row[n])]
        total = sum(weights[n] for n in present)
        if total > 0:
            exact = sum(weights[n] * row[n] for n in present) / total
            assert abs(got["health"] - exact) <= 0.05 + 1e-9
            assert got["coverage"] == pytest.approx(total / sum(weights.values()))
        else:
            assert math.isnan(got["health"])
        costs = [(-(100.0 - row[n]) * weights[n], i, n) for i, n in enumerate(NAMES) if n in present]
        expected = [n for cost, _, n in sorted(costs) if row[n] < threshold and weights[n] > 0][:count]
        drivers = [got[f"driver_{i}"] for i in range(1, count + 1)]
        assert [d for d in drivers if not pd.isna(d)] == expected
        assert all(pd.isna(d) for d in drivers[len(expected) :])
        expected_action = cfg.actions.as_dict()[Factor(expected[0])] if expected else None
        assert (got["recommended_action"] if expected else None) == expected_action
        assert pd.isna(got["recommended_action"]) == (not expected)


@settings(max_examples=200, deadline=None)
@given(a=any_float, b=any_float)
def test_every_curve_is_monotonic_in_its_good_direction(a: float, b: float) -> None:
    assume(not (math.isnan(a) or math.isnan(b)))
    lo, hi = min(a, b), max(a, b)
    for curves in FACTOR_CURVES.values():
        for curve in curves:
            s_lo, s_hi = curve.evaluate(np.array([lo, hi]))
            assert (s_hi >= s_lo) if curve.higher_is_better else (s_hi <= s_lo)
            assert 0 <= s_lo <= 100 and 0 <= s_hi <= 100
