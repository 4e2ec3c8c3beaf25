"""The product brief's health ranges (DESIGN section 5), checked at every tier boundary of the packaged tables.

Each case is (metric, value, lowest, highest): the sub-score of ``value`` must lie within the brief's range for its
tier, read as whole scores (70-89 = at least 70 and below 90). Values sit on a tier's lower edge and just below it,
so a table that drifts from the brief fails here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.health import compute_factor_scores, score_health
from engine.health_config import HealthConfig, HealthConfigError, default_health_config, load_health_config

EPS = 1e-6
CASES = [
    # Share of core features used: >=80 % -> 90-100, 60-80 -> 70-89, 40-60 -> 50-69, <40 -> 0-49.
    ("core_adoption", 1.0, 90, 100), ("core_adoption", 0.8, 90, 100), ("core_adoption", 0.8 - EPS, 70, 89),
    ("core_adoption", 0.6, 70, 89), ("core_adoption", 0.6 - EPS, 50, 69), ("core_adoption", 0.4, 50, 69),
    ("core_adoption", 0.4 - EPS, 0, 49), ("core_adoption", 0.0, 0, 49),
    # Time to first value: <=30 d, <=60 d, <=90 d, later.
    ("ttfv_days", 0, 90, 100), ("ttfv_days", 30, 90, 100), ("ttfv_days", 30 + EPS, 70, 89),
    ("ttfv_days", 60, 70, 89), ("ttfv_days", 60 + EPS, 50, 69), ("ttfv_days", 90, 50, 69),
    ("ttfv_days", 90 + EPS, 0, 49), ("ttfv_days", 365, 0, 49),
    # Login frequency: daily high, 3-5 a week 70-89, 1-2 a week 50-69, under once a week low.
    ("active_days_per_week", 7, 90, 100), ("active_days_per_week", 5, 90, 100),
    ("active_days_per_week", 5 - EPS, 70, 89), ("active_days_per_week", 3, 70, 89),
    ("active_days_per_week", 2, 50, 69), ("active_days_per_week", 1, 50, 69),
    ("active_days_per_week", 1 - EPS, 0, 49), ("active_days_per_week", 0, 0, 49),
    # Session length: 30 min sessions high, 15-30 min 70-89.
    ("avg_session_minutes", 30, 90, 100), ("avg_session_minutes", 30 - EPS, 70, 89),
    ("avg_session_minutes", 15, 70, 89), ("avg_session_minutes", 15 - EPS, 0, 69),
    # Breadth and depth on the same tiers.
    ("feature_breadth", 0.6, 90, 100), ("feature_breadth", 0.4, 70, 89), ("feature_breadth", 0.2, 50, 69),
    ("feature_breadth", 0.2 - EPS, 0, 49), ("active_user_share", 0.75, 90, 100),
    ("active_user_share", 0.5, 70, 89), ("active_user_share", 0.25, 50, 69),
    # Support pattern: fewer tickets and escalations, more self-service score higher.
    ("escalations_90d", 0, 90, 100), ("escalations_90d", 5, 0, 49), ("self_service_share", 0.75, 90, 100),
    ("self_service_share", 0, 0, 49),
    # ROI: >=300 % -> 90-100, 200-300 -> 70-89, 100-200 -> 50-69, <100 -> 0-49.
    ("roi_pct", 300, 90, 100), ("roi_pct", 300 - EPS, 70, 89), ("roi_pct", 200, 70, 89),
    ("roi_pct", 200 - EPS, 50, 69), ("roi_pct", 100, 50, 69), ("roi_pct", 100 - EPS, 0, 49),
    ("roi_pct", 1000, 90, 100),
    # Growth signals: growth high, stable middling, contraction low.
    ("seat_growth_90d", 0.25, 90, 100), ("seat_growth_90d", 0.0, 50, 69), ("seat_growth_90d", -0.5, 0, 49),
]  # fmt: skip


def _subscore(metric: str, value: float, config: HealthConfig | None = None) -> float:
    curves = (config or default_health_config()).factor_curves.values()
    curve = next(c for cs in curves for c in cs if c.metric == metric)
    return float(curve.evaluate(np.array([value], dtype=np.float64))[0])


@pytest.mark.parametrize(("metric", "value", "lowest", "highest"), CASES)
def test_every_range_boundary_of_the_brief(metric: str, value: float, lowest: float, highest: float) -> None:
    assert lowest <= _subscore(metric, value) < highest + 1


def _engagement(**metrics: float) -> float:
    frame = pd.DataFrame([metrics])
    return float(compute_factor_scores(frame)["engagement"].iloc[0])


def test_login_frequency_and_session_length_together_follow_the_brief() -> None:
    assert _engagement(active_days_per_week=5, avg_session_minutes=30) >= 90
    assert 70 <= _engagement(active_days_per_week=3, avg_session_minutes=15) < 90
    assert 70 <= _engagement(active_days_per_week=4, avg_session_minutes=25) < 90
    assert 50 <= _engagement(active_days_per_week=1, avg_session_minutes=10) < 70
    assert 50 <= _engagement(active_days_per_week=2, avg_session_minutes=5) < 70
    assert _engagement(active_days_per_week=0.5, avg_session_minutes=3) < 50


def _relationship(**metrics: float) -> float:
    return float(compute_factor_scores(pd.DataFrame([metrics]))["relationship"].iloc[0])


def test_engaged_contacts_without_a_champion_score_70_to_89_and_a_champion_tops_it_up() -> None:
    assert 70 <= _relationship(responsiveness=0.5, has_champion=0) < 90
    assert 70 <= _relationship(responsiveness=1.0, has_champion=0) < 90
    assert _relationship(responsiveness=1.0, has_champion=1) >= 90
    assert _relationship(responsiveness=0.05, has_champion=0) < 50


def test_an_admin_changes_a_range_table_and_scoring_follows(tmp_path) -> None:
    text = (default_health_config_path()).read_text(encoding="utf-8")
    edited = text.replace(
        "roi_pct: {weight: 60, points: [[0, 0], [100, 50], [200, 70], [300, 90], [500, 100]]}",
        "roi_pct: {weight: 60, points: [[0, 0], [100, 50], [150, 70], [250, 90], [500, 100]]}",
    )
    assert edited != text
    path = tmp_path / "health.yaml"
    path.write_text(edited, encoding="utf-8")
    config = load_health_config(path)
    assert _subscore("roi_pct", 250, config) == 90
    metrics = pd.DataFrame({"roi_pct": [250.0]})
    assert (
        score_health(metrics, config)["f_outcomes"].iloc[0]
        > score_health(metrics, default_health_config())["f_outcomes"].iloc[0]
    )


def default_health_config_path():
    from pathlib import Path

    import engine.health_config

    return Path(engine.health_config.__file__).with_name("health.yaml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[300, 90], [500, 100]]", "[300, 90], [250, 100]]", "curves.outcomes.roi_pct.points: expected metric values"),
        ("[300, 90], [500, 100]]", "[300, 90], [500, 40]]", "curves.outcomes.roi_pct.points: expected monotonic"),
        ("[300, 90], [500, 100]]", "[300, 90], [500, 120]]", "curves.outcomes.roi_pct.points[4][1]: expected"),
        ("roi_pct: {weight: 60,", "roi_pct: {weight: 0,", "curves.outcomes.roi_pct.weight: expected a number above 0"),
        ("roi_pct: {weight: 60,", "roi_percent: {weight: 60,", "curves.outcomes: expected metric names"),
    ],
)
def test_a_broken_range_table_is_refused_with_file_line_and_key(tmp_path, old: str, new: str, message: str) -> None:
    text = default_health_config_path().read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "health.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = next(i for i, row in enumerate(path.read_text().splitlines(), start=1) if "roi_p" in row and "weight" in row)
    with pytest.raises(HealthConfigError) as error:
        load_health_config(path)
    rendered = str(error.value)
    assert message in rendered
    assert f"{path}:{line}:" in rendered or f"{path}:{line - 2}:" in rendered
