"""The book of business as the dashboard and the accounts list read it: one SQL statement per figure, aggregated
in the database (no rows come back to Python but the groups), on SQLite and PostgreSQL alike.

"The book" is every account that was a customer on the day of the latest scoring, each with its latest score
(latest by as_of, then id: the same choice the account card makes), filtered by segment, CSM (owner) and band.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, and_, case, cast, func, or_, select

from app.cards.model import GRADUATION_DAYS, OPEN_TASK_STATUSES
from app.store.active import accounts_active_on
from app.store.models import Account, AccountDay, Action, Score
from engine.canonical import BANDS_BEST_FIRST

BAND_NAMES = tuple(band.value for band in BANDS_BEST_FIRST)
RISK_BANDS = ("at_risk", "critical", "churning")
HEALTH_BUCKETS = 10  # 0-9, 10-19, ... 90-100
MONTHS = 12


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
    """Each account's latest score (a window over the scores' account index)."""
    rank = func.row_number().over(partition_by=Score.account_id, order_by=(Score.as_of.desc(), Score.id.desc()))
    ranked = select(
        Score.account_id,
        Score.as_of,
        Score.health,
        Score.band,
        Score.churn_probability,
        Score.trend_30d,
        Score.expansion_type,
        Score.revenue_potential,
        rank.label("rank"),
    ).subquery("ranked")
    return select(ranked).where(ranked.c.rank == 1).subquery("latest")


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


def band_summary(conn: Connection, as_of: date, flt: BookFilter) -> dict[str, Any]:
    """Count, share, average health and expansion potential per band: the shape `cse score --json` prints."""
    latest = latest_scores()
    rows = conn.execute(
        book_rows(
            as_of,
            latest,
            flt,
            latest.c.band,
            func.count(),
            func.avg(latest.c.health),
            func.sum(latest.c.revenue_potential),
        ).group_by(latest.c.band)
    ).all()
    total = sum(row[1] for row in rows)
    found = {row[0]: row for row in rows}
    bands = {}
    for name in BAND_NAMES:
        _, count, health, potential = found.get(name, (name, 0, None, None))
        bands[name] = {
            "count": count,
            "share": round(count / total, 4) if total else 0.0,
            "avg_health": _round(health, 1),
            "expansion_potential": round(float(potential or 0.0), 2),
        }
    unscored = total - sum(b["count"] for b in bands.values())
    return {"accounts": total, "unscored": unscored, "bands": bands}


def health_distribution(conn: Connection, as_of: date, flt: BookFilter) -> list[int]:
    latest = latest_scores()
    bucket = case((latest.c.health >= 100, HEALTH_BUCKETS - 1), else_=cast(latest.c.health / 10, Integer))
    rows = conn.execute(
        book_rows(as_of, latest, flt, bucket.label("bucket"), func.count())
        .where(latest.c.health.is_not(None))
        .group_by(bucket)
    ).all()
    counts = [0] * HEALTH_BUCKETS
    for index, count in rows:
        counts[max(0, min(int(index), HEALTH_BUCKETS - 1))] += count
    return counts


def health_trend(conn: Connection, as_of: date, flt: BookFilter, days: int = 90) -> list[dict[str, Any]]:
    """Average health and accounts per band on each scoring day of the last `days` days."""
    query = (
        select(Score.as_of, Score.band, func.count(), func.avg(Score.health))
        .join(Account, Account.id == Score.account_id)
        .where(Score.as_of > as_of - timedelta(days=days))
        .group_by(Score.as_of, Score.band)
        .order_by(Score.as_of)
    )
    if flt.segment:
        query = query.where(Account.segment == flt.segment)
    if flt.owner:
        query = query.where(Account.owner == flt.owner)
    days_seen: dict[date, dict[str, Any]] = {}
    for day, band, count, health in conn.execute(query):
        entry = days_seen.setdefault(day, {"as_of": day, "bands": dict.fromkeys(BAND_NAMES, 0), "sum": 0.0, "n": 0})
        if band in entry["bands"]:
            entry["bands"][band] += count
        if health is not None:
            entry["sum"] += float(health) * count
            entry["n"] += count
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
        .where(AccountDay.day >= starts[0], AccountDay.seat_delta != 0)
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


def pipelines(conn: Connection, as_of: date, flt: BookFilter) -> dict[str, list[dict[str, Any]]]:
    """ARR at risk by segment (tier) and band, and expansion potential by type."""
    latest = latest_scores()
    at_risk = conn.execute(
        book_rows(as_of, latest, flt, Account.segment, latest.c.band, func.count(), func.sum(Account.arr))
        .where(latest.c.band.in_(RISK_BANDS))
        .group_by(Account.segment, latest.c.band)
        .order_by(Account.segment, latest.c.band)
    ).all()
    expansion = conn.execute(
        book_rows(as_of, latest, flt, latest.c.expansion_type, func.count(), func.sum(latest.c.revenue_potential))
        .where(latest.c.expansion_type.is_not(None))
        .group_by(latest.c.expansion_type)
        .order_by(latest.c.expansion_type)
    ).all()
    return {
        "churn": [{"segment": s, "band": b, "accounts": n, "arr": round(float(a or 0), 2)} for s, b, n, a in at_risk],
        "expansion": [{"type": t, "accounts": n, "potential": round(float(p or 0), 2)} for t, n, p in expansion],
    }


def onboarding_funnel(conn: Connection, as_of: date, flt: BookFilter) -> list[dict[str, Any]]:
    """Customers of the last 180 days by milestone reached (the card model's milestones)."""
    latest = latest_scores()
    cohort = Account.customer_since > as_of - timedelta(days=180)
    graduated = Account.customer_since <= as_of - timedelta(days=GRADUATION_DAYS)
    row = conn.execute(
        book_rows(
            as_of,
            latest,
            flt,
            func.count(),
            func.count(Account.first_activity_at),
            func.count(Account.first_value_at),
            func.sum(case((graduated, 1), else_=0)),
        ).where(cohort)
    ).one()
    names = ("Became a customer", "Product instrumented", "First value reached", f"{GRADUATION_DAYS}-day graduation")
    return [{"milestone": name, "accounts": int(n or 0)} for name, n in zip(names, row, strict=True)]


def csm_workload(conn: Connection, as_of: date, flt: BookFilter) -> list[dict[str, Any]]:
    latest = latest_scores()
    risky = latest.c.band.in_(RISK_BANDS)
    rows = conn.execute(
        book_rows(
            as_of,
            latest,
            flt,
            Account.owner,
            func.count(),
            func.sum(Account.arr),
            func.sum(case((risky, Account.arr), else_=0.0)),
            func.sum(case((risky, 1), else_=0)),
        )
        .group_by(Account.owner)
        .order_by(func.sum(Account.arr).desc())
    ).all()
    tasks = (
        select(Account.owner, func.count())
        .select_from(Action)
        .join(Account, Account.id == Action.account_id)
        .where(Action.kind == "crm_task", Action.status.in_(OPEN_TASK_STATUSES))
    )
    if flt.segment:
        tasks = tasks.where(Account.segment == flt.segment)
    open_tasks = dict(conn.execute(tasks.group_by(Account.owner)).all())
    return [
        {
            "owner": owner,
            "accounts": n,
            "arr": round(float(arr or 0), 2),
            "at_risk_arr": round(float(risk or 0), 2),
            "at_risk_accounts": int(risky_n or 0),
            "open_tasks": open_tasks.get(owner, 0),
        }
        for owner, n, arr, risk, risky_n in rows
    ]


def filter_choices(conn: Connection) -> dict[str, list[str]]:
    """Segments and CSMs to filter by (distinct values, read from their indexes)."""
    segments = conn.scalars(
        select(Account.segment).where(Account.segment.is_not(None)).distinct().order_by(Account.segment)
    )
    owners = conn.scalars(select(Account.owner).where(Account.owner.is_not(None)).distinct().order_by(Account.owner))
    return {"segments": list(segments), "owners": list(owners), "bands": list(BAND_NAMES)}
