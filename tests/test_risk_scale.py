"""One risk scale: calibrated churn probability within the horizon, from the model or from calibrated health; the
automatic training behind its time-split guard; the early-warning figures."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.ml import auto
from app.ml.auto import ScoringModels, load_health_calibration, refresh_models, scoring_models
from app.ml.report import json_ready
from app.ml.scorer import load_scoring_artifact
from app.ml.train import StoreOptions, labelled, load_panel
from app.scoring import compute_scores
from app.store.db import make_engine, upgrade_schema
from engine.health_config import load_health_config
from engine.learning.evaluate import early_warning
from engine.learning.risk import PRIOR, fit_health_calibration, risk_scale

AS_OF = date(2026, 6, 30)
OPTIONS = StoreOptions(horizon_days=30, every_days=7)
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


@dataclass(frozen=True)
class Trained:
    """The automatic training as scoring runs it, on the module's history: due (nothing trained yet), so it ran."""

    models: ScoringModels
    refreshes: int  # how many times scoring_models refreshed the models to get there


@pytest.fixture(scope="module")
def trained(history) -> Trained:
    """Trained once for the module (the training is most of its time); the tests below read what it left."""
    engine, data_dir, _ = history
    calls: list[int] = []
    real = auto.refresh_models
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auto, "refresh_models", lambda *a, **k: calls.append(1) or real(*a, **k))
        models = scoring_models(engine, load_health_config(), data_dir, OPTIONS, refresh_days=7)
    return Trained(models, len(calls))


@dataclass(frozen=True)
class BothScales:
    """The book at AS_OF scored without a model (calibrated health) and with the automatically trained one."""

    without: pd.DataFrame
    with_model: pd.DataFrame
    churned: np.ndarray  # churns within the 30-day horizon after AS_OF, per account (rows of both frames)
    error: float  # the calibration error: the larger held-out ECE of the two scales
    state: dict


@pytest.fixture(scope="module")
def both_scales(history, trained) -> BothScales:
    engine, data_dir, book = history
    config = load_health_config()
    state = trained.models.state
    assert state["model"], state
    calibration = load_health_calibration(data_dir)
    assert calibration.fitted_on == "history" and calibration.horizon_days == 30
    with engine.connect() as conn:
        without = compute_scores(conn, AS_OF, config, calibration=calibration)
        with_model = compute_scores(
            conn, AS_OF, config, artifact=load_scoring_artifact(data_dir), calibration=calibration
        ).reindex(without.index)
    error = max(calibration.error, state["holdout"]["model_calibration_error"])
    return BothScales(without, with_model, _churn_within(book, without, engine, 30), error, state)


def _tier(risk: pd.Series) -> np.ndarray:
    return np.digitize(risk.to_numpy(dtype="float64"), TIERS[1:-1])


def test_adding_a_model_keeps_what_each_tier_means(both_scales):
    """Both sources are calibrated to the same outcome, so adding the model keeps the book's expected churn within
    the calibration error, and in every tier, with or without the model, accounts churn at the tier's rate.

    Tier *shares* are not held equal, and cannot be: the fitted health calibration tops out below the upper tiers
    (no health score makes churn within 30 days 80 % likely), while the model, which separates churners better,
    does put accounts there; the test checks that those accounts do churn that often.
    """
    without, with_model, state = both_scales.without, both_scales.with_model, both_scales.state
    assert state["holdout"]["model_roc_auc"] > state["holdout"]["health_roc_auc"]
    assert set(without["risk_source"]) == {"health"} and set(with_model["risk_source"]) == {"model"}
    assert with_model["churn_probability"].notna().all() and with_model["risk_drivers"].notna().all()
    assert without["churn_probability"].notna().all(), "without a model the calibrated health is the probability"
    assert (without["churn_probability"] * 100 - without["risk"]).abs().max() < 0.06 and set(
        without["churn_horizon_days"]
    ) == {30}
    tolerance = both_scales.error
    assert abs(with_model["risk"].mean() - without["risk"].mean()) / 100 < tolerance
    checked = 0
    for scored in (without, with_model):
        tier = _tier(scored["risk"])
        for t, (lo, hi) in enumerate(zip(TIERS, TIERS[1:], strict=False)):
            members = tier == t
            if members.sum() < 10:
                continue
            rate = both_scales.churned[members].mean()
            sampling = 2 * np.sqrt(0.25 / members.sum())  # two standard errors of a rate, at its widest
            assert lo / 100 - tolerance - sampling <= rate <= hi / 100 + tolerance + sampling, (t, rate, members.sum())
            checked += 1
    assert checked >= 4, "tiers with members were checked for both sources"


def tier_change_share(without: pd.Series, with_model: pd.Series) -> float:
    """The share of scored accounts whose tier (below 40, 40-60, 60-80, 80-100) differs between the two risks."""
    return float(np.mean(_tier(without) != _tier(with_model)))


