"""One risk scale: calibrated churn probability within the horizon, from the model or from calibrated health; the
automatic training behind its time-split guard; the early-warning figures."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.ml import auto
from app.ml.auto import load_health_calibration, refresh_models, scoring_models
from app.ml.report import json_ready
from app.ml.scorer import load_scoring_artifact
from app.ml.train import StoreOptions
from app.scoring import compute_scores
from app.store.db import make_engine, upgrade_schema
from engine.health_config import load_health_config
from engine.learning.evaluate import early_warning
from engine.learning.risk import PRIOR, fit_health_calibration, risk_scale

AS_OF = date(2026, 6, 30)
TIERS = [0, 40, 60, 80, 100.01]  # below the programs, then their tiers 40-60 / 60-80 / 80-100


def test_risk_is_the_model_probability_where_there_is_one_else_calibrated_health():
    risk, source = risk_scale(np.array([5.0, 40.0, np.nan, 90.0]), np.array([np.nan, 0.123, np.nan, np.nan]), PRIOR)
    assert risk[0] == 85.0 and risk[1] == 12.3 and np.isnan(risk[2]) and risk[3] == pytest.approx(2.5)
    assert list(source) == ["health", "model", None, "health"]


def test_the_health_calibration_is_monotone_and_measures_its_error():
    rng = np.random.default_rng(0)
    health = rng.uniform(0, 100, 5000)
    churned = rng.uniform(size=5000) < 0.6 / (1 + np.exp((health - 35) / 8))
    fitted = fit_health_calibration(health, churned, 30, holdout=np.arange(5000) >= 4000)
    p = fitted.churn_probability(np.linspace(0, 100, 101))
    assert np.all(np.diff(p) <= 0) and p[0] > 0.4 and p[-1] < 0.05
    assert fitted.fitted_on == "history" and fitted.rows == 5000 and 0 <= fitted.error < 0.05
    assert type(fitted).from_dict(fitted.to_dict()) == fitted
    unmeasured = fit_health_calibration(health, churned, 30)  # no held-out rows: the error is unknown (NaN) …
    stored = json.loads(json.dumps(json_ready(unmeasured.to_dict())))  # … which the JSON file keeps as null
    assert np.isnan(type(unmeasured).from_dict(stored).error)


def test_the_early_warning_figures_count_churners_observed_over_the_whole_window():
    days = pd.to_datetime(["2026-01-01", "2026-01-15", "2026-02-01", "2026-02-15", "2026-03-01", "2026-03-15"])
    flags = {
        1: [0, 1, 0, 1, 1, 1],  # churns Apr 1: the last unbroken run starts Feb 15 (45 days), the Jan 15 flag lapsed
        2: [1, 1, 0, 0, 0, 0],  # churns Jan 20, before a whole 60-day window was observed: not counted
        3: [0, 0, 0, 0, 1, 1],  # churns Apr 1 but became a customer Feb 15: counted apart as a young churner
        4: [0, 0, 0, 0, 0, 1],  # survivor flagged only after the last date whose horizon has passed: no false alarm
        5: [0, 1, 0, 0, 0, 0],  # survivor flagged once in time: a false alarm
        6: [0, 0, 0, 0, 0, 0],  # churns Apr 1, never flagged
    }
    scores = pd.DataFrame(
        [(a, d, 0.9 if f else 0.1) for a, row in flags.items() for d, f in zip(days, row, strict=True)],
        columns=["account_id", "as_of", "p"],
    )
    churned_at = pd.Series(pd.to_datetime(["2026-04-01", "2026-01-20", "2026-04-01", None, None, "2026-04-01"]),
                           index=[1, 2, 3, 4, 5, 6])  # fmt: skip
    since = pd.Series(pd.to_datetime(["2025-01-01"] * 2 + ["2026-02-15"] + ["2025-01-01"] * 3), index=churned_at.index)
    report = early_warning(
        scores, churned_at, 0.5, lead_window_days=60, survivors_until=pd.Timestamp("2026-03-01"),
        customer_since=since, horizon_days=60,
    )  # fmt: skip
    assert report["churners"] == 2 and report["lead_days"] == [45]  # accounts 1 and 6
    assert report["flagged_churners_share"] == 0.5 and report["lead_days_median"] == 45
    assert report["young_churners"] == 1 and report["young_lead_days_median"] == 31
    assert report["survivors"] == 2 and report["false_alarm_share"] == 0.5
    # Flags up to Mar 1: account 1 on Jan 15, Feb 15 and Mar 1 (churn within 60 days only from Feb 15 on),
    # account 2 on Jan 1 and 15, account 3 on Mar 1, account 5 on Jan 15 (never churns): 5 of 7 came true.
    assert report["precision"] == pytest.approx(5 / 7)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("risk")
    engine = make_engine(f"sqlite:///{folder / 'cse.db'}")
    upgrade_schema(engine)
    book = generate_book(BookSpec(seed=5, active_accounts=600, days=200, as_of=AS_OF))
    load_book(engine, book.accounts, book.contacts, book.events)
    yield engine, folder / "data", book
    engine.dispose()


def _churn_within(book, scored: pd.DataFrame, engine, days: int) -> np.ndarray:
    """Whether each scored account churns within ``days`` after AS_OF (the simulation's own churn dates)."""
    keys = pd.read_sql("select id, key from accounts", engine).set_index("id")["key"].reindex(scored.index)
    churn = pd.to_datetime(book.accounts.set_index("key")["latent_churn_date"]).reindex(keys.to_numpy())
    ahead = (churn - pd.Timestamp(AS_OF)).dt.days.to_numpy(dtype="float64", na_value=np.inf)
    return (ahead > 0) & (ahead <= days)


def test_adding_a_model_keeps_what_each_tier_means(history):
    """Both sources are calibrated to the same outcome, so adding the model keeps the book's expected churn within
    the calibration error, and in every tier, with or without the model, accounts churn at the tier's rate.

    Tier *shares* are not held equal, and cannot be: the fitted health calibration tops out below the upper tiers
    (no health score makes churn within 30 days 80 % likely), while the model, which separates churners better,
    does put accounts there; the test checks that those accounts do churn that often.
    """
    engine, data_dir, book = history
    config = load_health_config()
    state = refresh_models(engine, config, data_dir, StoreOptions(horizon_days=30, every_days=7))
    assert state["model"], state
    assert state["holdout"]["model_roc_auc"] > state["holdout"]["health_roc_auc"]
    calibration = load_health_calibration(data_dir)
    assert calibration.fitted_on == "history" and calibration.horizon_days == 30
    artifact = load_scoring_artifact(data_dir)
    with engine.connect() as conn:
        without = compute_scores(conn, AS_OF, config, calibration=calibration)
        with_model = compute_scores(conn, AS_OF, config, artifact=artifact, calibration=calibration)
    assert set(without["risk_source"]) == {"health"} and set(with_model["risk_source"]) == {"model"}
    assert with_model["churn_probability"].notna().all() and with_model["risk_drivers"].notna().all()
    tolerance = max(calibration.error, state["holdout"]["model_calibration_error"])
    assert abs(with_model["risk"].mean() - without["risk"].mean()) / 100 < tolerance
    checked = 0
    for scored in (without, with_model):
        churned = _churn_within(book, scored, engine, 30)
        tier = np.digitize(scored["risk"].to_numpy(), TIERS[1:-1])
        for t, (lo, hi) in enumerate(zip(TIERS, TIERS[1:], strict=False)):
            members = tier == t
            if members.sum() < 10:
                continue
            rate = churned[members].mean()
            sampling = 2 * np.sqrt(0.25 / members.sum())  # two standard errors of a rate, at its widest
            assert lo / 100 - tolerance - sampling <= rate <= hi / 100 + tolerance + sampling, (t, rate, members.sum())
            checked += 1
    assert checked >= 4, "tiers with members were checked for both sources"


def test_a_model_no_better_than_health_on_held_out_dates_is_refused(history, tmp_path, monkeypatch):
    engine, _, _ = history
    monkeypatch.setattr(auto, "health_auc", lambda frame: 1.0)  # health ranks the held-out dates perfectly
    state = refresh_models(engine, load_health_config(), tmp_path, StoreOptions(horizon_days=30, every_days=7))
    assert state["model"] is None and state["reason"].startswith("refused")
    assert load_scoring_artifact(tmp_path) is None
    assert load_health_calibration(tmp_path).fitted_on == "history", "risk still has a calibrated scale"


def test_scoring_trains_when_due_and_not_again_until_the_refresh_period(history, tmp_path, monkeypatch):
    engine, _, _ = history
    calls = []
    real = auto.refresh_models
    monkeypatch.setattr(auto, "refresh_models", lambda *a, **k: calls.append(1) or real(*a, **k))
    options = StoreOptions(horizon_days=30, every_days=7)
    first = scoring_models(engine, load_health_config(), tmp_path, options, refresh_days=7)
    again = scoring_models(engine, load_health_config(), tmp_path, options, refresh_days=7)
    assert len(calls) == 1 and first.artifact is not None and again.artifact.version == first.artifact.version
    off = scoring_models(engine, load_health_config(), tmp_path / "off", options, refresh_days=0)
    assert off.artifact is None and off.calibration is None and len(calls) == 1
