"""Playbook rules: conditions fire on the right accounts, dedupe keys are stable per period, bad rules refused."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

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
    scored = _scored(health=[15.0, 30.0, 55.0, 30.0], band=["churning", "churning", "critical", "churning"],
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
