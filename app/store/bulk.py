"""Set-based writes shared by every loader: staging tables, upserts and COPY, so no path costs a round trip per row."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    CursorResult,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    any_,
    cast,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import ColumnElement, Insert, Select


def dialect_insert(conn: Connection, table: Table):
    """INSERT with ON CONFLICT support for the connection's dialect (both dialects share the API)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def rows_of(frame: pd.DataFrame, columns: Sequence[str], dates_as_text: bool = False) -> list[tuple[Any, ...]]:
    """Plain tuples with None for missing values: what DBAPI executemany and COPY both accept.

    `dates_as_text` writes timestamps as the text SQLite stores (see app.store.db), formatted for the whole column
    at once instead of by the driver's adapter one value at a time (a million calls for a big event load).
    """
    arrays = []
    for name in columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            arrays.append(_timestamps(column, dates_as_text))
        elif column.dtype.kind in "biuf" and not column.hasnans:  # NumPy numbers, none missing: no object pass
            arrays.append(column.to_numpy().tolist())
        else:
            arrays.append(column.astype(object).where(column.notna(), None).to_numpy())
    return list(zip(*arrays, strict=True))


def _timestamps(column: pd.Series, as_text: bool) -> np.ndarray:
    """Naive datetimes (the wall time of a tz-aware column), or their text `YYYY-MM-DD HH:MM:SS.ffffff`.

    Each distinct moment is converted once and the column taken from those: a program tick's 100,000 due dates
    are a handful of moments, and formatting or boxing each row's costs ~2 us (a column of distinct moments pays
    one hash pass more)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_localize(None)
    codes, moments = pd.factorize(column.to_numpy(dtype="datetime64[us]"))
    if as_text:
        text = np.datetime_as_string(moments, unit="us").astype("U26")
        if len(text):  # the ISO 'T' becomes a space in place: each string seen as 26 one-character cells
            text.view("U1").reshape(len(text), 26)[:, 10] = " "
        converted = text.astype(object)
    else:
        converted = np.array(pd.DatetimeIndex(moments).to_pydatetime(), dtype=object)
    return np.append(converted, None)[codes]  # code -1 (a missing value) takes the None at the end


def upsert(
    conn: Connection,
    table: Table,
    records: list[dict[str, Any]],
    conflict: Sequence[str],
    update: Iterable[str] | None = None,
) -> None:
    """Insert records, updating `update` columns (or ignoring the row when None) where `conflict` matches."""
    if not records:
        return
    stmt = dialect_insert(conn, table)
    if update is None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(conflict), set_={name: stmt.excluded[name] for name in update}
        )
    conn.execute(stmt, records)


def temp_table(conn: Connection, name: str, columns: Sequence[Column]) -> Table:
    """A connection-scoped staging table, dropped first in case an earlier load on this connection left one."""
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    table.drop(conn, checkfirst=True)
    table.create(conn)
    return table


def copy_rows(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Fill a table as fast as the database allows: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", rows)


def copy_frame(conn: Connection, table: Table, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Fill a table with a frame's columns: on PostgreSQL one COPY, in the binary format when every column has one
    here (`_frame_field`), else in text built a column at a time and the rows joined a slice at a time, where
    building a tuple per row and handing each to psycopg's `write_row` cost a third more client CPU (0.33 -> 0.23 s
    for a program tick's 100,000-row round); on SQLite `copy_rows`. Binary spares the server parsing each value
    and the client formatting it (a million-account first run's 2.7 million program entries: ~1 us of server CPU
    and ~1.5 us of client CPU each; docs/scale.md)."""
    if frame.empty:
        return
    if conn.dialect.name != "postgresql":
        copy_rows(conn, table, columns, rows_of(frame, columns, dates_as_text=True))
        return
    if all(_binary_kind(table.c[name].type) for name in columns):  # else no column's bytes are worth laying out
        binary = {name: _frame_field(frame[name], table.c[name].type) for name in columns}
        if all(field is not None for field in binary.values()):
            _copy_binary_fields(conn, table, binary, len(frame))
            return
    fields = [_copy_text(frame[name], table.c[name].type) for name in columns]
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for start in range(0, len(frame), COPY_SLICE):  # joined a slice at a time: the text is never held whole
            rows = zip(*(field[start : start + COPY_SLICE] for field in fields), strict=True)
            copy.write(("\n".join(map("\t".join, rows)) + "\n").encode())


