"""Scoring run: read metrics from the store, score with the engine, write one score row per account."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Text, cast, func, select

from app.cards.overrides import apply_band_overrides
from app.ml.artifacts import Artifact
from app.ml.scorer import model_scores
from app.store.book_days import record_book_day
from app.store.bulk import chunked, fetch_frame
from app.store.current_scores import store_scores
from app.store.metrics import account_metrics, accounts_active_on
from app.store.models import Account, CurrentScore, Score
from app.store.scope import AccountScope, IdRange, scope_filter
from engine.canonical import FACTORS
from engine.expansion import score_expansion
from engine.health import score_health
from engine.health_config import HealthConfig
from engine.learning.risk import PRIOR, HealthRiskCalibration, risk_scale

TREND_LOOKBACKS = {"health_7d_ago": 7, "health_30d_ago": 30}
SCORE_COLUMNS = (
    "account_id", "as_of", "computed_at", "health", "band", "band_computed", *(f"f_{f}" for f in FACTORS), "coverage",
    "trend_7d", "trend_30d", "drivers", "recommended_action", "expansion_score", "expansion_type",
    "revenue_potential", "churn_probability", "churn_horizon_days", "days_to_churn", "risk_drivers", "model_version",
    "risk", "risk_source", "early_warning", "warning_horizon_days",
)  # fmt: skip
JSON_COLUMNS = ("drivers", "risk_drivers")
MODEL_COLUMNS = (
    "churn_probability", "churn_horizon_days", "days_to_churn", "risk_drivers", "model_version", "early_warning",
    "warning_horizon_days",
)  # fmt: skip


def previous_health(conn: Connection, as_of: date, account_ids: AccountScope = None) -> pd.DataFrame:
    """Health per account on the days 7 and 30 before `as_of`, for the trends: the latest row on or before each
    day (ties by id), since a row is only written when a value moved (write_scores).

    Looked up account by account on the (account_id, as_of) index, newest first, so the read costs the same
    however long the history: ranking every row up to the day read hundreds of rows per account a year into daily
    scoring. A day with no stored score on or before it (a new book) has nothing to find and is not looked up.
    That check reads the (as_of, ...) index from its start up to the day only: min(as_of) over the whole index
    stepped over every row other parts of the run had written and not yet committed (PostgreSQL, a first run in
    parts: 2.2 s a chunk)."""
    frames = {}
    for column, days in TREND_LOOKBACKS.items():
        target = as_of - timedelta(days=days)
        if conn.scalar(select(Score.id).where(Score.as_of <= target).limit(1)) is None:
            frames[column] = pd.Series(dtype="float64")
            continue
        newest = (
            select(Score.health)
            .where(Score.account_id == Account.id, Score.as_of <= target)
            .order_by(Score.as_of.desc(), Score.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        accounts = select(Account.id, newest).where(accounts_active_on(as_of), scope_filter(Account.id, account_ids))
        frames[column] = pd.Series(dict(conn.execute(accounts).all()), dtype="float64")
    return pd.DataFrame(frames)


def compute_scores(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    account_ids: AccountScope = None,
    artifact: Artifact | None = None,
    calibration: HealthRiskCalibration | None = None,
) -> pd.DataFrame:
    """Health and expansion for every account active on `as_of` (or the given ones), with metrics and attributes.

    The metrics ride along because the programs and the reports read them next to the scores. `risk` is the one
    risk scale (engine/learning/risk.py): the model's churn probability x 100 with `artifact`, else health through
    `calibration` (the store's fitted one, or the documented prior when None), which then also fills
    `churn_probability` and `churn_horizon_days`; `risk_source` says which produced them.
    """
    metrics = account_metrics(conn, as_of, config.core_features, config.features, account_ids)
    if metrics.empty:
        return metrics
    health = score_health(metrics, config, previous_health(conn, as_of, account_ids))
    expansion = score_expansion(metrics, health["health"])
    scored = health.join(expansion).join(metrics)
    if artifact is not None:  # the trained model adds churn risk and refines expansion with learned propensity
        learned = model_scores(conn, as_of, config, metrics, expansion, artifact, account_ids)
        for column in learned.columns:
            scored[column] = learned[column]
    for column in MODEL_COLUMNS:
        if column not in scored:
            scored[column] = None if column in ("risk_drivers", "model_version", "early_warning") else np.nan
    calibration = calibration or PRIOR
    scored["risk"], scored["risk_source"] = risk_scale(scored["health"], scored["churn_probability"], calibration)
    # Without a model the calibrated health *is* the churn probability: every reader (account page, dashboard,
    # cards, CRM fields) gets one, with its horizon, and `risk_source` = health says where it came from.
    fallback = (scored["risk_source"] == "health").to_numpy()
    if fallback.any():
        scored["churn_probability"] = scored["churn_probability"].astype("float64")
        scored["churn_horizon_days"] = scored["churn_horizon_days"].astype(object)  # whole days, for the store
        probability = calibration.churn_probability(scored["health"].to_numpy(dtype="float64")[fallback])
        scored.loc[fallback, "churn_probability"] = np.round(probability, 4)
        scored.loc[fallback, "churn_horizon_days"] = calibration.horizon_days
    scored["days_to_renewal"] = (pd.to_datetime(scored["renewal_date"]) - pd.Timestamp(as_of)).dt.days
    return scored


def _drivers_json(scored: pd.DataFrame) -> list[str]:
    """Each row's weak factors as a JSON list, encoded once per distinct combination: a book has a few hundred
    combinations, and `json.dumps` per row was ~5 us (seconds of a million-account run)."""
    columns = [c for c in scored.columns if c.startswith("driver_")]
    values = scored[columns].astype(object).where(scored[columns].notna(), None)
    rows = list(zip(*(values[c].tolist() for c in columns), strict=True))
    encoded = {row: json.dumps([d for d in row if d is not None]) for row in set(rows)}
    return [encoded[row] for row in rows]


def _json_or_null(values: pd.Series) -> list[str | None]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else json.dumps(v) for v in values]


# What a stored score says; a row is written only when one of these differs from the account's latest row on or
# before the day (as_of and computed_at only say when).
VALUE_COLUMNS = tuple(c for c in SCORE_COLUMNS if c not in ("account_id", "as_of", "computed_at"))
TEXT_COLUMNS = ("band", "band_computed", "recommended_action", "expansion_type", "model_version", "risk_source")


def _comparable(frame: pd.DataFrame, value_columns: Sequence[str] = VALUE_COLUMNS) -> pd.DataFrame:
    """Score values as text, numbers rounded past what any reader shows, JSON as its text, missing as ''."""
    columns = {}
    for column in value_columns:
        values = frame[column]
        if column in JSON_COLUMNS:
            values = values.map(lambda v: v if isinstance(v, str) or v is None else json.dumps(v))
        elif column not in TEXT_COLUMNS:
            values = _rounded(values)
        columns[column] = values.astype(object).where(values.notna(), "").astype(str)
    return pd.DataFrame(columns, index=frame.index)


NUMBER_COLUMNS = tuple(c for c in VALUE_COLUMNS if c not in TEXT_COLUMNS and c not in JSON_COLUMNS)
OTHER_COLUMNS = tuple(c for c in VALUE_COLUMNS if c not in NUMBER_COLUMNS)
ALIKE_BY_ID = 4  # rows whose numbers all match are read by id when they are under a quarter of the chunk


def _rounded(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").round(4)


def _numbers_differ(new: pd.DataFrame, old: pd.DataFrame) -> np.ndarray:
    """Rows whose rounded numbers differ (or are missing on one side only, or are zeros of opposite sign): their
    texts in `_comparable` differ too, so these rows moved whatever their other columns say, and need no text
    made. On a daily run that is nearly every row (health moves with each day of rollups). The other rows' numbers
    have the same text on both sides, so only their OTHER_COLUMNS are left to compare as text."""
    differ = np.zeros(len(new), dtype=bool)
    for column in NUMBER_COLUMNS:
        a = _rounded(new[column]).to_numpy(dtype="float64", na_value=np.nan)
        b = _rounded(old[column]).to_numpy(dtype="float64", na_value=np.nan)
        missing_a, missing_b = np.isnan(a), np.isnan(b)
        differ |= (missing_a != missing_b) | (~missing_a & ~missing_b & ((a != b) | (np.signbit(a) != np.signbit(b))))
    return differ


def _latest_rows(
    conn: Connection,
    as_of: date,
    account_ids: list[int],
    scope: AccountScope = None,
    value_columns: Sequence[str] = VALUE_COLUMNS,
) -> pd.DataFrame:
    """Each account's latest stored score on or before `as_of`, by account id (the `value_columns`, JSON ones as
    their stored text: see `_decoded`), for at least the given accounts.

    Read through the current-score table: an account's current row names its latest score (by as_of, then id), which
    is the one wanted when it is on or before `as_of` (a daily run), so one score row per account is read by its id
    however long the history. Only accounts whose current score is newer (a backfill of a past day) are searched in
    the history. A range scope (a chunk, a shard) or the whole book is read in one query; only an explicit list of
    ids goes through IN lists, whose thousands of parameters cost more than the rows they select. Read as the driver
    returns the rows: SQLAlchemy's rows and JSON decoding cost more than the query."""
    table, current = Score.__table__, CurrentScore.__table__
    values = [cast(table.c[c], Text).label(c) if c in JSON_COLUMNS else table.c[c] for c in value_columns]
    columns = ["account_id", *value_columns]
    frames, newer = [], []
    for accounts in _account_filters(current.c.account_id, account_ids, scope):
        query = select(current.c.account_id, *values).join(table, table.c.id == current.c.score_id)
        frames.append(fetch_frame(conn, query.where(accounts, current.c.as_of <= as_of), columns))
        newer += conn.scalars(select(current.c.account_id).where(accounts, current.c.as_of > as_of)).all()
    for accounts in (table.c.account_id.in_(chunk) for chunk in chunked(newer)):
        ranked = (
            select(
                table.c.account_id,
                *values,
                func.row_number()
                .over(partition_by=table.c.account_id, order_by=(table.c.as_of.desc(), table.c.id.desc()))
                .label("rank"),
            )
            .where(table.c.as_of <= as_of, accounts)
            .subquery()
        )
        query = select(ranked.c.account_id, *(ranked.c[c] for c in value_columns)).where(ranked.c.rank == 1)
        frames.append(fetch_frame(conn, query, columns))
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames).set_index("account_id") if frames else pd.DataFrame(columns=list(value_columns))


