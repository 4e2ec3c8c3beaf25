"""End to end on a small demo book: `cse train`, `cse evaluate` (time split + HTML), `cse backtest-health`, and
the model columns of a scoring run."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import typer
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from app.book_loader import load_book
from app.cli.ml import register
from app.demo.book import BookSpec, generate_book
from app.ml.scorer import MODEL_SCORE_COLUMNS, load_scoring_artifact, model_scores
from app.store.db import make_engine, upgrade_schema
from app.store.metrics import account_metrics
from engine.expansion import score_expansion
from engine.health import score_health
from engine.health_config import FactorWeights, load_health_config

AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 200-account book with 220 days of history in SQLite, and a CLI pointed at it."""
    folder = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{folder / 'cse.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    book = generate_book(BookSpec(seed=3, active_accounts=200, days=220, as_of=AS_OF))
    load_book(engine, book.accounts, book.contacts, book.events)
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", url)
    mp.setenv("CSE_DATA_DIR", str(folder / "data"))
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    yield engine, folder / "data", run
    mp.undo()
    engine.dispose()


def test_evaluate_reports_a_time_split_and_writes_an_offline_html_report(demo):
    _, data_dir, run = demo
    report = json.loads(run("evaluate", "--json"))
    train, test = report["train_window"], report["test_window"]
    assert train["labels_until"] <= test["first_observation"]  # no training label reaches into the test period
    metrics = report["metrics"]
    assert metrics["roc_auc"] > 0.8 and metrics["pr_auc"] > 0.3 and metrics["brier"] < 0.1
    assert metrics["top_decile_lift"] > 3
    assert len(report["calibration"]) == 10 and report["lead_time"]["churners"] > 0
    assert report["lead_time"]["flagged_share"] > 0.5 and report["lead_time"]["median_days"] > 0
    assert report["survival"]["concordance"] > 0.7
    assert report["top_accounts"][0]["drivers"]
    html = Path(report["report_path"]).read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 4
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in html
    text = run("evaluate", "--no-html", "--every", "14")
    assert "ROC-AUC" in text and "Calibration" in text


def test_backtest_health_proposes_weights_next_to_the_current_ones(demo):
    _, _, run = demo
    result = json.loads(run("backtest-health", "--json"))
    assert 0.5 < result["auc_current"] < 1
    assert abs(sum(result["proposed_weights"].values()) - 1) < 1e-9
    factors = {row["factor"]: row for row in result["factors"]}
    assert not factors["outcomes"]["measured"]  # ROI is not historized in the store
    assert factors["engagement"]["measured"] and factors["engagement"]["auc"] > 0.5
    assert "auc_proposed_test" in result
    weights = yaml.safe_load(result["proposed_health_yaml"])["weights"]
    FactorWeights.model_validate(weights)  # a drop-in weights block for the health config


def test_train_saves_a_model_that_the_scorer_uses(demo):
    engine, data_dir, run = demo
    summary = json.loads(run("train", "--every", "14", "--json"))
    assert summary["model_version"].startswith("churn-store-")
    assert summary["training_window"]["last_observation"] < AS_OF.isoformat()
    artifact = load_scoring_artifact(data_dir)
    assert artifact is not None and artifact.version == summary["model_version"]
    config = load_health_config()
    with engine.connect() as conn:
        metrics = account_metrics(conn, AS_OF, config.core_features, config.features)
        health = score_health(metrics, config)
        heuristic = score_expansion(metrics, health["health"])
        scores = model_scores(conn, AS_OF, config, metrics, heuristic, artifact)
    assert list(scores.columns) == list(MODEL_SCORE_COLUMNS)
    assert scores.index.equals(metrics.index) and len(scores) == 200
    assert scores["churn_probability"].between(0, 1).all() and scores["churn_horizon_days"].eq(30).all()
    assert scores["model_version"].eq(artifact.version).all()
    assert scores["expansion_score"].between(0, 100).all()
    riskiest = scores["churn_probability"].idxmax()
    assert scores.loc[riskiest, "risk_drivers"] and "label" in scores.loc[riskiest, "risk_drivers"][0]


def test_train_cross_validates_store_history_grouped_by_account(demo):
    _, _, run = demo
    summary = json.loads(run("train", "--cv", "3", "--every", "14", "--no-save", "--json"))
    assert summary["cv"] == 3 and summary["roc_auc"] > 0.8 and "model_version" not in summary


def test_a_scoring_run_with_the_trained_model_stores_churn_risk(demo):
    from app.scoring import score_and_store
    from app.store.models import Score
    from app.writeback.outbox import _field_values

    engine, data_dir, run = demo
    if load_scoring_artifact(data_dir) is None:
        run("train", "--every", "14", "--json")
    artifact = load_scoring_artifact(data_dir)
    with engine.begin() as conn:
        scored = score_and_store(conn, AS_OF, load_health_config(), artifact=artifact)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Score.churn_probability, Score.risk_drivers, Score.model_version, Score.days_to_churn).where(
                Score.model_version == artifact.version
            )
        ).all()
    assert len(rows) == len(scored) == 200
    assert all(0 <= r.churn_probability <= 1 for r in rows)
    assert any(r.risk_drivers and "label" in r.risk_drivers[0] for r in rows)
    fields = _field_values(scored, AS_OF)
    riskiest = scored["churn_probability"].idxmax()
    assert "pts" in fields.loc[riskiest, "risk_drivers"], "the CRM shows the model's drivers, with their weight"


@pytest.mark.parametrize("command", ["train", "evaluate", "backtest-health"])
def test_an_empty_store_is_refused_with_the_reason(command, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade_schema(make_engine(url))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CSE_DATA_DIR", str(tmp_path / "data"))
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 1, result.output
    assert "no usable history" in result.output


def _openmp_threads() -> int:
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp")


def test_the_fits_on_a_worker_process_keep_the_refresh_thread_limit() -> None:
    """OpenMP's thread count is per thread, and a worker process starts with one per core: the refresh's limit does
    not reach the workers the bundle's fits and the early-warning evaluation run on, so each caps itself
    (app.ml.train.capped)."""
    from threadpoolctl import threadpool_limits

    from app.ml.train import capped
    from app.ml.workers import model_workers

    with threadpool_limits(limits=1), model_workers(1) as pool:
        assert _openmp_threads() == 1
        plain = pool.submit(_openmp_threads).result()
        limited = pool.submit(capped, 1, _openmp_threads).result()
    assert limited == 1
    assert plain >= limited  # on a machine of two cores or more (and no OMP_NUM_THREADS), plain is the cores
