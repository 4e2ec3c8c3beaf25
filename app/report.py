"""The book of business by health band: what `cse demo` and `cse score` print."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.table import Table

from app.band_totals import BandTotals


def book_by_band(scored: pd.DataFrame) -> dict[str, Any]:
    """Count, share, average health and expansion potential (currency) per band, every band always present."""
    return BandTotals.of(scored).summary()


def band_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column, justify in (("band", "left"), ("accounts", "right"), ("share", "right"),
                            ("avg health", "right"), ("expansion potential", "right")):  # fmt: skip
        table.add_column(column, justify=justify)
    for band, row in summary["bands"].items():
        avg = "–" if row["avg_health"] is None else f"{row['avg_health']:.1f}"
        table.add_row(band, f"{row['count']:,}", f"{row['share']:.1%}", avg, f"${row['expansion_potential']:,.0f}")
    table.add_row("total", f"{summary['accounts']:,}", "100.0%", "", "", style="bold")
    return table