PG_EPOCH_US = np.datetime64("2000-01-01", "us")  # PostgreSQL's binary timestamps count microseconds from here
INT_RANGES = {">i2": 2**15, ">i4": 2**31, ">i8": 2**63}


def _binary_kind(kind) -> bool:
    """Whether `_frame_field` has a binary layout for columns of this type."""
    if (isinstance(kind, DateTime) and kind.timezone) or (isinstance(kind, Float) and kind.precision is not None):
        return False
    if isinstance(kind, JSON):  # `json` is its text in binary too; `jsonb` starts with a version byte: text then
        return not isinstance(kind, postgresql.JSONB)
    return not isinstance(kind, Enum) and isinstance(kind, (Boolean, Date, DateTime, Float, Integer, String))


def _frame_field(column: pd.Series, kind) -> BinaryField | None:
    """A frame's column in PostgreSQL's binary layout for a column of type `kind`, the values as the text format
    would give them (`_copy_text`: NaN, NaT and None are NULL, integers held as floats truncated, text `str` of
    each value, a `json` column's JSON text as it is); None where this has no layout for the type (`jsonb`,
    decimals, time zones, enums) or the values are not plainly of it: the caller sends text then, and the server
    parses it as before. The scores' drivers are `json`: with them in binary too, a run's score rows go in binary."""
    if not _binary_kind(kind):
        return None
    missing = column.isna().to_numpy()
    null = missing if missing.any() else None
    seen = pd.api.types.infer_dtype(column, skipna=True)
    if isinstance(kind, JSON) and seen not in ("string", "empty"):  # not the JSON text the callers dump (a dict…)
        return None
    if isinstance(kind, (String, JSON)):  # each value's str(), as the text format sends it
        text = column.to_numpy(dtype=object)
        if null is not None:
            text = np.where(missing, "", text)
        return _text_field(text if seen in ("string", "empty") else text.astype(str), null)
    if isinstance(kind, Boolean):
        return (column.fillna(False).to_numpy(dtype=bool), null, None) if seen in ("boolean", "empty") else None
    if isinstance(kind, (Date, DateTime)):
        if seen not in ("datetime64", "datetime", "date", "empty"):
            return None
        moments = pd.to_datetime(column)
        if isinstance(moments.dtype, pd.DatetimeTZDtype):
            moments = moments.dt.tz_localize(None)  # the wall time, as the text format writes it
        if isinstance(kind, DateTime):
            micros = moments.to_numpy(dtype="datetime64[us]") - PG_EPOCH_US
            return np.where(missing, 0, micros.astype(np.int64)).astype(">i8"), null, None
        days = moments.to_numpy(dtype="datetime64[D]") - PG_EPOCH
        return np.where(missing, 0, days.astype(np.int64)).astype(">i4"), null, None
    if column.dtype == object and seen in ("integer", "floating", "mixed-integer-float", "empty"):
        column = pd.to_numeric(column)  # numbers held as Python objects (the scores' horizon: ints from a dict)
    if column.dtype.kind not in "iu" and column.dtype != np.float64:  # a float32's text is its own shortest form
        return None
    if isinstance(kind, Float):  # double precision (`_binary_kind`: REAL and FLOAT(p) take text)
        return column.to_numpy(dtype=">f8", na_value=0.0), null, None
    dtype = ">i8" if isinstance(kind, BigInteger) else ">i2" if isinstance(kind, SmallInteger) else ">i4"
    numbers = column.fillna(0).to_numpy().astype(np.int64)
    if len(numbers) and (numbers.min() < -INT_RANGES[dtype] or numbers.max() >= INT_RANGES[dtype]):
        return None  # out of the column's range: the text format lets the server refuse it
    return numbers.astype(dtype), null, None