@pytest.mark.xfail(
    strict=True,
    reason="does not hold: the model separates churners better than health (held-out ROC-AUC 0.95 against 0.84), "
    "so it moves 10.7 % of the 600 accounts between tiers (seed 11: 8.0 %) while the calibration error is 1.9 % "
    "(seed 11: 1.4 %); the accounts it moves churn as the model says (next test). See docs/risk.md.",
)
def test_tier_membership_changes_by_less_than_the_calibration_error(both_scales):
    """The brief's claim, literally: adding a model changes tier membership by less than the calibration error.

    Definitions (docs/risk.md):
    - tier of a risk r (0-100): below the programs (r < 40), 40-60, 60-80, 80-100 (a tier holds its lower bound);
    - tier change share: the share of the accounts scored at AS_OF whose tier differs between the risk without a
      model (the health calibration fitted on the store's history) and with the trained model;
    - calibration error: the larger of the two scales' expected calibration errors on the held-out dates of the
      automatic training's time split (engine.learning.risk.calibration_error: over deciles of predicted
      probability, the row-weighted mean of |mean predicted - observed churn rate|), a probability, so a share.

    The claim is: tier change share < calibration error. It is kept, marked as an expected failure, so that the
    figures stay measured and the marker has to go the day it holds.
    """
    share = tier_change_share(both_scales.without["risk"], both_scales.with_model["risk"])
    assert share < both_scales.error, (
        f"{share:.3f} of the accounts change tier; calibration error {both_scales.error:.3f}"
    )


def test_the_accounts_a_model_moves_between_tiers_churn_as_the_model_says(both_scales):
    """Why tier membership moves more than the calibration error: what moves is what the model knows better, not
    the scale. Among the accounts whose tier changes, grouped by direction, the observed 30-day churn rate matches
    the model's mean risk within the calibration error (plus two standard errors of a rate) and, where the group
    is large enough to tell, is far from what calibrated health said of the same accounts."""
    without, with_model, churned = both_scales.without["risk"], both_scales.with_model["risk"], both_scales.churned
    before, after = _tier(without), _tier(with_model)
    assert tier_change_share(without, with_model) > 0
    confirmed = 0
    for moved in (after > before, after < before):
        if moved.sum() < 10:
            continue
        rate = churned[moved].mean()
        allowed = both_scales.error + 2 * np.sqrt(0.25 / moved.sum())
        assert abs(rate - with_model[moved].mean() / 100) <= allowed, (rate, with_model[moved].mean())
        if moved.sum() >= 30:
            assert abs(rate - without[moved].mean() / 100) > allowed, (rate, without[moved].mean())
            confirmed += 1
    assert confirmed >= 1, "the larger group of moved accounts was checked against both scales"


def test_a_model_no_better_than_health_on_held_out_dates_is_refused(history, tmp_path, monkeypatch):
    engine, _, _ = history
    monkeypatch.setattr(auto, "health_auc", lambda frame: 1.0)  # health ranks the held-out dates perfectly
    state = refresh_models(engine, load_health_config(), tmp_path, OPTIONS)
    assert state["model"] is None and state["reason"].startswith("refused")
    assert load_scoring_artifact(tmp_path) is None
    assert load_health_calibration(tmp_path).fitted_on == "history", "risk still has a calibrated scale"


def test_scoring_trains_when_due_and_not_again_until_the_refresh_period(history, trained, tmp_path, monkeypatch):
    engine, data_dir, _ = history
    first = trained.models  # scoring_models on an empty data dir: due, so it trained
    assert trained.refreshes == 1 and first.artifact is not None
    calls = []
    real = auto.refresh_models
    monkeypatch.setattr(auto, "refresh_models", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = scoring_models(engine, load_health_config(), data_dir, OPTIONS, refresh_days=7)
    assert calls == [] and again.artifact.version == first.artifact.version
    off = scoring_models(engine, load_health_config(), tmp_path / "off", OPTIONS, refresh_days=0)
    assert off.artifact is None and off.calibration is None and calls == []


def test_the_refresh_on_worker_processes_is_the_refresh_in_turn(history, trained, tmp_path):
    """The panel's snapshots and the fits run on worker processes (app.ml.workers), all fits at once: the same
    held-out comparison, early warning and models as the refresh built and fitted one step after another here."""
    engine, data_dir, _ = history
    in_turn = refresh_models(engine, load_health_config(), tmp_path, replace(OPTIONS, workers=0))
    on_workers = json.loads((data_dir / "models" / auto.STATE_FILE).read_text())
    assert OPTIONS.workers == 2 and trained.models.artifact is not None
    for key in ("holdout", "early_warning", "calibration_error"):
        assert json.loads(json.dumps(json_ready(in_turn[key]))) == on_workers[key], key
    panel = labelled(load_panel(engine, load_health_config(), OPTIONS, through_end=True)).frame
    ours, theirs = load_scoring_artifact(tmp_path).bundle, trained.models.artifact.bundle
    for name in ("churn", "expansion", "warning"):
        mine, other = getattr(ours, name), getattr(theirs, name)
        assert mine is not None and other is not None, name
        np.testing.assert_array_equal(mine.predict_proba(panel), other.predict_proba(panel))
    np.testing.assert_array_equal(ours.survival.risk(panel), theirs.survival.risk(panel))
