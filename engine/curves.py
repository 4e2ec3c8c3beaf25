"""A sub-criterion's range table: a piecewise-linear map from an account metric to a 0-100 sub-score.

The tables come from the health config (engine/health.yaml, ``curves``), where an admin edits them; this module
holds the checked, fast evaluation that engine/health.py runs over every account at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from engine.canonical import METRIC_COLUMNS

__all__ = ["Curve", "check_table"]


def check_table(xp: tuple[float, ...], fp: tuple[float, ...]) -> None:
    """Raise ValueError (in an admin's words) unless ``(xp, fp)`` is a usable range table.

    x strictly increasing, scores within 0-100, monotonic (one "good" direction) and not flat.
    """
    if len(xp) != len(fp) or len(xp) < 2:
        raise ValueError("expected at least two [value, score] points")
    if any(b <= a for a, b in pairwise(xp)):
        raise ValueError(f"expected metric values in strictly increasing order, got {list(xp)}")
    if not all(0 <= y <= 100 for y in fp):
        raise ValueError(f"expected scores between 0 and 100, got {list(fp)}")
    steps = [b - a for a, b in pairwise(fp)]
    if not (all(d >= 0 for d in steps) or all(d <= 0 for d in steps)) or fp[0] == fp[-1]:
        raise ValueError(f"expected monotonic scores (only rising or only falling, not all equal), got {list(fp)}")


@dataclass(frozen=True)
class Curve:
    """One sub-metric of a factor: a piecewise-linear map through ``(xp, fp)``, weighted ``weight`` in its factor.

    ``xp`` must be strictly increasing. ``fp`` is non-decreasing for "higher is better" metrics and
    non-increasing for "lower is better" ones (tickets, resolution time, time to first value). Outside the
    breakpoints the curve is flat (clamped), so any input, however extreme, scores within 0-100; NaN stays NaN.
    """

    metric: str
    xp: tuple[float, ...]
    fp: tuple[float, ...]
    weight: float

    def __post_init__(self) -> None:
        if self.metric not in METRIC_COLUMNS:
            raise ValueError(f"unknown metric {self.metric!r}")
        if self.weight <= 0:
            raise ValueError(f"{self.metric}: weight must be positive")
        try:
            check_table(self.xp, self.fp)
        except ValueError as error:
            raise ValueError(f"{self.metric}: {error}") from None

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Same values as ``np.interp(x, xp, fp)``, built as a sum of clamped ramps, one per segment.

        Why not np.interp: its per-segment formula can overshoot a breakpoint by one ulp, so a slightly
        better metric could score a hair lower. Here every step (subtract, divide by a positive width, clip,
        scale, add) is monotonic in floating point, so the curve is exactly monotonic; a value on a breakpoint
        gives exactly its ``fp`` (a full ramp is exactly 1); and it is a little faster.
        """
        out = np.full(x.shape, float(self.fp[0]))
        ramp = np.empty(x.shape)
        with np.errstate(over="ignore"):  # a huge value overflows to inf, which the clip turns into 1
            for (x0, x1), (y0, y1) in zip(pairwise(self.xp), pairwise(self.fp), strict=True):
                if y1 == y0:
                    continue  # flat segment; some other segment carries NaN through (curves are not flat)
                np.subtract(x, x0, out=ramp)
                np.divide(ramp, x1 - x0, out=ramp)
                np.clip(ramp, 0.0, 1.0, out=ramp)  # NaN stays NaN
                np.multiply(ramp, y1 - y0, out=ramp)
                out += ramp
        return out

    @property
    def higher_is_better(self) -> bool:
        return self.fp[-1] >= self.fp[0]
