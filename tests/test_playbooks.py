"""Playbook rules: conditions fire on the right accounts, dedupe keys are stable per period, bad rules refused."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from engine.learning.risk import PRIOR, risk_scale
from engine.playbooks import PlaybookError, load_playbooks, period_key, plan_actions

AS_OF = date(2026, 11, 4)


def _scored(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "health": np.full(n, 85.0), "band": ["healthy"] * n, "trend_7d": np.zeros(n), "tenure_days": np.full(n, 400.0),
        "days_since_login": np.zeros(n), "days_since_feature_use": np.zeros(n), "core_adoption": np.full(n, 0.9),
        "seats_active": np.full(n, 10.0), "usage_change_28d": np.zeros(n), "churn_signals_30d": np.zeros(n),
        "days_to_renewal": np.full(n, 200.0), "expansion_score": np.full(n, 10.0), "nps_90d": np.full(n, 7.0),
        "roi_pct": np.full(n, 50.0), "arr": np.full(n, 20000.0), "driver_1": [None] * n, "driver_2": [None] * n,
        "recommended_action": [None] * n,
    }  # fmt: skip
    base.update(columns)
    return pd.DataFrame(base, index=pd.Index(range(1, n + 1), name="account_id"))


def _steps(actions: pd.DataFrame, account_id: int) -> set[str]:
    return set(actions.loc[actions["account_id"] == account_id, "step"])


def test_onboarding_triggers_fire_only_for_new_accounts():
    scored = _scored(tenure_days=[10.0, 10.0, 300.0], days_since_login=[4.0, 1.0, 30.0],
                     days_since_feature_use=[8.0, 1.0, 30.0])  # fmt: skip
    actions = plan_actions(scored, AS_OF, load_playbooks())
    assert {"reengage_no_login_3d", "training_no_feature_use_7d"} <= _steps(actions, 1)
    assert not _steps(actions, 2) & {"reengage_no_login_3d", "training_no_feature_use_7d"}
    assert not _steps(actions, 3) & {"reengage_no_login_3d", "training_no_feature_use_7d"}


def test_retention_campaign_follows_risk_and_prefers_the_churn_model():
    # Without a model, risk is health through the prior calibration (engine/learning/risk.py PRIOR).
    scored = _scored(health=[5.0, 20.0, 40.0, 30.0], band=["churning", "churning", "critical", "churning"],
                     churn_probability=[np.nan, np.nan, np.nan, 0.1])  # fmt: skip
    actions = plan_actions(scored, AS_OF, load_playbooks())
    assert "executive_escalation" in _steps(actions, 1)  # risk 85
    assert "csm_call" in _steps(actions, 2)  # risk 70
    assert {"value_reminder", "csm_outreach"} <= _steps(actions, 3)  # risk 45
    assert not _steps(actions, 4) & {"executive_escalation", "csm_call", "value_reminder"}  # model says 10 %


def test_immediate_triggers_and_the_reason_a_csm_reads():
    scored = _scored(health=[50.0, 85.0], band=["critical", "healthy"], trend_7d=[-25.0, 0.0],
                     days_to_renewal=[30.0, 30.0], driver_1=["adoption", None], driver_2=["support", None],
                     recommended_action=["Run a feature-adoption session", None])  # fmt: skip
    actions = plan_actions(scored, AS_OF, load_playbooks())
    assert {"health_drop", "renewal_at_risk"} <= _steps(actions, 1)
    assert not _steps(actions, 2) & {"health_drop", "renewal_at_risk"}
    reason = actions.loc[(actions["account_id"] == 1) & (actions["step"] == "health_drop"), "reason"].item()
    assert reason == (
        "Health 50 (critical), 7-day trend -25; pulled down by: adoption, support. "
        "Recommended: Run a feature-adoption session."
    )


def test_dedupe_keys_repeat_within_a_period_and_change_across_periods():
    scored = _scored(trend_7d=[-30.0])
    monday = plan_actions(scored, date(2026, 11, 2), load_playbooks())
    sunday = plan_actions(scored, date(2026, 11, 8), load_playbooks())
    next_week = plan_actions(scored, date(2026, 11, 9), load_playbooks())

    def pick(frame: pd.DataFrame) -> str:
        return frame.loc[frame["step"] == "health_drop", "dedupe_key"].item()

    assert pick(monday) == pick(sunday) == "acct:1:immediate:health_drop:2026-W45"
    assert pick(next_week) != pick(monday)
    assert period_key(date(2026, 11, 9), "quarter") == "2026-Q4"
    assert period_key(date(2026, 5, 9), "half") == "2026-H1"


def test_an_invalid_rule_is_refused_with_its_place(tmp_path):
    path = tmp_path / "playbooks.yaml"
    path.write_text(
        "playbooks:\n  retention:\n    - {step: call, when: 'no_such_metric > 3', kind: crm_task, priority: high,"
        " due_hours: 1, period: week, title: Call}\n"
    )
    with pytest.raises(PlaybookError, match=r"playbooks.retention\[0\].when: 'no_such_metric > 3'"):
        load_playbooks(path)
    path.write_text("playbooks:\n  retention:\n    - {step: call, when: 'risk > 3', kind: fax, priority: high,"
                    " due_hours: 1, period: week, title: Call}\n")  # fmt: skip
    with pytest.raises(PlaybookError, match=r"playbooks.retention.0.kind"):
        load_playbooks(path)


def test_reason_reads_well_without_a_score():
    scored = _scored(health=[np.nan], band=[None], trend_7d=[np.nan], churn_signals_30d=[2.0])
    actions = plan_actions(scored, AS_OF, load_playbooks())
    reason = actions.loc[actions["step"] == "churn_signal", "reason"].item()
    assert reason == "Health n/a (unscored), 7-day trend n/a; pulled down by: none. Recommended: review the account."


def test_champion_left_fires_only_where_contacts_exist_but_no_champion():
    scored = _scored(has_champion=[0.0, 1.0, np.nan])
    actions = plan_actions(scored, AS_OF, load_playbooks())
    assert "champion_left" in _steps(actions, 1)
    assert "champion_left" not in _steps(actions, 2) | _steps(actions, 3)


def _rule_file(tmp_path, when: str):
    """A playbooks file whose second rule carries `when` on line 12."""
    path = tmp_path / "playbooks.yaml"
    path.write_text(
        "# an admin's copy\n"
        "playbooks:\n"
        "  retention:\n"
        "    - step: fine\n"
        "      when: risk >= 80\n"
        "      kind: crm_task\n"
        "      priority: high\n"
        "      due_hours: 1\n"
        "      period: week\n"
        "      title: Fine\n"
        "    - step: planted\n"
        f"      when: {when}\n"
        "      kind: crm_task\n"
        "      priority: high\n"
        "      due_hours: 1\n"
        "      period: week\n"
        "      title: Planted\n"
    )
    return path


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        ("'@pd.io.common.os.system(\"touch {marker}\") == 0'", "not a valid expression"),
        ('\'__import__("os").system("touch {marker}") == 0\'', "function calls are not allowed"),
        ('\'band.__class__.__init__.__globals__["os"].system("touch {marker}") == 0\'', "not allowed"),
        ('\'[c for c in [1] if __import__("os").system("touch {marker}")] == [0]\'', "comprehensions"),
    ],
)
def test_a_planted_expression_does_not_run_and_is_refused_with_file_and_line(tmp_path, template, refusal):
    marker = tmp_path / "ran"
    path = _rule_file(tmp_path, template.format(marker=marker))
    with pytest.raises(PlaybookError, match=refusal) as error:
        load_playbooks(path)
    assert str(error.value).startswith(f"{path}:12: playbooks.retention[1].when: ")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("when", "refusal"),
    [
        ("no_such_metric > 3", "unknown column 'no_such_metric'"),
        ("band > 3", "`>` takes numbers; band is a string"),
        ("arr == 'x'", "compares a number with a string"),
        ("arr and risk", "`and` takes conditions"),
        ("band == 'helthy'", "band is one of"),
        ("risk * 2", "not a condition"),
    ],
)
def test_unknown_columns_and_type_errors_are_load_errors_with_file_and_line(tmp_path, when, refusal):
    path = _rule_file(tmp_path, when)
    with pytest.raises(PlaybookError, match=refusal) as error:
        load_playbooks(path)
    assert str(error.value).startswith(f"{path}:12: playbooks.retention[1].when: ")


def test_the_shipped_rules_fire_on_the_same_accounts_as_the_pandas_rules_they_replace():
    """Oracle: pandas' own evaluation of the shipped (trusted) file, as the engine did before, on a book drawn so
    that every threshold of the file is hit from both sides and a fifth of every value is missing."""
    rng = np.random.default_rng(7)
    n = 5000
    numbers = {
        "tenure_days": [3, 13, 14, 20, 21, 59, 60, 66, 67, 89, 90, 96, 97, 400],
        "days_since_login": [0, 2, 3, 91], "days_since_feature_use": [0, 6, 7, 91],
        "core_adoption": [0.3, 0.5, 0.69, 0.7, 0.9], "seats_active": [1, 2, 3, 10],
        "trend_7d": [-25, -20, -19, 0], "usage_change_28d": [-0.6, -0.5, -0.4, 0.2],
        "churn_signals_30d": [0, 1, 3], "days_to_renewal": [30, 90, 91, 300], "has_champion": [0, 1],
        "health": [15, 30, 45, 55, 65, 85], "churn_probability": [0.1, 0.4, 0.6, 0.8, 0.95],
        "expansion_score": [10, 59, 60, 79, 80, 95], "nps_90d": [6, 8, 9, 10], "roi_pct": [50, 99, 100, 250],
        "arr": [5000, 9999, 10000, 50000, 50001, 90000],
    }  # fmt: skip
    columns = {name: rng.choice(np.asarray(values, dtype=float), n) for name, values in numbers.items()}
    columns["band"] = rng.choice(np.asarray(["healthy", "at_risk", "critical", "churning"], dtype=object), n)
    scored = pd.DataFrame(columns, index=pd.Index(range(1, n + 1), name="account_id"))
    scored = scored.mask(rng.random(scored.shape) < 0.2)
    playbooks = load_playbooks()
    actions = plan_actions(scored, AS_OF, playbooks)

    before = scored.copy()
    before["risk"] = risk_scale(before["health"], before["churn_probability"], PRIOR)[0]
    before["band"] = before["band"].astype(object)
    fired_somewhere = 0
    for playbook, rules in playbooks.playbooks.items():
        for rule in rules:
            expected = before.index[before.eval(rule.when).fillna(False).to_numpy(dtype=bool)]
            mine = actions.loc[(actions["playbook"] == playbook) & (actions["step"] == rule.step), "account_id"]
            assert sorted(mine) == sorted(expected), f"{playbook}.{rule.step}: {rule.when}"
            fired_somewhere += bool(len(expected)) and len(expected) < n
    assert fired_somewhere == sum(len(rules) for rules in playbooks.playbooks.values())  # every rule discriminates
