"""Accounts as an operator reads them from the command line: a filtered list, one account, the top of the risk list.

The single account is the card (app/cards/model.py: the same model the CRM plugins and the web show) with what a
CLI reader also wants beside it: the factor scores, the score history and every action planned and delivered.
Scores are read as "the latest row on or before the day" since a row is only written when a value moved.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, func, select

from app.cards.model import build_card, plain_drivers
from app.numbers import whole_number
from app.store.models import Account, Action, CurrentScore, Score
from engine.canonical import BANDS_BEST_FIRST, FACTORS

SORTS = {
    "risk": (Score.churn_probability.desc().nulls_last(), Score.health.asc()),
    "health": (Score.health.asc(),),
    "arr": (Account.arr.desc().nulls_last(),),
    "expansion": (Score.expansion_score.desc().nulls_last(),),
    "name": (Account.name.asc(),),
}
AT_RISK_BANDS = tuple(band.value for band in BANDS_BEST_FIRST[1:])
TREND_POINTS = 12
GONE = ("churned", "deleted")


def latest_scores(as_of: date | None = None) -> Select:
    """Each account's latest score row (on or before `as_of` when given), as a subquery-able select of ids."""
    ranked = select(
        Score.id,
        func.row_number()
        .over(partition_by=Score.account_id, order_by=(Score.as_of.desc(), Score.id.desc()))
        .label("rank"),
    )
    if as_of is not None:
        ranked = ranked.where(Score.as_of <= as_of)
    sub = ranked.subquery()
    return select(sub.c.id).where(sub.c.rank == 1)


def scores_on(conn: Connection, as_of: date | None = None) -> Select:
    """Ids of each account's latest score on or before `as_of`: read from the current-score table unless a score
    dated after `as_of` exists (a forecast), when the history is searched (latest_scores)."""
    newest = conn.scalar(select(func.max(CurrentScore.as_of)))
    if as_of is not None and newest is not None and newest > as_of:
        return latest_scores(as_of)
    return select(CurrentScore.score_id)


def _number(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def list_accounts(
    conn: Connection,
    band: str | None = None,
    segment: str | None = None,
    csm: str | None = None,
    sort: str = "risk",
    limit: int = 20,
    as_of: date | None = None,
) -> list[dict[str, Any]]:
    """Active accounts with their latest score on or before `as_of` (default today: a forecast scored for a later
    day is not the account's state), filtered and sorted (see SORTS)."""
    query = (
        select(
            Account.id,
            Account.name,
            Account.owner,
            Account.segment,
            Account.arr,
            Score.as_of,
            Score.health,
            Score.band,
            Score.trend_7d,
            Score.churn_probability,
            Score.expansion_score,
            Score.expansion_type,
            Score.drivers,
            Score.risk_drivers,
        )  # fmt: skip
        .join(Score, Score.account_id == Account.id)
        .where(Score.id.in_(scores_on(conn, as_of or date.today())), Account.status.notin_(GONE))
        .order_by(*SORTS[sort], Account.id)
        .limit(limit)
    )
    if band:
        query = query.where(Score.band == band)
    if segment:
        query = query.where(Account.segment == segment)
    if csm:
        query = query.where(Account.owner == csm)
    return [
        {
            "id": row.id,
            "name": row.name,
            "csm": row.owner,
            "segment": row.segment,
            "arr": _number(row.arr, 2),
            "as_of": row.as_of.isoformat(),
            "health": _number(row.health, 1),
            "band": row.band,
            "trend_7d": _number(row.trend_7d, 1),
            "churn_probability": _number(row.churn_probability, 3),
            "expansion_score": _number(row.expansion_score, 1),
            "expansion_type": row.expansion_type,
            "drivers": plain_drivers(row.drivers, row.risk_drivers),
        }  # fmt: skip
        for row in conn.execute(query)
    ]


def account_actions(conn: Connection, account_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every action planned for the accounts, newest first, with its status (planned, released, done)."""
    rows = conn.execute(
        select(Action.account_id, Action.kind, Action.playbook, Action.step, Action.status, Action.due, Action.payload)
        .where(Action.account_id.in_(account_ids))
        .order_by(Action.account_id, Action.created_at.desc(), Action.id.desc())
    )
    actions: dict[int, list[dict[str, Any]]] = {account_id: [] for account_id in account_ids}
    for row in rows:
        actions[row.account_id].append({
            "kind": row.kind, "program": row.playbook, "step": row.step, "status": row.status,
            "due": row.due.isoformat(timespec="minutes") if row.due else None,
            "title": (row.payload or {}).get("title"),
        })  # fmt: skip
    return actions


def top_at_risk(conn: Connection, limit: int = 5) -> list[dict[str, Any]]:
    """The accounts most likely to churn (outside the healthy band), with their drivers and planned actions."""
    risky = [a for band in AT_RISK_BANDS for a in list_accounts(conn, band=band, sort="risk", limit=limit)]
    risky.sort(key=lambda a: (-(a["churn_probability"] or 0), a["health"] if a["health"] is not None else 100))
    top = risky[:limit]
    actions = account_actions(conn, [a["id"] for a in top])
    return [{**account, "actions": actions[account["id"]]} for account in top]


def actions_by_kind(conn: Connection) -> dict[str, dict[str, int]]:
    """Actions in the store per kind and status: what the programs planned and how much of it was delivered."""
    rows = conn.execute(select(Action.kind, Action.status, func.count()).group_by(Action.kind, Action.status))
    summary: dict[str, dict[str, int]] = {}
    for kind, status, count in rows:
        summary.setdefault(kind, {})[status] = count
    return summary


def find_account(conn: Connection, id_or_name: str) -> list[tuple[int, str]]:
    """Accounts matching an id, an exact name, or else a part of a name (case-insensitive): (id, name) pairs."""
    number = whole_number(id_or_name)
    if number is not None:
        found = conn.execute(select(Account.id, Account.name).where(Account.id == number)).all()
        if found:
            return [tuple(row) for row in found]
    exact = conn.execute(select(Account.id, Account.name).where(func.lower(Account.name) == id_or_name.lower())).all()
    if exact:
        return [tuple(row) for row in exact]
    like = func.lower(Account.name).like(f"%{id_or_name.lower()}%")
    matches = conn.execute(select(Account.id, Account.name).where(like).order_by(Account.id).limit(10))
    return [tuple(row) for row in matches]


def account_view(conn: Connection, account_id: int, programs: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The card of one account plus its factor scores, score history and every planned or delivered action."""
    card = build_card(conn, account_id, programs)
    if card is None:
        return None
    factor_columns = [getattr(Score, f"f_{factor}") for factor in FACTORS]
    latest = conn.execute(
        select(*factor_columns)
        .join(CurrentScore, CurrentScore.score_id == Score.id)
        .where(CurrentScore.account_id == account_id)
    ).first()
    history = conn.execute(
        select(Score.as_of, Score.health, Score.band)
        .where(Score.account_id == account_id)
        .order_by(Score.as_of.desc(), Score.id.desc())
        .limit(TREND_POINTS)
    ).all()
    card["factors"] = {
        str(factor): _number(value, 1) for factor, value in zip(FACTORS, latest or [None] * len(FACTORS), strict=True)
    }
    card["history"] = [{"as_of": d.isoformat(), "health": _number(h, 1), "band": b} for d, h, b in reversed(history)]
    card["actions_log"] = account_actions(conn, [account_id])[account_id]
    return card
