"""`cse import`: mapping validation, typing, aggregates, point-in-time activity features, and the saved table."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from app.cli.ml import register
from app.ml.import_mapping import ImportMappingError, load_mapping, resolve_mapping_path
from app.ml.import_tables import activity_features, build_dataset
from app.ml.importer import import_file, load_dataset


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A small multi-table export: customers, invoices, and an activity log with timestamps."""
    write(tmp_path, "customers.csv", """
        cust,plan,seats,trial,since,left
        c1,pro,10,False,2024-01-01,Yes
        c2,basic,3,True,2024-06-01,No
        c3,pro,,False,2023-01-01,No
        c4,basic,5,False,2024-03-01,yes
    """)  # fmt: skip
    write(tmp_path, "invoices.csv", """
        inv,cust,amount,paid_on,late
        i1,c1,100,2024-01-05,True
        i2,c1,120,2024-02-05,False
        i3,c2,30,2024-06-05,False
    """)  # fmt: skip
    write(tmp_path, "events.csv", """
        cust,at,what,n,score
        c1,2024-12-30,login,3,
        c1,2024-11-20,login,5,
        c1,2024-12-31,survey,1,6
        c2,2024-12-01,login,1,
        c2,2025-02-01,login,9,
        c3,2024-06-01,survey,1,9
    """)  # fmt: skip
    return write(tmp_path, "mapping.yaml", """
        name: sample
        tables:
          customers: {path: customers.csv}
          invoices: {path: invoices.csv}
          events: {path: events.csv}
        base: customers
        id: cust
        label: {from: left}
        columns:
          plan: category
          seats: number
          trial: boolean
          tenure: {type: days_since, from: since}
        aggregates:
          - table: invoices
            key: cust
            features:
              invoices: {agg: count}
              revenue: {agg: sum, column: amount}
              last_amount: {agg: last, column: amount, order_by: paid_on}
              late_share: {agg: mean, column: late}
        activity:
          as_of: 2024-12-31
          windows: [30, 90]
          logs:
            - {table: events, time: at, key: cust, kind: login, count: n, where: {what: login}}
            - {table: events, time: at, key: cust, kind: survey, value: score, where: {what: survey}}
    """)  # fmt: skip


def test_an_export_becomes_a_typed_training_table(export: Path):
    dataset = build_dataset(load_mapping(export), export.parent)
    frame = dataset.frame
    assert dataset.label.tolist() == [1, 0, 0, 1]  # Yes / yes -> 1
    assert frame.loc["c1", "trial"] == 0.0 and frame.loc["c2", "trial"] == 1.0
    assert np.isnan(frame.loc["c3", "seats"])
    assert frame.loc["c1", "tenure"] == (pd.Timestamp("2024-12-31") - pd.Timestamp("2024-01-01")).days
    assert frame.loc["c1", "invoices"] == 2 and frame.loc["c4", "invoices"] == 0
    assert frame.loc["c1", "revenue"] == 220 and frame.loc["c1", "last_amount"] == 120
    assert frame.loc["c1", "late_share"] == 0.5
    assert "plan" in dataset.spec.categorical and "login_30d" in dataset.spec.numeric
    assert "left" not in dataset.spec.columns and "cust" not in dataset.spec.columns


def test_activity_after_the_snapshot_date_is_ignored(export: Path):
    frame = build_dataset(load_mapping(export), export.parent).frame
    assert frame.loc["c1", "login_30d"] == 3 and frame.loc["c1", "login_90d"] == 8
    assert frame.loc["c2", "login_90d"] == 1  # the 9 logins of 2025-02-01 come after as_of
    assert frame.loc["c2", "login_30d"] == 0  # 2024-12-01 is 30 days before as_of: outside the last 30 days
    assert frame.loc["c1", "survey_avg_30d"] == 6 and np.isnan(frame.loc["c3", "survey_avg_90d"])
    assert frame.loc["c1", "days_since_login"] == 1 and np.isnan(frame.loc["c4", "days_since_login"])


def test_activity_features_are_point_in_time():
    events = pd.DataFrame(
        {
            "id": ["a", "a", "a"],
            "time": pd.to_datetime(["2024-01-01", "2024-01-20", "2024-03-01"]),
            "kind": "login",
            "count": [1.0, 2.0, 4.0],
            "value": np.nan,
            "feature": None,
        }
    )
    index = pd.Index(["a", "b"])
    with_future = activity_features(events, index, pd.Timestamp("2024-01-31"), [30])
    without_future = activity_features(events.iloc[:2], index, pd.Timestamp("2024-01-31"), [30])
    pd.testing.assert_frame_equal(with_future, without_future)
    assert with_future.loc["a", "login_30d"] == 2  # 2024-01-01 is 30 days back: outside the window
    assert with_future.loc["b", "login_30d"] == 0 and with_future.loc["a", "days_since_login"] == 11


def test_saved_import_loads_back_with_its_types(export: Path, tmp_path: Path):
    data_dir = tmp_path / "data"
    dataset = import_file(export, data_dir)
    loaded = load_dataset(data_dir, "sample")
    assert loaded.spec == dataset.spec
    pd.testing.assert_frame_equal(loaded.frame, dataset.frame, check_dtype=False, check_index_type=False)
    assert loaded.meta["rows"] == 4 and loaded.meta["activity_events"] == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("base: customers", "base: table 'nowhere'"),
        ("label: {from: left}", "label.from"),
        ("  seats: number", "columns.seats"),
        ("name: sample", "name"),
    ],
)
def test_an_invalid_mapping_names_the_file_and_key(export: Path, change: str, message: str):
    broken = {
        "base: customers": "base: nowhere",
        "label: {from: left}": "label: {column: left}",
        "  seats: number": "  seats: numbr",
        "name: sample": "name: ../escape",
    }[change]
    text = export.read_text().replace(change, broken, 1)
    path = write(export.parent, "broken.yaml", text)
    with pytest.raises(ImportMappingError) as error:
        load_mapping(path)
    assert str(path) in str(error.value) and message.split(":")[0] in str(error.value)


def test_a_missing_source_column_is_reported(export: Path):
    path = write(export.parent, "missing.yaml", export.read_text().replace("seats: number", "seatz: number"))
    with pytest.raises(ImportMappingError, match="columns.seatz"):
        build_dataset(load_mapping(path), path.parent)


def test_cse_import_refuses_a_bad_mapping_with_its_reason(export: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CSE_DATA_DIR", str(tmp_path / "data"))
    path = write(export.parent, "bad.yaml", export.read_text().replace("base: customers", "base: nowhere"))
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 1 and "nowhere" in result.output
    ok = CliRunner().invoke(app, ["import", str(export)])
    assert ok.exit_code == 0 and "sample" in ok.stdout


def test_bundled_mappings_are_valid():
    for name in ("telco", "pysurvival", "ravenstack"):
        mapping = load_mapping(resolve_mapping_path(name))
        assert mapping.name == name
