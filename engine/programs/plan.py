"""The pure part of running programs: who enters, leaves or escalates, who is held out, and the step table.

All of it is vectorized over the scored accounts (one frame, index = account id); the store side
(app/programs/tick.py) turns the answers into set-based statements.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from engine.canonical import METRIC_COLUMNS, SIGNAL_COLUMNS
from engine.conditions import SCORED_COLUMNS, risk_of
from engine.expressions import parse_condition
from engine.programs.definition import COLUMNS, Program
from engine.programs.surveys import SURVEY_COLUMNS

STEP_COLUMNS = ("program", "tier", "step", "key", "channel", "day", "after", "priority", "problem", "last")


def condition_frame(scored: pd.DataFrame) -> pd.DataFrame:
    """The scored accounts with every column a condition may read (missing ones as NaN) and `risk` derived."""
    frame = scored.copy()
    for column in (*METRIC_COLUMNS, *SIGNAL_COLUMNS, *SCORED_COLUMNS, *SURVEY_COLUMNS):
        if column not in frame and column != "risk":
            frame[column] = np.nan
    frame["risk"] = risk_of(frame)
    for column in ("band", "segment", "expansion_type"):
        frame[column] = frame[column].astype(object)
    return frame


def _holds(text: str, frame: pd.DataFrame) -> np.ndarray:
    return parse_condition(text, COLUMNS).evaluate(frame).to_numpy(dtype=bool)


def membership(program: Program, frame: pd.DataFrame) -> pd.DataFrame:
    """Per account: `entry` (bool), `exit_reason` (first exit that holds, else None), `tier` (index of the highest
    tier whose condition holds, -1 when none; 0 for a program without tiers) and `audience`."""
    n = len(frame)
    exit_reason = np.full(n, None, dtype=object)
    for reason, text in reversed(list(program.exit.items())):  # the first listed wins
        exit_reason = np.where(_holds(text, frame), reason, exit_reason)
    if program.tiers:
        tier = np.full(n, -1)
        for index, level in enumerate(program.tiers):
            tier = np.where(_holds(level.when, frame), index, tier)
    else:
        tier = np.zeros(n, dtype=int)
    audience = np.full(n, "default", dtype=object)
    for name, text in reversed(list(program.audiences.items())):
        audience = np.where(_holds(text, frame), name, audience)
    entry = _holds(program.entry, frame) & (tier >= 0) & pd.isna(exit_reason)
    return pd.DataFrame({"entry": entry, "exit_reason": exit_reason, "tier": tier, "audience": audience},
                        index=frame.index)  # fmt: skip


def held_out(program: str, account_ids: np.ndarray, share: float) -> np.ndarray:
    """The control group: deterministic by program and account (a stable hash, the same on every machine and run),
    so an account is in or out of a program's control group for good."""
    if share <= 0 or len(account_ids) == 0:
        return np.zeros(len(account_ids), dtype=bool)
    key = hashlib.sha256(program.encode()).hexdigest()[:16]
    hashes = pd.util.hash_array(np.asarray(account_ids, dtype=np.int64), hash_key=key)
    return (hashes % np.uint64(10_000)).astype(np.int64) < int(round(share * 10_000))


def step_table(programs: dict[str, Program]) -> pd.DataFrame:
    """One row per program, tier (index) and step (position within its tier): what a tick joins due enrollments to."""
    rows = []
    for name, program in programs.items():
        for tier, tier_name in enumerate(program.tier_names()):
            steps = program.steps_of(tier_name)
            for index, step in enumerate(steps):
                rows.append((name, tier, index, step.key, step.channel, step.day, step.after, step.priority,
                             step.problem, index == len(steps) - 1))  # fmt: skip
    return pd.DataFrame(rows, columns=list(STEP_COLUMNS))


def first_due_days(program: Program, tier: int) -> float:
    """Days from entering a tier to its first step."""
    steps = program.steps_of(program.tier_names()[tier])
    return steps[0].day if steps else 0.0
