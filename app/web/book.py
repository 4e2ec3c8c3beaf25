"""The book of business as the dashboard and the accounts list read it, on SQLite and PostgreSQL alike.

"The book" is every account that was a customer on the day of the latest scoring, each with its latest score
(latest by as_of, then id: the same choice the account card makes), filtered by segment, CSM (owner) and band.
The dashboard's figures add up the book as scoring recorded it for the day (app/store/book_days.py: a few hundred
rows per day, so a page does not scan 100,000 accounts); the accounts list and the open tasks read the live rows,
each account joined to its row in the current-score table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from app.store.active import accounts_active_on
from app.store.book_days import GRADUATION_DAYS
from app.store.models import Account, Action, BookDay, BookDayMonth, BookDaySplit, CurrentScore
from app.store.open_tasks import open_since, open_task
from engine.canonical import BANDS_BEST_FIRST

BAND_NAMES = tuple(band.value for band in BANDS_BEST_FIRST)
RISK_BANDS = ("at_risk", "critical", "churning")
HEALTH_BUCKETS = 10  # 0-9, 10-19, ... 90-100 (book_day_splits' values)


@dataclass(frozen=True)
class BookFilter:
    segment: str | None = None
    owner: str | None = None
    band: str | None = None

    @classmethod
    def of(cls, args) -> BookFilter:
        band = args.get("band") or None
        return cls(args.get("segment") or None, args.get("owner") or None, band if band in BAND_NAMES else None)

    def query(self, **changes: str | None) -> dict[str, str]:
        """These filters (with `changes`) as URL query arguments, empty ones left out."""
        values = {"segment": self.segment, "owner": self.owner, "band": self.band, **changes}
        return {k: v for k, v in values.items() if v}


def latest_scores():
    """Each account's newest score (by as_of, then id): the current-score table scoring keeps (one row each)."""
    return CurrentScore.__table__


def book_date(conn: Connection) -> date | None:
    """The latest scoring day whose book is recorded."""
    return conn.scalar(select(func.max(BookDay.as_of)))


def book_rows(as_of: date, latest, flt: BookFilter, *columns, join: str | None = "outer"):
    """SELECT `columns` FROM the (filtered) book: accounts active on `as_of` left-joined to their latest score
    (`join` "inner": only the scored ones; None: no score read, when neither `columns` nor `flt.band` need one)."""
    query = select(*columns).select_from(Account)
    if join or flt.band:
        query = query.join(latest, latest.c.account_id == Account.id, isouter=join != "inner")
    query = query.where(accounts_active_on(as_of))
    if flt.segment:
        query = query.where(Account.segment == flt.segment)
    if flt.owner:
        query = query.where(Account.owner == flt.owner)
    if flt.band:
        query = query.where(latest.c.band == flt.band)
    return query


def _recorded(table, as_of: date, flt: BookFilter, *columns):
    """SELECT `columns` FROM a recorded table's rows of the day, filtered ('' is how it records none)."""
    query = select(*columns).where(table.as_of == as_of)
    for name in ("segment", "owner", "band"):
        value = getattr(flt, name)
        if value and hasattr(table, name):
            query = query.where(getattr(table, name) == value)
    return query


def _band_summary(rows: list) -> dict[str, Any]:
    """Count, share, average health and expansion potential per band: the shape `cse score --json` prints."""
    sums = {name: [0, 0, 0.0, 0.0] for name in BAND_NAMES}
    total = 0
    for row in rows:
        total += row.accounts
        if row.band in sums:
            entry = sums[row.band]
            entry[0] += row.accounts
            entry[1] += row.health_n
            entry[2] += row.health_sum
            entry[3] += row.potential_sum
    bands = {
        name: {
            "count": n,
            "share": round(n / total, 4) if total else 0.0,
            "avg_health": round(health / known, 1) if known else None,
            "expansion_potential": round(potential, 2),
        }
        for name, (n, known, health, potential) in sums.items()
    }
    return {"accounts": total, "unscored": total - sum(b["count"] for b in bands.values()), "bands": bands}


def _sum_by(rows: list, key, columns: tuple[str, ...], where=lambda row: True) -> dict:
    out: dict = {}
    for row in rows:
        if where(row):
            sums = out.setdefault(key(row), [0.0] * len(columns))
            for i, column in enumerate(columns):
                sums[i] += float(getattr(row, column) or 0)
    return out