def _account_filters(column, account_ids: list[int], scope: AccountScope) -> list:
    """WHERE terms selecting at least the given accounts on `column`: the scope's range (or none: the whole book),
    or IN lists of the ids when the scope is an explicit list."""
    if scope is None or isinstance(scope, IdRange):
        return [scope_filter(column, scope)]
    return [column.in_(chunk) for chunk in chunked(account_ids)]


def _decoded(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The stored JSON texts as a read through the JSON column type gives them (decoded), except where a text is
    the new row's own (`json.dumps` of a value reads back as that text): most are, and decoding is ~15 us each."""
    columns = {}
    for column in JSON_COLUMNS:
        texts = stored[column].to_numpy(dtype=object)
        other = texts != new[column].to_numpy(dtype=object)
        for i in np.flatnonzero(other):  # one by one: NumPy would read a list of lists as a 2-d array
            texts[i] = None if texts[i] is None else json.loads(texts[i])
        columns[column] = texts
    return stored.assign(**columns)


def _moved(conn: Connection, as_of: date, out: pd.DataFrame, scope: AccountScope = None) -> np.ndarray:
    """Which rows of `out` say something the account's latest stored score does not (only accounts with a stored
    score are compared). The stored numbers are read first; the text and JSON values only for the rows whose
    numbers are all the same: on a daily run nearly every row differs in a number, and the texts (the drivers' JSON
    above all) cost more to read and to compare than everything else."""
    ids = out["account_id"].astype(int)
    previous = _latest_rows(conn, as_of, ids.tolist(), scope, NUMBER_COLUMNS)
    known = ids.isin(previous.index).to_numpy()
    moved = ~known
    if known.any():
        rows = out[known]
        differ = _numbers_differ(rows, previous.reindex(rows["account_id"]))
        alike = ~differ
        if alike.any():
            same = rows[alike]
            # Few rows alike (a daily run): read them by id; many (a rerun of the day): the scope's one range read.
            alike_ids = same["account_id"].astype(int).tolist()
            few = len(alike_ids) * ALIKE_BY_ID < len(rows)
            stored = _latest_rows(conn, as_of, alike_ids, alike_ids if few else scope, OTHER_COLUMNS)
            stored = stored.reindex(same["account_id"])
            new_text = _comparable(same, OTHER_COLUMNS).to_numpy()
            texts = new_text == _comparable(_decoded(stored, same), OTHER_COLUMNS).to_numpy()
            differ[alike] = ~texts.all(axis=1)
        moved[known] = differ
    return moved


def write_scores(conn: Connection, as_of: date, scored: pd.DataFrame, scope: AccountScope = None) -> int:
    """Store the scores that moved, in one bulk statement (COPY on PostgreSQL); returns the rows written.

    An account whose score says what its latest row on or before `as_of` says gets no new row: "the score on day
    D" is the latest row on or before D, and a daily run of a quiet book adds next to nothing. `scope` is the
    accounts `scored` was drawn from (it bounds the read of the stored scores).
    """
    if scored.empty:
        return 0
    out = scored.reset_index(names="account_id")
    out["as_of"] = as_of
    out["computed_at"] = datetime.now()
    out["band"] = out["band"].astype(object)
    out["recommended_action"] = out["recommended_action"].astype(object)
    out["drivers"] = _drivers_json(scored)
    out["risk_drivers"] = _json_or_null(out["risk_drivers"])
    out = out.replace([np.inf, -np.inf], np.nan)
    out = out[_moved(conn, as_of, out, scope)]
    if out.empty:
        return 0
    store_scores(conn, out, SCORE_COLUMNS, JSON_COLUMNS)
    return len(out)


def score_and_store(
    conn: Connection,
    as_of: date,
    config: HealthConfig,
    account_ids: AccountScope = None,
    artifact: Artifact | None = None,
    calibration: HealthRiskCalibration | None = None,
) -> pd.DataFrame:
    scored = compute_scores(conn, as_of, config, account_ids, artifact, calibration)
    scored = apply_band_overrides(conn, scored, as_of)
    write_scores(conn, as_of, scored, account_ids)
    if account_ids is None:  # the whole book scored for the day: record it for the dashboard's trend
        record_book_day(conn, as_of)
    return scored
