"""Running totals of a scoring run by health band: what the book-by-band summary needs, added up chunk by chunk.

A streamed or sharded run never holds the whole book's scores, so the summary is built from per-band sums (count,
health sum and count, revenue potential) that can be added over chunks and shards and stored as JSON in between;
likewise how many accounts got a churn probability, risk drivers and a risk, which the stored rows cannot tell
(a run writes a row only for an account whose score moved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.canonical import BANDS_BEST_FIRST

BAND_NAMES = tuple(band.value for band in BANDS_BEST_FIRST)
_SUMS = ("count", "health_sum", "health_count", "potential")
# Accounts with a value in each of these score columns (cse score's risk summary), keyed as the summary names them.
RISK_COUNTS = {"with_churn_probability": "churn_probability", "with_risk_drivers": "risk_drivers", "with_risk": "risk"}


@dataclass
class BandTotals:
    accounts: int = 0
    # Per band: accounts, sum and count of non-missing health, summed revenue potential.
    bands: dict[str, dict[str, float]] = field(
        default_factory=lambda: {band: dict.fromkeys(_SUMS, 0.0) for band in BAND_NAMES}
    )
    risk: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RISK_COUNTS, 0))

    @classmethod
    def of(cls, scored: pd.DataFrame) -> BandTotals:
        totals = cls()
        totals.add(scored)
        return totals

    def add(self, scored: pd.DataFrame) -> None:
        """Add one chunk of scored accounts (index = account id; columns band, health, revenue_potential and the
        RISK_COUNTS columns)."""
        self.accounts += len(scored)
        for key, column in RISK_COUNTS.items():
            self.risk[key] += int(scored[column].notna().sum())
        band = scored["band"].astype(object).to_numpy()
        health = scored["health"].to_numpy(dtype="float64")
        potential = scored["revenue_potential"].to_numpy(dtype="float64")
        for name, sums in self.bands.items():
            rows = band == name
            sums["count"] += int(rows.sum())
            # Rounded past the scores' own 0.1 so the total does not depend on how the book was chunked: float
            # addition in another order can tip an average lying on a .x5 boundary to the other side.
            sums["health_sum"] = round(sums["health_sum"] + float(np.nansum(health[rows])), 6)
            sums["health_count"] += int((rows & ~np.isnan(health)).sum())
            sums["potential"] += float(np.nansum(potential[rows]))

    def merge(self, other: BandTotals) -> None:
        self.accounts += other.accounts
        for key in RISK_COUNTS:
            self.risk[key] += other.risk[key]
        for name, sums in self.bands.items():
            for key in _SUMS:
                sums[key] = round(sums[key] + other.bands[name][key], 6)

    def to_json(self) -> dict[str, Any]:
        return {"accounts": self.accounts, "bands": self.bands, "risk": self.risk}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BandTotals:
        totals = cls(accounts=int(data["accounts"]), risk={key: int(data["risk"][key]) for key in RISK_COUNTS})
        for name in BAND_NAMES:
            totals.bands[name].update(data["bands"][name])
        return totals

    def summary(self) -> dict[str, Any]:
        """Count, share, average health and expansion potential (currency) per band, every band always present."""
        total = self.accounts
        bands = {}
        for name, sums in self.bands.items():
            count = int(sums["count"])
            bands[name] = {
                "count": count,
                "share": round(count / total, 4) if total else 0.0,
                "avg_health": round(sums["health_sum"] / sums["health_count"], 1) if sums["health_count"] else None,
                "expansion_potential": round(float(sums["potential"]), 2),
            }
        unscored = total - sum(b["count"] for b in bands.values())
        return {"accounts": total, "unscored": unscored, "bands": bands}
