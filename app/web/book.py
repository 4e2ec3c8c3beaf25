"""The book of business as the dashboard and the accounts list read it: one SQL statement per figure, aggregated
in the database (no rows come back to Python but the groups), on SQLite and PostgreSQL alike.

"The book" is every account that was a customer on the day of the latest scoring, each with its latest score
(latest by as_of, then id: the same choice the account card makes, kept in the current-score table by scoring),
filtered by segment, CSM (owner) and band. The health trend reads the book recorded per scoring day (book_days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, and_, case, cast, func, literal_column, or_, select

from app.cards.model import GRADUATION_DAYS
from app.store.active import accounts_active_on
from app.store.models import Account, AccountDay, Action, BookDay, CurrentScore, Score
from engine.canonical import BANDS_BEST_FIRST

BAND_NAMES = tuple(band.value for band in BANDS_BEST_FIRST)
RISK_BANDS = ("at_risk", "critical", "churning")
HEALTH_BUCKETS = 10  # 0-9, 10-19, ... 90-100
MONTHS = 12
OPEN_TASK_DAYS = 14  # a CRM task counts as open this long after it was planned (the programs' window too)


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
    return conn.scalar(select(func.max(Score.as_of)))


def book_rows(as_of: date, latest, flt: BookFilter, *columns):
    """SELECT `columns` FROM the (filtered) book: accounts active on `as_of` left-joined to their latest score."""
    query = select(*columns).select_from(Account).outerjoin(latest, latest.c.account_id == Account.id)
    query = query.where(accounts_active_on(as_of))
    if flt.segment:
        query = query.where(Account.segment == flt.segment)
    if flt.owner:
        query = query.where(Account.owner == flt.owner)
    if flt.band:
        query = query.where(latest.c.band == flt.band)
    return query


def _round(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _groups(conn: Connection, as_of: date, flt: BookFilter) -> list:
    """The book in one scan: accounts, ARR, health and potential summed per band, health bucket, segment, CSM,
    expansion type and onboarding milestones reached; every figure below is a sum over these groups."""
    latest = latest_scores()
    bucket = case((latest.c.health >= 100, HEALTH_BUCKETS - 1), else_=cast(latest.c.health / 10, Integer))
    cohort = Account.customer_since > as_of - timedelta(days=180)
    reached = (
        case((and_(cohort, Account.first_activity_at.is_not(None)), 1), else_=0),
        case((and_(cohort, Account.first_value_at.is_not(None)), 1), else_=0),
        case((and_(cohort, Account.customer_since <= as_of - timedelta(days=GRADUATION_DAYS)), 1), else_=0),
    )
    keys = (
        latest.c.band,
        bucket,
        Account.segment,
        Account.owner,
        latest.c.expansion_type,
        case((cohort, 1), else_=0),
        *reached,
    )
    sums = (
        func.count(),
        func.count(latest.c.health),
        func.sum(latest.c.health),
        func.sum(latest.c.revenue_potential),
        func.sum(Account.arr),
    )
    return conn.execute(book_rows(as_of, latest, flt, *keys, *sums).group_by(*keys)).all()


def _band_summary(groups: list) -> dict[str, Any]:
    """Count, share, average health and expansion potential per band: the shape `cse score --json` prints."""
    sums = {name: [0, 0, 0.0, 0.0] for name in BAND_NAMES}
    total = 0
    for row in groups:
        total += row[9]
        if row[0] in sums:
            entry = sums[row[0]]
            entry[0] += row[9]
            entry[1] += row[10]
            entry[2] += float(row[11] or 0)
            entry[3] += float(row[12] or 0)
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


def _sum_by(groups: list, key, value_columns: tuple[int, ...], where=lambda row: True) -> dict:
    out: dict = {}
    for row in groups:
        if where(row):
            sums = out.setdefault(key(row), [0.0] * len(value_columns))
            for i, column in enumerate(value_columns):
                sums[i] += float(row[column] or 0)
    return out


def book_figures(conn: Connection, as_of: date, flt: BookFilter) -> dict[str, Any]:
    """Book by band, health distribution, churn and expansion pipelines, onboarding funnel and CSM workload."""
    groups = _groups(conn, as_of, flt)
    scored = [row for row in groups if row[1] is not None]
    distribution = [0] * HEALTH_BUCKETS
    for index, n in _sum_by(scored, lambda r: max(0, min(int(r[1]), HEALTH_BUCKETS - 1)), (9,)).items():
        distribution[index] = int(n[0])
    risky = lambda row: row[0] in RISK_BANDS  # noqa: E731
    churn = _sum_by(groups, lambda r: (r[2], r[0]), (9, 13), risky)
    expansion = _sum_by(groups, lambda r: r[4], (9, 12), lambda r: r[4] is not None)
    funnel = [sum(row[9] * row[k] for row in groups) for k in (5, 6, 7, 8)]
    names = ("Became a customer", "Product instrumented", "First value reached", f"{GRADUATION_DAYS}-day graduation")
    owners = _sum_by(groups, lambda r: r[3], (9, 13))
    at_risk = _sum_by(groups, lambda r: r[3], (9, 13), risky)
    return {
        "summary": _band_summary(groups),
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
    """CRM tasks planned for each CSM's accounts (in the filtered book) over the last OPEN_TASK_DAYS days.

    A task's status says where it went, not whether it is done: `planned` and `released` wait for the outbox,
    `done` was delivered to the CRM (where it stays open: completion is not read back), `no_target` had no CRM
    to go to and is only on the account page. None of them is closed, so every status counts; age alone
    retires a task, on the window the programs also treat a task as open (app/programs/tick.py).
    """
    since = datetime.combine(as_of - timedelta(days=OPEN_TASK_DAYS), time.min)
    query = book_rows(as_of, latest_scores(), flt, Account.owner, func.count())
    query = query.join(Action, Action.account_id == Account.id)
    query = query.where(Action.kind == "crm_task", Action.created_at >= since)
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


def _month_starts(as_of: date) -> list[date]:
    first = as_of.replace(day=1)
    starts = []
    for _ in range(MONTHS):
        starts.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return starts[::-1]


def _next_month(start: date) -> date:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def retention_by_month(conn: Connection, as_of: date, flt: BookFilter) -> list[dict[str, Any]]:
    """Gross and net revenue retention per month: ARR of the customers at the month's start, less the ARR of those
    who churned in it (gross), plus the seat changes priced at each account's ARR per seat (net). Plan changes
    carry no price in the canonical model and are not counted."""
    starts = _month_starts(as_of)
    sums = []
    for start in starts:
        end = _next_month(start)
        customer = and_(
            or_(Account.customer_since.is_(None), Account.customer_since < start),
            or_(Account.churned_at.is_(None), Account.churned_at >= start),
        )
        sums.append(func.sum(case((customer, Account.arr), else_=0.0)))
        sums.append(func.sum(case((and_(customer, Account.churned_at < end), Account.arr), else_=0.0)))
    accounts = select(*sums).where(Account.status != "deleted")
    if flt.segment:
        accounts = accounts.where(Account.segment == flt.segment)
    if flt.owner:
        accounts = accounts.where(Account.owner == flt.owner)
    totals = conn.execute(accounts).one()
    per_seat = Account.arr / func.nullif(Account.seats_purchased, 0)
    seat_sums = [
        func.sum(
            case(
                (and_(AccountDay.day >= start, AccountDay.day < _next_month(start)), AccountDay.seat_delta * per_seat),
                else_=0.0,
            )
        )
        for start in starts
    ]
    seats = (
        select(*seat_sums)
        .select_from(AccountDay)
        .join(Account, Account.id == AccountDay.account_id)
        .where(
            AccountDay.day >= starts[0], AccountDay.seat_delta != literal_column("0")
        )  # the partial index's own term
    )
    if flt.segment:
        seats = seats.where(Account.segment == flt.segment)
    if flt.owner:
        seats = seats.where(Account.owner == flt.owner)
    changes = conn.execute(seats).one()
    out = []
    for i, start in enumerate(starts):
        opening, churned, change = float(totals[2 * i] or 0), float(totals[2 * i + 1] or 0), float(changes[i] or 0)
        contraction = min(change, 0.0)
        grr = (opening - churned + contraction) / opening if opening else None
        nrr = (opening - churned + change) / opening if opening else None
        out.append(
            {
                "month": start.strftime("%Y-%m"),
                "opening_arr": round(opening, 2),
                "churned_arr": round(churned, 2),
                "grr": _round(grr, 4),
                "nrr": _round(nrr, 4),
            }
        )
    return out


def filter_choices(conn: Connection) -> dict[str, list[str]]:
    """Segments and CSMs to filter by (distinct values, read from their indexes)."""
    segments = conn.scalars(
        select(Account.segment).where(Account.segment.is_not(None)).distinct().order_by(Account.segment)
    )
    owners = conn.scalars(select(Account.owner).where(Account.owner.is_not(None)).distinct().order_by(Account.owner))
    return {"segments": list(segments), "owners": list(owners), "bands": list(BAND_NAMES)}
