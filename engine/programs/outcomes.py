"""What a program achieved, measured against its control group.

Success is an enrollment's outcome (an exit reason the program counts as success, e.g. `recovered`). The uplift
is the treated success rate minus the control group's, with Newcombe's hybrid score interval for a difference of
two independent proportions (method 10 in Newcombe, Statistics in Medicine 1998): built from each group's Wilson
interval, it keeps its coverage for small groups and rates near 0 or 1, where the plain Wald interval fails. An
uplift is called significant only when its interval excludes zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when there is no observation."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Uplift:
    treated_n: int
    treated_rate: float | None
    control_n: int
    control_rate: float | None
    uplift: float | None
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def uplift(treated_success: int, treated_n: int, control_success: int, control_n: int,
           confidence: float = CONFIDENCE) -> Uplift:  # fmt: skip
    """Difference of success rates (treated - control) with Newcombe's hybrid score interval."""
    p1 = treated_success / treated_n if treated_n else None
    p0 = control_success / control_n if control_n else None
    if p1 is None or p0 is None:
        return Uplift(treated_n, p1, control_n, p0, None, None, None)
    l1, u1 = wilson(treated_success, treated_n, confidence)
    l0, u0 = wilson(control_success, control_n, confidence)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Uplift(treated_n, p1, control_n, p0, d, low, high)


def program_outcomes(enrollments: pd.DataFrame, success: tuple[str, ...]) -> dict:
    """Counts, success rates, uplift and revenue of one program's enrollments.

    `enrollments`: status, exit_reason, holdout, arr_at_entry, arr_at_end (one row per enrollment).
    """
    rows = enrollments
    won = rows["exit_reason"].isin(success).to_numpy()
    if "completed" in success:
        won = won | (rows["status"] == "completed").to_numpy()
    control = rows["holdout"].fillna(False).astype(bool).to_numpy()
    if success:
        measured = uplift(int(won[~control].sum()), int((~control).sum()), int(won[control].sum()),
                          int(control.sum()))  # fmt: skip
    else:  # a program without a success outcome (a survey, a cadence) is counted, not measured
        measured = Uplift(int((~control).sum()), None, int(control.sum()), None, None, None, None)
    treated_arr = float(rows.loc[~control, "arr_at_entry"].fillna(0).sum())
    growth = (rows["arr_at_end"] - rows["arr_at_entry"]).clip(lower=0).fillna(0)
    converted = (rows["exit_reason"] == "converted").to_numpy() & ~control
    exits = rows.loc[rows["status"] == "exited", "exit_reason"].value_counts()
    return {
        "entered": int(len(rows)),
        "active": int((rows["status"] == "active").sum()),
        "completed": int((rows["status"] == "completed").sum()),
        "exited": {str(k): int(v) for k, v in exits.items()},
        "control": int(control.sum()),
        "success_rate": measured.treated_rate,
        "uplift": measured.as_dict(),
        "revenue_protected": round(treated_arr * measured.uplift, 2) if measured.significant else 0.0,
        "expansion_won": round(float(np.sum(growth.to_numpy()[converted])), 2),
    }