COPY_SLICE = 10_000  # rows of COPY text built at a time
COPY_SPECIALS = ("\\", "\t", "\n", "\r")  # what COPY's text format escapes


def _copy_text(column: pd.Series, kind) -> list[str]:
    """A column as COPY's text format: `\\N` for a missing value, timestamps as `YYYY-MM-DD HH:MM:SS.ffffff`, an
    integer column's numbers without a fraction (also when a gap made them floats), text with backslash, tab and
    line breaks escaped (looked for in the whole column at once: most columns have none)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return [r"\N" if v is None else v for v in _timestamps(column, as_text=True)]
    missing = column.isna().to_numpy()
    if isinstance(kind, Integer):
        text = np.array(list(map(str, column.fillna(0).to_numpy().astype(np.int64).tolist())), dtype=object)
    elif column.dtype.kind == "b":
        text = np.where(column.fillna(False).to_numpy(dtype=bool), "t", "f").astype(object)
    else:
        text = np.array([str(v) for v in column.to_numpy(dtype=object)], dtype=object)
        whole = "".join(text[~missing])
        if any(special in whole for special in COPY_SPECIALS):
            text = np.array([_copy_escaped(v) for v in text], dtype=object)
    text[missing] = r"\N"
    return text.tolist()


def _copy_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def ignoring_conflicts(
    conn: Connection,
    target: Table,
    columns: Sequence[str],
    source: Select,
    conflict: Sequence[str],
    conflict_where: str | None = None,
) -> Insert:
    """INSERT ... SELECT ... ON CONFLICT DO NOTHING (`conflict_where`: the predicate of a partial unique index),
    built but not run; the WHERE TRUE keeps SQLite's parser from misreading ON."""
    return (
        dialect_insert(conn, target)
        .from_select(list(columns), source.where(true()))
        .on_conflict_do_nothing(
            index_elements=list(conflict), index_where=None if conflict_where is None else text(conflict_where)
        )
    )


def insert_from_select_ignoring_conflicts(
    conn: Connection,
    target: Table,
    columns: Sequence[str],
    source: Select,
    conflict: Sequence[str],
    conflict_where: str | None = None,
) -> int:
    """Run `ignoring_conflicts`; returns the number of rows inserted."""
    stmt = ignoring_conflicts(conn, target, columns, source, conflict, conflict_where)
    return conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount


