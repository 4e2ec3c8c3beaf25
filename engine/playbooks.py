"""Playbooks: which actions to plan for which accounts, from rules an admin can edit (engine/playbooks.yaml).

A rule's condition is written in the checked expression language of engine/expressions.py (never pandas' eval:
an edited file must not be able to run code), checked against the scored columns and their types when the file is
loaded, and evaluated over all scored accounts at once, so a playbook run costs a handful of vectorized passes
however large the book is; the dedupe key (account, playbook, step, period) makes reruns, retries and overlapping
schedules plan each action once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.canonical import METRIC_COLUMNS, SIGNAL_COLUMNS, Band, Segment
from engine.expansion import EXPANSION_TYPES
from engine.expressions import Columns, Expression, ExpressionError, parse_condition
from engine.learning.risk import PRIOR, RISK_SOURCES, risk_scale
from engine.yaml_lines import line_of

DEFAULT_PLAYBOOKS = Path(__file__).with_name("playbooks.yaml")
# Columns a rule may read besides the metrics and signals.
SCORED_COLUMNS = (
    "health", "band", "trend_7d", "trend_30d", "churn_probability", "risk", "expansion_score", "expansion_type",
    "revenue_potential", "arr", "segment", "seats_active", "seats_purchased", "days_to_renewal", "risk_source",
)  # fmt: skip
# What a `when` may read: every column is a number except these strings, whose values are known.
CONDITION_COLUMNS: Columns = {
    **{name: "number" for name in (*METRIC_COLUMNS, *SIGNAL_COLUMNS, *SCORED_COLUMNS)},
    "band": tuple(Band),
    "segment": tuple(Segment),
    "expansion_type": EXPANSION_TYPES,
    "risk_source": RISK_SOURCES,
}
ACTION_COLUMNS = ("account_id", "playbook", "step", "kind", "priority", "due", "title", "reason", "dedupe_key")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str = Field(pattern=r"^[a-z0-9_]+$")
    when: str = Field(min_length=1)
    kind: Literal["crm_task", "inapp_message"]
    priority: Literal["low", "normal", "high", "urgent"]
    due_hours: float = Field(ge=0)
    period: Literal["once", "week", "month", "quarter", "half"]
    title: str = Field(min_length=1, max_length=255)


class Playbooks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    playbooks: dict[str, tuple[Rule, ...]]


class PlaybookError(ValueError):
    pass


@lru_cache(maxsize=1024)
def condition(when: str) -> Expression:
    """The checked form of a rule's `when` (parsed once per distinct text)."""
    return parse_condition(when, CONDITION_COLUMNS)


def load_playbooks(path: str | Path | None = None) -> Playbooks:
    """Load and check the playbooks: schema first, then every `when` against the columns it may read.

    Every problem is reported as `file:line: where: ...`; nothing in the file is evaluated.
    """
    source = Path(path) if path else DEFAULT_PLAYBOOKS
    try:
        text = source.read_text()
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as error:
        raise PlaybookError(f"{source}: cannot read playbooks: {error}") from error
    try:
        playbooks = Playbooks.model_validate(data)
    except ValidationError as error:
        problems = [_at(source, root, e["loc"], f"{'.'.join(map(str, e['loc']))}: {e['msg']}") for e in error.errors()]
        raise PlaybookError("; ".join(problems)) from error
    problems = []
    for name, rules in playbooks.playbooks.items():
        for index, rule in enumerate(rules):
            try:
                condition(rule.when)
            except ExpressionError as error:
                where = f"playbooks.{name}[{index}].when: {rule.when!r}: {error}"
                problems.append(_at(source, root, ("playbooks", name, index, "when"), where))
    if problems:
        raise PlaybookError("\n".join(problems))
    return playbooks


def _at(source: Path, root: yaml.Node | None, loc: tuple[int | str, ...], message: str) -> str:
    line = line_of(root, loc)
    return f"{source}:{line}: {message}" if line else f"{source}: {message}"


def period_key(as_of: date, period: str) -> str:
    if period == "once":
        return "once"
    if period == "week":
        year, week, _ = as_of.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{as_of:%Y-%m}"
    if period == "quarter":
        return f"{as_of.year}-Q{(as_of.month - 1) // 3 + 1}"
    return f"{as_of.year}-H{(as_of.month - 1) // 6 + 1}"


def _words(values: pd.Series, missing: str) -> pd.Series:
    """Text for string concatenation; pandas 3 keeps missing values missing through astype(str)."""
    return values.astype(object).where(values.notna(), missing).astype(str)


def _reason(frame: pd.DataFrame) -> pd.Series:
    """Why the CSM is asked to act: the score, its trend, what pulls it down and the recommended step."""
    empty = pd.Series(None, index=frame.index, dtype=object)
    health = _words(frame["health"].round(0).astype("Int64"), "n/a")
    trend = _words(frame["trend_7d"].round(0).astype("Int64"), "n/a")
    first = _words(frame.get("driver_1", empty), "none")
    second = frame.get("driver_2", empty)
    drivers = first.where(second.isna(), first + ", " + _words(second, ""))
    action = _words(frame.get("recommended_action", empty), "review the account")
    return (
        "Health " + health + " (" + _words(frame["band"], "unscored") + "), 7-day trend " + trend
        + "; pulled down by: " + drivers + ". Recommended: " + action + "."
    )  # fmt: skip


def risk_of(frame: pd.DataFrame) -> pd.Series:
    """The one risk scale (0-100, engine.learning.risk) conditions read: the scored `risk` column, else the same
    scale derived here with the prior calibration (a frame scored elsewhere than app/scoring.py)."""
    if "risk" in frame:
        return pd.to_numeric(frame["risk"], errors="coerce")
    return risk_scale(frame["health"], frame.get("churn_probability"), PRIOR)[0]


def plan_actions(scored: pd.DataFrame, as_of: date, playbooks: Playbooks) -> pd.DataFrame:
    """Actions due from `scored` (index = account id) as of `as_of`, one row per fired rule and account."""
    frame = scored.copy()
    for column in (*METRIC_COLUMNS, *SIGNAL_COLUMNS, *SCORED_COLUMNS):
        if column not in frame and column not in ("risk", "risk_source"):
            frame[column] = np.nan  # a metric without data: comparisons with it are simply false
    if "risk" not in frame:  # scored elsewhere than app/scoring.py: the same scale, with the prior calibration
        frame["risk"], frame["risk_source"] = risk_scale(frame["health"], frame.get("churn_probability"), PRIOR)
    frame["band"] = frame["band"].astype(object)
    reasons = _reason(frame)
    start = datetime.combine(as_of, datetime.min.time())
    planned = []
    for playbook, rules in playbooks.playbooks.items():
        for rule in rules:
            fired = frame.index[condition(rule.when).evaluate(frame).to_numpy()]
            if fired.empty:
                continue
            ids = fired.to_numpy()
            key = f"{playbook}:{rule.step}:{period_key(as_of, rule.period)}"
            planned.append(
                pd.DataFrame(
                    {
                        "account_id": ids,
                        "playbook": playbook,
                        "step": rule.step,
                        "kind": rule.kind,
                        "priority": rule.priority,
                        "due": start + timedelta(hours=rule.due_hours),
                        "title": rule.title,
                        "reason": reasons.loc[fired].to_numpy(),
                        "dedupe_key": pd.Series(ids).astype(str).radd("acct:").add(":" + key).to_numpy(),
                    }
                )
            )
    if not planned:
        return pd.DataFrame(columns=list(ACTION_COLUMNS))
    return pd.concat(planned, ignore_index=True)
