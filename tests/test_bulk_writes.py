"""Bulk writes of app/store/bulk.py that big imports rely on: a staged upsert updates the rows that exist and
inserts the rest on both stores; a frame copied (COPY text built per column on PostgreSQL, or binary, storing what
its text would) and, on PostgreSQL, binary COPY store exactly the values they were given, and a big load's foreign
keys are checked once at its end and are there again after it; a staged insert's follow-up statement sees only the
rows it inserted."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from app.store import bulk
from app.store.bulk import copy_binary, copy_frame, staged_insert

COLUMNS = ["source", "key", "amount", "note"]


def _table(store) -> Table:
    table = Table("bulk_probe", MetaData(), Column("id", Integer, primary_key=True), Column("source", String(16)),
                  Column("key", String(16)), Column("amount", Integer), Column("note", Text),
                  UniqueConstraint("source", "key"))  # fmt: skip
    table.create(store)
    return table


def test_a_staged_upsert_updates_existing_rows_and_inserts_new_ones(store) -> None:
    table = _table(store)
    first = pd.DataFrame({"source": ["a", "a"], "key": ["x", "y"], "amount": [1, 2], "note": ["one", None]})
    second = pd.DataFrame({"source": ["a", "a"], "key": ["y", "z"], "amount": [20, 3], "note": ["two", "three"]})
    with store.begin() as conn:
        staged_insert(conn, table, first, COLUMNS, conflict=["source", "key"], update=["amount", "note"])
        staged_insert(conn, table, second, COLUMNS, conflict=["source", "key"], update=["amount", "note"])
        ignored = second.assign(amount=[99, 99])  # without `update`, existing rows are left alone
        staged_insert(conn, table, ignored, COLUMNS, conflict=["source", "key"])
        rows = conn.execute(select(table.c.key, table.c.amount, table.c.note).order_by(table.c.key)).all()
    assert [tuple(r) for r in rows] == [("x", 1, "one"), ("y", 20, "two"), ("z", 3, "three")]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
def test_a_copied_frame_stores_exactly_its_values(store, monkeypatch, binary: bool) -> None:
    """Escapes, empty text against a missing value, integers held as floats beside a gap, timestamps and NaT, sent in
    several slices; in PostgreSQL's binary format and in its text format (a column with no binary layout here)."""
    monkeypatch.setattr(bulk, "COPY_SLICE", 3)
    monkeypatch.setattr(bulk, "BINARY_SLICE", 3)
    if not binary:
        monkeypatch.setattr(bulk, "_frame_field", lambda column, kind: None)
    table = Table("frame_probe", MetaData(), Column("n", Integer), Column("at", DateTime), Column("note", Text),
                  Column("tag", String(16)))  # fmt: skip
    table.create(store)
    notes = ["tab\there", "line\nbreak\r", "back\\slash \\N", "", None, "é→ü", "tab\there"]
    frame = pd.DataFrame({
        "n": [1.0, np.nan, -3.0, 2**31 - 1, 0.0, 5.0, 1.0],
        "at": pd.to_datetime(["2026-11-02 09:00:00.000123", None, "2026-11-02 09:00", "2026-11-02 09:00", None,
                              "1999-12-31 23:59:59", "2026-11-02 09:00:00.000123"], format="ISO8601"),
        "note": notes, "tag": ["a", "b", "a", None, "c", "a", "a"],
    })  # fmt: skip
    with store.begin() as conn:
        copy_frame(conn, table, frame, ["n", "at", "note", "tag"])
        stored = [tuple(r) for r in conn.execute(select(table))]
    at = datetime(2026, 11, 2, 9, 0)
    assert sorted(stored, key=repr) == sorted([
        (1, datetime(2026, 11, 2, 9, 0, 0, 123), "tab\there", "a"), (None, None, "line\nbreak\r", "b"),
        (-3, at, "back\\slash \\N", "a"), (2**31 - 1, at, "", None), (0, None, None, "c"),
        (5, datetime(1999, 12, 31, 23, 59, 59), "é→ü", "a"), (1, datetime(2026, 11, 2, 9, 0, 0, 123), "tab\there", "a"),
    ], key=repr)  # fmt: skip