def result_frame(result: CursorResult, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A query's rows as a DataFrame (columns named by the query unless given), handed to pandas as plain tuples.

    pandas 3 probes every row that is not a tuple for a `dtype` attribute, and a SQLAlchemy Row answers a missing
    attribute by raising: ~6 us a row, a second or more of a 100,000-account scoring run. Tuples skip the probe.
    The rows are fetched at once (iterating the result fetches one per call: ~5 us a row through SQLAlchemy and
    psycopg, 4.5 s of a 200,000-account daily run's ~900,000 rows), and straight from the driver when SQLAlchemy
    has no value to convert in them (PostgreSQL's types mostly): building its Row objects is ~1.5 us a row more.
    """
    names = list(result.keys()) if columns is None else list(columns)
    if not any(getattr(result._metadata, "_processors", None) or [True]):  # nothing SQLAlchemy would convert
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
    else:
        rows = [tuple(row) for row in result.all()]
    return pd.DataFrame(rows, columns=names)


def fetch_int_columns(conn: Connection, query: Select) -> list[np.ndarray]:
    """Run a query of integer columns through the raw DBAPI cursor and return one int64 array per column.

    For hundreds of thousands of rows, building SQLAlchemy Row objects costs more than the query itself.
    """
    # render_postcompile expands IN lists into plain parameters the raw cursor understands.
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positiontup is not None:
        params = [compiled.params[name] for name in compiled.positiontup]
    else:
        params = compiled.params
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(compiled.string, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    width = len(query.selected_columns)
    if not rows:
        return [np.empty(0, dtype=np.int64) for _ in range(width)]
    table = np.array(rows, dtype=np.int64).reshape(len(rows), width)  # in C: transposing in Python cost ~1.6x
    return [np.ascontiguousarray(table[:, i]) for i in range(width)]


def fetch_frame(conn: Connection, query: Select, columns: Sequence[str]) -> pd.DataFrame:
    """A query's rows as a frame, read from the DBAPI cursor as plain tuples and built column by column.

    For 100,000 rows, SQLAlchemy's Row objects and per-value type processing cost more than the query, so the
    values come as the driver returns them: on SQLite a timestamp or date is text and a boolean 0/1 (convert the
    column with pandas: `pd.to_datetime`, `astype(bool)`)."""
    result = conn.execute(query)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    return pd.DataFrame(rows, columns=list(columns))


def json_lines(frame: pd.DataFrame) -> list[str]:
    """Each row of a frame as one JSON object text, encoded by pandas in C (json.dumps per row costs ~10 µs)."""
    if frame.empty:
        return []
    return frame.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")


IN_LIST_CHUNK = 10_000


def chunked(values: Sequence, size: int = IN_LIST_CHUNK) -> Iterable[list]:
    """Slices for IN lists: PostgreSQL takes at most 65,535 parameters per statement, SQLite often 32,766."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def in_ids(conn: Connection, column, ids: Iterable[int]) -> Iterator[ColumnElement[bool]]:
    """Filters that together select the rows whose `column` is one of `ids`, each for one statement: on PostgreSQL
    one `= ANY(array)` with a single parameter, elsewhere IN lists of at most IN_LIST_CHUNK parameters (none for no
    ids). An IN list costs SQLAlchemy and psycopg a placeholder rendered and parsed per id, which was ~40 % of the
    CPU of a scoring run that enters accounts into programs."""
    ids = [int(i) for i in ids]
    if conn.dialect.name != "postgresql":
        yield from (column.in_(chunk) for chunk in chunked(ids))
    elif ids:  # as array text: psycopg adapts a list of ints one element at a time in Python
        yield column == any_(cast(literal("{" + ",".join(map(str, ids)) + "}", Text), ARRAY(BigInteger)))


def staged_insert(
    conn: Connection,
    target: Table,
    frame: pd.DataFrame,
    columns: Sequence[str],
    json_columns: Sequence[str] = (),
    conflict: Sequence[str] | None = None,
    conflict_where: str | None = None,
    update: Sequence[str] | None = None,
) -> int:
    """Insert a frame's rows in one statement. Without `conflict`, on PostgreSQL one COPY into `target` (a row that
    breaks a key fails the statement); with it, bulk-fill a staging table, then INSERT … SELECT into `target`
    ignoring rows whose `conflict` key exists (in the partial unique index of predicate `conflict_where` when
    given), or updating their `update` columns when given: an upsert of thousands of rows without a round trip
    each. JSON columns travel as text (`json.dumps` them first). Returns the number of rows inserted (or updated).

    A staging table costs PostgreSQL each row twice (into the stage, then out of it into the target) and a
    conflict check is a speculative insertion per row: a million-account first run's program entries replayed
    cost 14.7 us of server CPU each that way and 12.9 by COPY (docs/scale.md)."""
    if frame.empty:
        return 0
    if conn.dialect.name == "sqlite":
        rows = rows_of(frame, columns, dates_as_text=True)
        return _insert_direct(conn, target, columns, rows, conflict, conflict_where, update)
    if not conflict:  # a plain insert: COPY straight into the table (JSON columns parse from their text there)
        copy_frame(conn, target, frame, columns)
        return len(frame)
    json_columns = set(json_columns)
    stage = temp_table(
        conn, f"_stage_{target.name}", [Column(c, Text if c in json_columns else target.c[c].type) for c in columns]
    )
    copy_frame(conn, stage, frame, columns)
    source = select(*[stage.c[c].cast(target.c[c].type) if c in json_columns else stage.c[c] for c in columns])
    if conflict and update:
        stmt = dialect_insert(conn, target).from_select(list(columns), source.where(true()))
        stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={c: stmt.excluded[c] for c in update})
        inserted = conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount
    else:
        stmt = (ignoring_conflicts(conn, target, columns, source, conflict, conflict_where) if conflict
                else target.insert().from_select(list(columns), source))  # fmt: skip
        inserted = conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount
    stage.drop(conn)
    return inserted


def _insert_direct(
    conn: Connection,
    target: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    conflict: Sequence[str] | None,
    conflict_where: str | None = None,
    update: Sequence[str] | None = None,
) -> int:
    """SQLite's fast path for staged_insert: one executemany straight into the table (an in-process database has
    no round trips to save, so a staging table only doubles the writes). JSON columns go in as the text they are."""
    ignore = ""
    if conflict:
        where = f" WHERE {conflict_where}" if conflict_where else ""
        action = f"UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)}" if update else "NOTHING"
        ignore = f" ON CONFLICT ({', '.join(conflict)}){where} DO {action}"
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {target.name} ({', '.join(columns)}) VALUES ({placeholders}){ignore}"
    return conn.exec_driver_sql(sql, rows, execution_options={"preserve_rowcount": True}).rowcount


PG_EPOCH = np.datetime64("2000-01-01", "D")  # PostgreSQL's binary dates count days from here
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
BINARY_SLICE = 100_000  # rows encoded at a time (~20 MB of bytes for a usage row)


def copy_binary(conn: Connection, table: Table, fixed: dict[str, np.ndarray], text: tuple[str, np.ndarray]) -> None:
    """COPY rows to PostgreSQL in its binary format, the bytes built by NumPy for all rows at once: no Python
    object per value, and nothing for the server to parse. For ~a million usage rows, writing them as tuples one
    `write_row` at a time cost seconds of client CPU and the server's text parsing as much again.

    `fixed`: the columns of one width, as arrays of Integer, BigInteger, Date (datetime64[D]) or one constant
    byte string ('S' dtype, all values the same length); `text`: one column of strings (no NULLs), sent last."""
    name, strings = text
    fields = {column: _binary_field(table, column, array, None) for column, array in fixed.items()}
    fields[name] = _text_field(np.asarray(strings, dtype=str), None)
    _copy_binary_fields(conn, table, fields, len(strings))


# A binary field: its values (one row each: fixed-width big-endian numbers, or 'S' bytes), its NULL rows (or None)
# and, for text, each row's byte length (None: the width of the values' type).
BinaryField = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def _copy_binary_fields(conn: Connection, table: Table, fields: dict[str, BinaryField], rows: int) -> None:
    with (
        conn.connection.driver_connection.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(fields)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(BINARY_HEADER)
        for start in range(0, rows, BINARY_SLICE):
            part = slice(start, start + BINARY_SLICE)
            copy.write(_binary_rows([tuple(None if a is None else a[part] for a in f) for f in fields.values()]))
        copy.write(b"\xff\xff")  # the trailer: a field count of -1


def _binary_field(table: Table, column: str, array: np.ndarray, null: np.ndarray | None) -> BinaryField:
    """A fixed-width column's values in PostgreSQL's binary layout (a constant byte string: as text)."""
    kind = table.c[column].type
    if array.dtype.kind == "S":
        return _text_field(array, null)
    if isinstance(kind, Date):
        return (array.astype("datetime64[D]") - PG_EPOCH).astype(">i4"), null, None
    if isinstance(kind, BigInteger):
        return array.astype(">i8"), null, None
    if isinstance(kind, Integer):
        return array.astype(">i4"), null, None
    raise TypeError(f"copy_binary: no binary encoding for {table.name}.{column} ({kind})")


def _text_field(strings: np.ndarray, null: np.ndarray | None) -> BinaryField:
    """Strings ('U', 'S' or an object array of str) as their UTF-8 bytes, each row its own length; each distinct
    string encoded once (most columns hold a few values: a lookup per row, not an encoding)."""
    codes, uniques = pd.factorize(strings)
    if strings.dtype.kind == "S":
        encoded = np.asarray(uniques, dtype=strings.dtype)
    else:
        encoded = np.char.encode(np.asarray(uniques, dtype=str), "utf-8")
    encoded = np.append(encoded, np.array([b""], dtype=encoded.dtype))  # code -1: none seen (a NULL's)
    return encoded[codes], null, np.char.str_len(encoded)[codes]


RUNS_MAX = 256  # rows laid out alike in at most this many runs are copied run by run, without a mask


def _binary_rows(fields: list[BinaryField]) -> bytes:
    """Each row as its field count, then each field's length (-1: NULL) and value, laid out by NumPy: every
    field a block of bytes per row at its widest, each row's unused bytes (padding, a NULL's value) left out. Rows
    alike (the same bytes used in every field: a constant text, the same NULLs) come in runs, each taken as a
    rectangle; rows that vary row by row are masked byte by byte (a third of the CPU more)."""
    rows = len(fields[0][0]) if fields else 0
    blocks, used = [np.full(rows, len(fields), dtype=">i2")], [np.full(rows, 2)]
    for values, null, lengths in fields:
        size = np.full(rows, values.dtype.itemsize) if lengths is None else lengths
        length = size if null is None else np.where(null, -1, size)
        blocks += [length.astype(">i4"), values]
        used += [np.full(rows, 4), np.maximum(length, 0)]
    grids = [np.ascontiguousarray(b).view(np.uint8).reshape(rows, -1) for b in blocks]
    sizes = np.column_stack(used)
    starts = np.flatnonzero(np.any(sizes[1:] != sizes[:-1], axis=1)) + 1
    if len(starts) < RUNS_MAX:
        runs = zip([0, *starts], [*starts, rows], strict=True)
        return b"".join(np.hstack([g[a:b, : sizes[a, j]] for j, g in enumerate(grids)]).tobytes() for a, b in runs)
    keep = np.hstack([np.arange(g.shape[1]) < u[:, None] for g, u in zip(grids, used, strict=True)])
    return np.hstack(grids)[keep].tobytes()


# From this many rows a PostgreSQL bulk load checks its foreign keys once, not row by row (0: never).
BIG_LOAD_ROWS = int(os.environ.get("CSE_BULK_FK_ONCE_ROWS", "100000"))
FK_LOCK_WAIT = "2s"  # how long a big load waits for the tables' locks before keeping the per-row checks


@contextmanager
def foreign_keys_checked_once(conn: Connection, tables: Sequence[Table], rows: int) -> Iterator[None]:
    """On PostgreSQL, for a load of `rows` >= BIG_LOAD_ROWS: drop the tables' foreign keys for the load and add
    them back after it, so each is checked by one set-based query instead of a trigger call per row (a million
    checks cost ~10 s, half a big import's server time). Inside the caller's transaction: a failed load restores
    them with everything else, and an orphan row fails the load when its key comes back.

    Dropping a key locks its table and the referenced one (ACCESS EXCLUSIVE) until the transaction ends: other
    sessions wait for the load. If the locks are not had within FK_LOCK_WAIT (a long query holds them), the load
    keeps the per-row checks rather than queue everyone behind it. Elsewhere, and for small loads, nothing
    changes (SQLite checks keys in process)."""
    if conn.dialect.name != "postgresql" or not BIG_LOAD_ROWS or rows < BIG_LOAD_ROWS:
        yield
        return
    keys = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%(tables)s::regclass[])",
        {"tables": [t.name for t in tables]},
    ).all()
    waited = conn.exec_driver_sql("SHOW lock_timeout").scalar()
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{FK_LOCK_WAIT}'")
        for table, name, _ in keys:
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        savepoint.commit()
    except OperationalError:  # lock not available: per-row checks it is
        savepoint.rollback()
        keys = []
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{waited}'")
    yield
    for table, name, definition in keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
