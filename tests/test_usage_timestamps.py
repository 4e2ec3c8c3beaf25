"""The event log's timestamps are read as fixed-width bytes and, when a column has one ISO shape, parsed by NumPy
(app/history/usage.py): every kind of column must give the same days pandas gives reading the same text."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from app.history.usage import DAY_BITS, TIME_WIDTH, _days, _uniform_iso

COLUMNS = {
    "seconds": ["2020-01-01 00:03:57", "", "2020-01-02 23:59:59"],
    "a date among times (pandas: unreadable)": ["2020-01-01 00:03:57", "2020-01-02", "NULL"],
    "offsets (UTC day)": ["2020-01-01T10:00:00+05:00", "2020-01-01T23:00:00-05:00"],
    "zulu and a missing word": ["2020-01-01T23:10:00Z", "nan", "N/A"],
    "dates": ["2020-01-01", "2021-12-31"],
    "an impossible date": ["2020-02-30 00:00:00", "2020-01-01 00:00:00"],
    "epoch seconds": ["1577836800", "1577836801"],
    "month first": ["01/02/2020", "12/31/2020"],
    "before 1970": ["1969-12-31 23:00:00", "2020-01-01 00:00:00.123"],
    "fractions": ["2020-01-01 00:00:00.123456", "2020-01-01 23:59:59.999999"],
    "mixed separators": ["2020-01-01T00:00:00", "2020-01-02 00:00:00"],
    "too long to read": ["2020-01-01 00:00:00" + "0" * TIME_WIDTH, "2020-01-01 00:00:00"],
}


def _pandas_days(text: pd.Series) -> np.ndarray:
    """The reading before the fixed-width one: text parsed by pandas, tz-aware as UTC."""
    parsed = pd.to_datetime(text, errors="coerce", utc=True).dt.tz_localize(None)
    days = parsed.to_numpy(dtype="datetime64[us]").view(np.int64) // (86_400 * 10**6)
    return np.where((days < 0) | (days >= 1 << DAY_BITS), -1, days)


@pytest.mark.filterwarnings("ignore:Could not infer format")
@pytest.mark.parametrize("values", COLUMNS.values(), ids=COLUMNS.keys())
def test_fixed_width_timestamps_give_the_days_pandas_gives(values) -> None:
    csv = "t\n" + "\n".join(values) + "\n"
    as_text = pd.read_csv(io.StringIO(csv), dtype={"t": str})["t"]
    as_bytes = pd.read_csv(io.StringIO(csv), dtype={"t": f"S{TIME_WIDTH}"})["t"]
    expected = _pandas_days(as_text.where(as_text.str.len() < TIME_WIDTH))
    np.testing.assert_array_equal(_days(as_bytes), expected)


def test_one_iso_shape_takes_the_numpy_path_and_others_do_not() -> None:
    def raw(values: list[str]) -> np.ndarray:
        return np.array([v.encode() for v in values], dtype=f"S{TIME_WIDTH}")

    assert _uniform_iso(raw(["2020-01-01 00:03:57", "", "2021-12-31 23:59:59"])) is not None
    for values in (["2020-01-01 00:03:57", "2020-01-02"], ["2020-01-01T10:00:00+05:00"], ["1577836800"],
                   ["2020-01-01T00:00:00", "2020-01-02 00:00:00"], ["2020-02-30 00:00:00"]):  # fmt: skip
        assert _uniform_iso(raw(values)) is None, values