def test_binary_copy_stores_exactly_the_values_given(store) -> None:
    if store.dialect.name != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's")
    table = Table("binary_probe", MetaData(), Column("account_id", Integer), Column("day", Date),
                  Column("source", String(16)), Column("mask", BigInteger), Column("types", Text))  # fmt: skip
    table.create(store)
    n = 250_003  # more than one slice
    days = np.array(["1999-12-31", "2000-01-01", "2024-02-29"] * (n // 3) + ["2040-06-30"] * (n % 3), "datetime64[D]")
    texts = np.array(["post:3,like:12", "", "é→ü:1"] * (n // 3) + ["x" * 300] * (n % 3), dtype=object)
    fixed = {"account_id": np.arange(n, dtype=np.int64) - 5, "day": days,
             "source": np.full(n, b"bench", dtype="S5"), "mask": np.full(n, (1 << 62) + 7, dtype=np.int64)}  # fmt: skip
    with store.begin() as conn:
        copy_binary(conn, table, fixed, ("types", texts))
        stored = conn.execute(select(table).order_by(table.c.account_id)).all()
    assert len(stored) == n
    assert [tuple(r) for r in stored[:4]] == [
        (-5, date(1999, 12, 31), "bench", (1 << 62) + 7, "post:3,like:12"),
        (-4, date(2000, 1, 1), "bench", (1 << 62) + 7, ""),
        (-3, date(2024, 2, 29), "bench", (1 << 62) + 7, "é→ü:1"),
        (-2, date(1999, 12, 31), "bench", (1 << 62) + 7, "post:3,like:12"),
    ]
    assert tuple(stored[-1]) == (n - 6, date(2040, 6, 30), "bench", (1 << 62) + 7, "x" * 300)


def test_a_big_load_checks_foreign_keys_once_and_keeps_them(store, monkeypatch) -> None:
    if store.dialect.name != "postgresql":
        pytest.skip("SQLite checks foreign keys in process; nothing is dropped there")
    monkeypatch.setattr(bulk, "BIG_LOAD_ROWS", 1)
    parent = Table("fk_parent", MetaData(), Column("id", Integer, primary_key=True))
    child = Table("fk_child", parent.metadata, Column("parent_id", Integer, ForeignKey("fk_parent.id")))
    parent.metadata.create_all(store)

    def keys(conn) -> list[str]:
        return conn.exec_driver_sql("SELECT conname FROM pg_constraint WHERE conrelid = 'fk_child'::regclass").all()

    with store.begin() as conn:
        conn.execute(parent.insert(), [{"id": 1}])
        before = keys(conn)
        with bulk.foreign_keys_checked_once(conn, [child], rows=2):
            assert keys(conn) == []  # no trigger call per row while loading
            conn.execute(child.insert(), [{"parent_id": 1}, {"parent_id": 1}])
        assert keys(conn) == before and before
    # an orphan fails the load when the key comes back
    with pytest.raises(IntegrityError), store.begin() as conn, bulk.foreign_keys_checked_once(conn, [child], rows=1):
        conn.execute(child.insert(), [{"parent_id": 2}])
    with store.connect() as conn:
        assert keys(conn) == before and conn.execute(select(func.count()).select_from(child)).scalar() == 2


def test_a_big_load_keeps_per_row_checks_when_the_locks_are_busy(store, monkeypatch) -> None:
    if store.dialect.name != "postgresql":
        pytest.skip("SQLite checks foreign keys in process; nothing is dropped there")
    monkeypatch.setattr(bulk, "BIG_LOAD_ROWS", 1)
    monkeypatch.setattr(bulk, "FK_LOCK_WAIT", "200ms")
    parent = Table("fk_parent", MetaData(), Column("id", Integer, primary_key=True))
    child = Table("fk_child", parent.metadata, Column("parent_id", Integer, ForeignKey("fk_parent.id")))
    parent.metadata.create_all(store)
    with store.begin() as conn:
        conn.execute(parent.insert(), [{"id": 1}])
    with store.connect() as reader, store.begin() as conn:
        reader.execute(select(parent)).all()  # a reader's open transaction holds a lock on the parent table
        with bulk.foreign_keys_checked_once(conn, [child], rows=1):
            kept = conn.exec_driver_sql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'fk_child'::regclass")
            assert kept.scalar() == 1  # not dropped: the load did not queue behind the reader
            conn.execute(child.insert(), [{"parent_id": 1}])
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
        reader.rollback()


def test_a_frame_copied_in_binary_stores_what_its_text_would(store, monkeypatch) -> None:
    """copy_frame sends a frame whose columns all have a binary layout in PostgreSQL's binary format: every kind of
    value (NULLs of each type, integers held as floats, NaN, empty and non-ASCII text, a number in a text column,
    timestamps with microseconds, dates, booleans) reads back as the text format stores it, in runs of rows laid
    out alike and row by row."""
    if store.dialect.name != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's")
    table = Table("binary_frame_probe", MetaData(), Column("n", Integer), Column("big", BigInteger),
                  Column("x", Float), Column("flag", Boolean), Column("at", DateTime), Column("day", Date),
                  Column("tag", String(16)), Column("note", Text), Column("doc", JSON), Column("horizon", Integer),
                  Column("share", Float))  # fmt: skip
    table.create(store)
    frame = pd.DataFrame({
        "n": [1.0, np.nan, -3.0, 2**31 - 1], "big": [2**40, -1, 0, 7], "x": [0.1, np.nan, -1e300, 2.5],
        "flag": [True, None, False, True],
        "at": pd.to_datetime(["2026-11-02 09:00:00.000123", None, "1999-12-31 23:59:59.999999", "2000-01-01"],
                             format="ISO8601"),
        "day": pd.to_datetime(["2026-11-02", "1999-12-31", None, "2000-01-01"]),
        "tag": ["a", "", None, "é→ü"], "note": ["tab\there", 42, "line\nbreak", None],
        "doc": ['[{"factor": "adoption", "impact": -1.5}]', None, '"tab\\t é→ü"', "[]"],
        "horizon": pd.Series([30, None, 30, 7], dtype=object), "share": pd.Series([0.5, None, 1, 0.1], dtype=object),
    })  # fmt: skip
    columns = list(frame.columns)
    binary, original = [], bulk._copy_binary_fields

    def spy(conn, target, fields, rows) -> None:
        binary.append(rows)
        original(conn, target, fields, rows)

    monkeypatch.setattr(bulk, "_copy_binary_fields", spy)
    stored = {}
    for runs_max in (256, 0):  # in runs; row by row
        monkeypatch.setattr(bulk, "RUNS_MAX", runs_max)
        with store.begin() as conn:
            conn.execute(table.delete())
            copy_frame(conn, table, pd.concat([frame] * 3, ignore_index=True), columns)
            stored[runs_max] = sorted((tuple(r) for r in conn.execute(select(table))), key=repr)
    monkeypatch.setattr(bulk, "_frame_field", lambda column, kind: None)  # the text format
    with store.begin() as conn:
        conn.execute(table.delete())
        copy_frame(conn, table, pd.concat([frame] * 3, ignore_index=True), columns)
        text = sorted((tuple(r) for r in conn.execute(select(table))), key=repr)
    assert binary == [12, 12] and stored[256] == stored[0] == text
    assert (1, 2**40, 0.1, True, datetime(2026, 11, 2, 9, 0, 0, 123), date(2026, 11, 2), "a", "tab\there",
            [{"factor": "adoption", "impact": -1.5}], 30, 0.5) in text  # fmt: skip
    assert (None, -1, None, None, None, date(1999, 12, 31), "", "42", None, None, None) in text  # NULL json, not null
