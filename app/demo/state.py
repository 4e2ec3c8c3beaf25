"""Per-account state over the window: disengagement before churn, champions, seat and plan moves, price.

Runs after the churn dates are known (accounts.py) and before any activity is drawn, because activity depends
on all of it: an account heading to churn disengages for months first, an expanding one has its seats nearly full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.demo.accounts import Pool, stage_rng
from app.demo.spec import PLAN_SEAT_PRICE, SEGMENT_ARR_THRESHOLDS, BookSpec

# Segment codes index engine.canonical.Segment in declaration order: smb, mid_market, enterprise.
SALESFORCE_SHARE = (0.45, 0.7, 0.85)  # probability that the account's CRM is Salesforce (else HubSpot)
DISENGAGE_MEDIAN_DAYS = 100.0  # median days from the first visible decline to churn


@dataclass
class BookState:
    """Everything the activity simulation and the frames need, one array entry per book account."""

    pool: Pool
    n: int
    days: int
    start: np.ndarray  # first day of the window the account is a customer (int)
    end: np.ndarray  # first day of the window it is not (churn day or `days`)
    churned: np.ndarray  # churned within the window
    onset: np.ndarray  # day disengagement before churn starts (float; may be past the window)
    champion0: np.ndarray  # a champion at the window start / at signup
    champion_leave: np.ndarray  # day the champion leaves (inf: stays)
    seat_acct: np.ndarray
    seat_day: np.ndarray
    seat_delta: np.ndarray
    plan_acct: np.ndarray
    plan_day: np.ndarray
    plan_delta: np.ndarray
    plan_new: np.ndarray
    seats_final: np.ndarray
    plan_final: np.ndarray
    arr: np.ndarray
    price_scale: float
    segment: np.ndarray  # 0 smb, 1 mid_market, 2 enterprise
    crm: np.ndarray  # index into spec.CRMS: 0 salesforce, 1 hubspot
    owner: np.ndarray  # CSM index

    def decay(self, day: np.ndarray | float) -> np.ndarray:
        """Engagement multiplier (1 -> 0) of the disengagement before churn, per account, on `day`."""
        span = np.maximum(self.pool.churn_day - self.onset, 1.0)
        progress = np.clip((np.asarray(day, dtype=float) - self.onset) / span, 0.0, 1.0)
        return (1.0 - progress) ** 1.5

    def progress(self, day: np.ndarray) -> np.ndarray:
        """Share (0-1) of the disengagement phase elapsed on `day` (0 before it starts)."""
        span = np.maximum(self.pool.churn_day - self.onset, 1.0)
        return np.clip((day - self.onset) / span, 0.0, 1.0)


def build_state(spec: BookSpec, pool: Pool) -> BookState:
    """Derive disengagement, champion loss, seat/plan changes, ARR, segment, CRM and owner for the book."""
    rng = stage_rng(spec.seed, 2)
    n = len(pool.since)
    days = spec.days
    assert pool.churn_day is not None and pool.lifetime is not None
    start = np.maximum(pool.since, 0)
    end = np.minimum(pool.churn_day, days)
    churned = pool.churn_day <= days

    # Disengagement: usage fades for months before a B2B customer leaves (typically two to five; longer when an
    # annual contract keeps a decided customer paying), never before the first quarter of its tenure.
    decision = pool.since + pool.lifetime
    lead = np.maximum(
        rng.lognormal(np.log(DISENGAGE_MEDIAN_DAYS), 0.35, n), np.minimum(pool.churn_day - decision, 150.0)
    )
    lead = np.clip(lead, 30.0, 180.0)
    onset = np.maximum(pool.churn_day - lead, pool.since + 0.25 * (pool.churn_day - pool.since))

    # Champions: healthier accounts more often have one; once disengagement starts, many lose theirs first.
    champion0 = rng.random(n) < 0.5 + 0.45 * pool.adoption
    heading = onset <= days
    leaves = champion0 & (rng.random(n) < np.where(heading, 0.4, 0.03))
    leave_day = np.where(heading, onset - rng.uniform(0, 25, n), rng.uniform(0, days, n))
    champion_leave = np.where(leaves, np.maximum(leave_day, pool.since + 7.0), np.inf)

    seat_acct, seat_day, seat_delta = _seat_changes(rng, pool, start, end, onset)
    seats_final = pool.seats0 + np.bincount(seat_acct, weights=seat_delta, minlength=n).astype(np.int64)
    plan_acct, plan_day, plan_delta = _plan_changes(rng, pool, start, end, onset)
    plan_final = pool.plan0.astype(np.int64).copy()
    plan_final[plan_acct] += plan_delta
    plan_new = plan_final[plan_acct]

    raw_arr = seats_final * np.asarray(PLAN_SEAT_PRICE)[plan_final] * 12.0 * pool.discount
    active_end = ~churned
    price_scale = float(spec.avg_arr / raw_arr[active_end].mean())
    # Priced in whole dollars a month, as subscriptions are (and as Intercom keeps a company's monthly spend): the
    # ARR every vendor holds for the account is then the book's, to the cent.
    arr = 12.0 * np.round(raw_arr * price_scale / 12.0)
    segment = np.searchsorted(np.asarray(SEGMENT_ARR_THRESHOLDS), arr, side="left").astype(np.int8)
    segment = np.minimum(segment, 2)

    crm = (rng.random(n) >= np.asarray(SALESFORCE_SHARE)[segment]).astype(np.int8)
    # Owners: round-robin down the ARR ranking so every CSM carries a similar book (and some enterprise).
    owner = np.empty(n, dtype=np.int64)
    owner[np.argsort(-arr, kind="stable")] = np.arange(n) % spec.csms
    return BookState(
        pool=pool,
        n=n,
        days=days,
        start=start,
        end=end,
        churned=churned,
        onset=onset,
        champion0=champion0,
        champion_leave=champion_leave,
        seat_acct=seat_acct,
        seat_day=seat_day,
        seat_delta=seat_delta,
        plan_acct=plan_acct,
        plan_day=plan_day,
        plan_delta=plan_delta,
        plan_new=plan_new,
        seats_final=seats_final,
        plan_final=plan_final,
        arr=arr,
        price_scale=price_scale,
        segment=segment,
        crm=crm,
        owner=owner,
    )


def _seat_changes(
    rng: np.random.Generator, pool: Pool, start: np.ndarray, end: np.ndarray, onset: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seat additions in healthy, growing, high-adoption accounts whose seats are nearly all used; a contraction
    for some accounts heading to churn and a few low-adoption ones. Returns (account, day, delta), day-sorted.

    At most one contraction per account, sized against the seats held at that moment, so seats stay >= 1.
    """
    n = len(start)
    healthy_end = np.minimum(end, np.floor(onset)).astype(np.int64)
    healthy_len = np.maximum(healthy_end - start, 0)
    full = np.where(pool.share0 > 0.8, 3.0, 0.6)
    monthly = 0.12 * (pool.growth / 0.5) ** 2 * (0.2 + pool.adoption) * full
    ups = np.minimum(rng.poisson(monthly * healthy_len / 30.0), 6)
    up_acct = np.repeat(np.arange(n), ups)
    up_day = start[up_acct] + np.floor(rng.random(len(up_acct)) * healthy_len[up_acct]).astype(np.int64)
    up_delta = np.maximum(1, np.round(pool.seats0[up_acct] * rng.uniform(0.05, 0.25, len(up_acct))))

    decaying = end > np.ceil(onset)
    down_start = np.where(decaying, np.maximum(start, np.ceil(onset)), start).astype(np.int64)
    p_down = np.where(decaying, 0.3, np.where(pool.adoption < 0.3, 0.05, 0.0))
    down = (rng.random(n) < p_down) & (pool.seats0 >= 2) & (end > down_start)
    down_acct = np.flatnonzero(down)
    down_day = down_start[down_acct] + np.floor(
        rng.random(len(down_acct)) * (end[down_acct] - down_start[down_acct])
    ).astype(np.int64)
    day_of_down = np.full(n, np.iinfo(np.int64).max)
    day_of_down[down_acct] = down_day
    before = up_day < day_of_down[up_acct]
    held = pool.seats0 + np.bincount(up_acct[before], weights=up_delta[before], minlength=n).astype(np.int64)
    cut = np.maximum(1, np.floor(held[down_acct] * rng.uniform(0.1, 0.45, len(down_acct))))
    cut = np.minimum(cut, held[down_acct] - 1)
    keep = cut > 0

    acct = np.concatenate([up_acct, down_acct[keep]])
    day = np.concatenate([up_day, down_day[keep]])
    delta = np.concatenate([up_delta, -cut[keep]]).astype(np.int64)
    order = np.lexsort((acct, day))
    return acct[order], day[order], delta[order]


def _plan_changes(
    rng: np.random.Generator, pool: Pool, start: np.ndarray, end: np.ndarray, onset: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most one plan move per account: upgrades for growing, adopting accounts; downgrades before churn."""
    n = len(start)
    healthy_end = np.minimum(end, np.floor(onset)).astype(np.int64)
    healthy_len = np.maximum(healthy_end - start, 0)
    window = max(int(end.max()), 1)
    p_up = 0.6 * pool.growth**2 * pool.adoption * (healthy_len / window) * (pool.plan0 < 3)
    decaying = end > np.ceil(onset)
    p_down = np.where(decaying & (pool.plan0 > 0), 0.15, 0.0)
    u = rng.random(n)
    up = u < p_up
    down = ~up & (u < p_up + p_down)
    down_start = np.maximum(start, np.ceil(onset)).astype(np.int64)
    day = np.where(
        up,
        start + np.floor(rng.random(n) * healthy_len),
        down_start + np.floor(rng.random(n) * np.maximum(end - down_start, 0)),
    ).astype(np.int64)
    acct = np.flatnonzero(up | down)
    delta = np.where(up, 1, -1)[acct]
    return acct, day[acct], delta