def book_figures(conn: Connection, as_of: date, flt: BookFilter) -> dict[str, Any]:
    """Book by band, health distribution, churn and expansion pipelines, onboarding funnel and CSM workload."""
    rows = conn.execute(_recorded(BookDay, as_of, flt, BookDay.__table__)).all()
    sums = (
        func.sum(BookDaySplit.accounts).label("accounts"),
        func.sum(BookDaySplit.potential_sum).label("potential_sum"),
    )
    split_by = (BookDaySplit.split, BookDaySplit.value)
    splits = conn.execute(_recorded(BookDaySplit, as_of, flt, *split_by, *sums).group_by(*split_by)).all()
    distribution = [0] * HEALTH_BUCKETS
    for bucket, (n,) in _sum_by(
        [r for r in splits if r.split == "health"], lambda r: int(r.value), ("accounts",)
    ).items():
        distribution[bucket] = int(n)
    risky = lambda row: row.band in RISK_BANDS  # noqa: E731
    churn = _sum_by(rows, lambda r: (r.segment or None, r.band), ("accounts", "arr_sum"), risky)
    expansion = _sum_by([r for r in splits if r.split == "expansion"], lambda r: r.value, ("accounts", "potential_sum"))
    funnel = [sum(getattr(row, k) for row in rows) for k in ("onboarding", "instrumented", "first_value", "graduated")]
    names = ("Became a customer", "Product instrumented", "First value reached", f"{GRADUATION_DAYS}-day graduation")
    owners = _sum_by(rows, lambda r: r.owner or None, ("accounts", "arr_sum"))
    at_risk = _sum_by(rows, lambda r: r.owner or None, ("accounts", "arr_sum"), risky)
    return {
        "summary": _band_summary(rows),
        "distribution": distribution,
        "churn": [
            {"segment": s, "band": b, "accounts": int(n), "arr": round(a, 2)}
            for (s, b), (n, a) in sorted(churn.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
        ],
        "expansion": [
            {"type": t, "accounts": int(n), "potential": round(p, 2)} for t, (n, p) in sorted(expansion.items())
        ],
        "funnel": [{"milestone": name, "accounts": int(n)} for name, n in zip(names, funnel, strict=True)],
        "workload": _workload(_open_tasks(conn, as_of, flt), owners, at_risk),
    }


def _open_tasks(conn: Connection, as_of: date, flt: BookFilter) -> dict[str | None, int]:
    """Open CRM tasks (app/store/open_tasks.py, the account card's definition) of each CSM's accounts in the
    filtered book, open on the book's day."""
    query = book_rows(as_of, latest_scores(), flt, Account.owner, func.count(), join=None)
    query = query.join(Action, Action.account_id == Account.id).where(open_task(open_since(as_of)))
    return dict(conn.execute(query.group_by(Account.owner)).all())


def _workload(open_tasks: dict, owners: dict, at_risk: dict) -> list[dict[str, Any]]:
    rows = [
        {
            "owner": owner,
            "accounts": int(n),
            "arr": round(arr, 2),
            "at_risk_arr": round(at_risk.get(owner, [0, 0])[1], 2),
            "at_risk_accounts": int(at_risk.get(owner, [0, 0])[0]),
            "open_tasks": open_tasks.get(owner, 0),
        }
        for owner, (n, arr) in owners.items()
    ]
    return sorted(rows, key=lambda r: -r["arr"])


def health_trend(conn: Connection, as_of: date, flt: BookFilter, days: int = 90) -> list[dict[str, Any]]:
    """Average health and accounts per band on each scoring day of the last `days` days, from the book recorded
    for each day (every customer's latest score on or before it, not only the scores that moved that day)."""
    query = (
        select(BookDay.as_of, BookDay.band, func.sum(BookDay.accounts), func.sum(BookDay.health_sum),
               func.sum(BookDay.health_n))
        .where(BookDay.as_of > as_of - timedelta(days=days), BookDay.as_of <= as_of)
        .group_by(BookDay.as_of, BookDay.band)
        .order_by(BookDay.as_of)
    )  # fmt: skip
    if flt.segment:
        query = query.where(BookDay.segment == flt.segment)
    if flt.owner:
        query = query.where(BookDay.owner == flt.owner)
    days_seen: dict[date, dict[str, Any]] = {}
    for day, band, count, health, known in conn.execute(query):
        entry = days_seen.setdefault(day, {"as_of": day, "bands": dict.fromkeys(BAND_NAMES, 0), "sum": 0.0, "n": 0})
        if band in entry["bands"]:
            entry["bands"][band] += int(count)
        entry["sum"] += float(health or 0)
        entry["n"] += int(known or 0)
    return [
        {"as_of": e["as_of"], "bands": e["bands"], "avg_health": round(e["sum"] / e["n"], 1) if e["n"] else None}
        for e in days_seen.values()
    ]


def retention_by_month(conn: Connection, as_of: date, flt: BookFilter) -> list[dict[str, Any]]:
    """Gross and net revenue retention per month of the twelve up to `as_of` (recorded with the day's book: see
    app/store/book_days.py for the definitions)."""
    sums = (func.sum(BookDayMonth.opening_arr), func.sum(BookDayMonth.churned_arr), func.sum(BookDayMonth.seat_change))
    query = _recorded(BookDayMonth, as_of, flt, BookDayMonth.month, *sums)
    out = []
    for month, opening, churned, change in conn.execute(
        query.group_by(BookDayMonth.month).order_by(BookDayMonth.month)
    ):
        opening, churned, change = float(opening or 0), float(churned or 0), float(change or 0)
        grr = (opening - churned + min(change, 0.0)) / opening if opening else None
        nrr = (opening - churned + change) / opening if opening else None
        out.append(
            {
                "month": month.strftime("%Y-%m"),
                "opening_arr": round(opening, 2),
                "churned_arr": round(churned, 2),
                "grr": None if grr is None else round(grr, 4),
                "nrr": None if nrr is None else round(nrr, 4),
            }
        )
    return out


def filter_choices(conn: Connection, as_of: date | None = None) -> dict[str, list[str]]:
    """Segments and CSMs to filter by: those of the day's recorded book (a few hundred rows, not the accounts)."""
    pairs = conn.execute(select(BookDay.segment, BookDay.owner).where(BookDay.as_of == as_of).distinct()).all()
    return {
        "segments": sorted({segment for segment, _ in pairs if segment}),
        "owners": sorted({owner for _, owner in pairs if owner}),
        "bands": list(BAND_NAMES),
    }
