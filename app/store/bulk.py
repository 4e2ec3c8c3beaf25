"""Set-based writes shared by every loader: staging tables, upserts and COPY, so no path costs a round trip per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Column, Connection, MetaData, Table, Text, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select


def dialect_insert(conn: Connection, table: Table):
    """INSERT with ON CONFLICT support for the connection's dialect (both dialects share the API)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def rows_of(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Plain tuples with None for missing values: what DBAPI executemany and COPY both accept."""
    subset = frame.loc[:, list(columns)].copy()
    for name in subset.columns:
        if pd.api.types.is_datetime64_any_dtype(subset[name]):
            subset[name] = pd.Series(subset[name].dt.to_pydatetime(), index=subset.index, dtype=object)
    out = subset.astype(object).where(subset.notna(), None)
    return list(out.itertuples(index=False, name=None))


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


def insert_from_select_ignoring_conflicts(
    conn: Connection, target: Table, columns: Sequence[str], source: Select, conflict: Sequence[str]
) -> int:
    """INSERT ... SELECT ... ON CONFLICT DO NOTHING; the WHERE TRUE keeps SQLite's parser from misreading ON."""
    stmt = (
        dialect_insert(conn, target)
        .from_select(list(columns), source.where(true()))
        .on_conflict_do_nothing(index_elements=list(conflict))
    )
    return conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount


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
    return [np.fromiter(column, dtype=np.int64, count=len(rows)) for column in zip(*rows, strict=True)]


IN_LIST_CHUNK = 10_000


def chunked(values: Sequence, size: int = IN_LIST_CHUNK) -> Iterable[list]:
    """Slices for IN lists: PostgreSQL takes at most 65,535 parameters per statement, SQLite often 32,766."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def staged_insert(
    conn: Connection,
    target: Table,
    frame: pd.DataFrame,
    columns: Sequence[str],
    json_columns: Sequence[str] = (),
    conflict: Sequence[str] | None = None,
) -> int:
    """Insert a frame's rows in one statement: bulk-fill a staging table, then INSERT … SELECT into `target`
    (ignoring rows whose `conflict` key exists). JSON columns travel as text (`json.dumps` them first) and are
    cast back on PostgreSQL. Returns the number of rows inserted."""
    if frame.empty:
        return 0
    json_columns = set(json_columns)
    stage = temp_table(
        conn, f"_stage_{target.name}", [Column(c, Text if c in json_columns else target.c[c].type) for c in columns]
    )
    copy_rows(conn, stage, columns, rows_of(frame, columns))
    cast_json = conn.dialect.name == "postgresql"
    source = select(*[stage.c[c].cast(target.c[c].type) if c in json_columns and cast_json else stage.c[c]
                      for c in columns])  # fmt: skip
    if conflict:
        inserted = insert_from_select_ignoring_conflicts(conn, target, columns, source, conflict)
    else:
        result = conn.execute(
            target.insert().from_select(list(columns), source), execution_options={"preserve_rowcount": True}
        )
        inserted = result.rowcount
    stage.drop(conn)
    return inserted
