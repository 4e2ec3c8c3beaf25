"""`cse import|train|evaluate|score --data NAME` on a history import, end to end through the CLI, and the
horizon honoured or refused, never ignored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import cli

SAMPLE = Path(__file__).parent / "fixtures" / "history"


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("CSE_DATA_DIR", str(data))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cse.db'}")
    monkeypatch.setenv("CSE_MODEL_KEY", "history-cli-test-key-0123456789")
    shutil.copytree(SAMPLE, tmp_path / "export")
    return tmp_path / "export"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_import_train_evaluate_and_score_a_history_import(env: Path) -> None:
    imported = run("import", str(env / "saas.yaml"), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["kind"] == "history"
    evaluated = run("evaluate", "--data", "saas", "--every", "15", "--json", "--scores", str(env / "scores.csv"))
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["split"] == "time" and report["horizon_days"] == 30
    # the test rows' scores, keyed by the export's account id, for a row-by-row comparison with another model
    scores = pd.read_csv(env / "scores.csv")
    assert len(scores) == report["test_rows"] and scores["churned"].sum() == report["churn"]["positives"]
    assert set(scores["account"].astype(str)) <= set(pd.read_csv(env / "subscriptions.csv")["account_id"].astype(str))
    assert scores["as_of"].min() >= report["test_window"]["first_observation"]
    assert report["train_window"]["last_observation"] < report["test_window"]["first_observation"]
    assert 0.0 <= report["churn"]["roc_auc"] <= 1.0 and "lead_time" in report
    trained = run("train", "--data", "saas", "--every", "15", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["horizon_days"] == 30
    scored = run("score", "--data", "saas", "--json")
    assert scored.exit_code == 0, scored.output
    accounts = json.loads(scored.stdout)["accounts"]
    assert accounts and all(0.0 <= a["churn_probability"] <= 1.0 for a in accounts)
    refused = run("score", "--data", "saas", "--horizon", "60")
    assert refused.exit_code == 1 and "30 days" in refused.output  # the model's horizon, not silently another


def test_a_flat_import_refuses_horizon_and_every_instead_of_ignoring_them(env: Path) -> None:
    pd.DataFrame({"id": range(40), "churned": [i % 2 for i in range(40)], "seats": range(40)}).to_csv(
        env / "flat.csv", index=False
    )
    (env / "flat.yaml").write_text(
        "name: flat\ntables: {c: {path: flat.csv}}\nbase: c\nid: id\nlabel: {from: churned}\ncolumns: {seats: number}\n"
    )
    assert run("import", str(env / "flat.yaml")).exit_code == 0
    refused = run("train", "--data", "flat", "--horizon", "60")
    assert refused.exit_code == 1 and "--horizon" in refused.output
    assert run("evaluate", "--data", "flat").exit_code == 1


def test_the_health_backtest_runs_on_a_history_import(env: Path) -> None:
    assert run("import", str(env / "saas.yaml")).exit_code == 0
    backtest = run("backtest-health", "--data", "saas", "--every", "15", "--json")
    assert backtest.exit_code == 0, backtest.output
    result = json.loads(backtest.stdout)
    assert result["source"] == "import:saas" and result["horizon_days"] == 30
    assert result["rows"] > 0 and result["positives"] > 0 and 0.0 <= result["auc_current"] <= 1.0
    monthly = json.loads(run("backtest-health", "--data", "saas", "--json").stdout)
    assert result["observation_dates"] > monthly["observation_dates"] >= 2  # --every honoured; monthly by default
    pd.DataFrame({"id": range(4), "churned": [0, 1, 0, 1]}).to_csv(env / "flat.csv", index=False)
    (env / "flat.yaml").write_text(
        "name: flat\ntables: {c: {path: flat.csv}}\nbase: c\nid: id\nlabel: {from: churned}\ncolumns: {}\n"
    )
    assert run("import", str(env / "flat.yaml")).exit_code == 0
    refused = run("backtest-health", "--data", "flat")
    assert refused.exit_code == 1 and "not a history import" in refused.output
