"""Account-level simulation: who the customers are, why they churn and when, how they grow.

Every account gets hidden behaviours (latents in [0, 1]): onboarding quality, adoption, the complexity the product
has for it, and team growth. Churn is *caused* by them through a hazard

    h(tenure) = s * (r + o * exp(-tenure / 50 days))

where the early part `o` grows with a slow or missing first value (poor onboarding) and the long-run part `r`
grows with low adoption and high complexity (and shrinks with company size). Each account draws one Exp(1)
"tolerance"; it decides to leave when the cumulative hazard reaches it and leaves at the end of that billing
period. The scale `s` is calibrated so the measured monthly churn equals the spec, and a pool of arrivals over
six years of history is thinned at random so that exactly `active_accounts` are active at `as_of` — thinning
is independent of behaviour, so it changes neither the churn rate nor the signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from app.demo.spec import BookSpec

HISTORY_DAYS = 6 * 365  # arrivals start this long before the window
ARRIVAL_GROWTH = 0.30  # yearly growth of new-customer arrivals
EARLY_DAYS = 50.0  # decay of the onboarding hazard with tenure
MONTH_DAYS = 365.25 / 12
MAX_LIFETIME_DAYS = 100 * 365.0
SIZE_SHARES = (0.915, 0.076, 0.009)  # small / medium / large companies among arrivals
LATENTS = ("onboarding", "adoption", "complexity", "growth")
LATENT_CORR = np.array(
    [
        [1.00, 0.45, -0.25, 0.10],
        [0.45, 1.00, -0.30, 0.25],
        [-0.25, -0.30, 1.00, 0.00],
        [0.10, 0.25, 0.00, 1.00],
    ]
)


def stage_rng(seed: int, stage: int, *more: int) -> np.random.Generator:
    """One independent generator per simulation stage, so editing one stage leaves the others' draws alone."""
    return np.random.default_rng([seed, stage, *more])


def month_bounds(spec: BookSpec) -> list[tuple[int, int]]:
    """[start, end) day offsets (from the window start) of the calendar months wholly inside the window.

    Falls back to 30-day periods ending at as_of when the window holds no whole calendar month.
    """
    start = spec.as_of - timedelta(days=spec.days)
    bounds = []
    month = date(start.year, start.month, 1)
    if month < start:
        month = _next_month(month)
    while _next_month(month) <= spec.as_of:
        bounds.append(((month - start).days, (_next_month(month) - start).days))
        month = _next_month(month)
    if not bounds:
        end = spec.days
        while end - 30 >= 0:
            bounds.insert(0, (end - 30, end))
            end -= 30
    return bounds


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def churn_rates(since: np.ndarray, churn_day: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Per period: share of accounts active on its first day (since <= d < churn_day) not active on the next."""
    rates = []
    for start, end in bounds:
        active = (since <= start) & (churn_day > start)
        churned = active & (churn_day <= end)
        rates.append(churned.sum() / max(int(active.sum()), 1))
    return np.asarray(rates, dtype=float)


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Pool:
    """Candidate accounts over the whole history; fields are arrays of one length."""

    since: np.ndarray  # int day offset from the window start (negative: before the window)
    onboarding: np.ndarray
    adoption: np.ndarray
    complexity: np.ndarray
    growth: np.ndarray
    size_class: np.ndarray  # 0 small, 1 medium, 2 large company
    seats0: np.ndarray
    plan0: np.ndarray
    annual: np.ndarray
    discount: np.ndarray
    ttfv: np.ndarray  # days to first value, inf = never
    setup_days: np.ndarray
    team_days: np.ndarray  # days until a third user is active, inf = never
    r: np.ndarray  # long-run hazard (relative)
    o: np.ndarray  # onboarding hazard at tenure 0 (relative)
    tolerance: np.ndarray  # Exp(1)
    thin: np.ndarray  # U(0, 1), for thinning
    share0: np.ndarray  # seats in use / purchased when healthy
    lifetime: np.ndarray | None = None  # days from since to the churn decision
    churn_day: np.ndarray | None = None  # first day without service

    def subset(self, mask: np.ndarray) -> Pool:
        return Pool(**{k: (None if v is None else v[mask]) for k, v in self.__dict__.items()})


def draw_pool(spec: BookSpec, size: int, rng: np.random.Generator) -> Pool:
    """Draw `size` arrivals over the history with their behaviours, size, plan and onboarding pace."""
    k = math.log(1 + ARRIVAL_GROWTH) / 365.0
    lo, hi = math.exp(-k * HISTORY_DAYS), math.exp(k * spec.days)
    since = np.floor(np.log(lo + rng.random(size) * (hi - lo)) / k).astype(np.int64)
    since = np.clip(since, -HISTORY_DAYS, spec.days - 1)

    z = rng.standard_normal((size, len(LATENTS))) @ np.linalg.cholesky(LATENT_CORR).T
    lat = _logistic(1.7 * z)  # ~ Phi(z): roughly uniform on [0, 1], correlated
    onboarding, adoption, complexity, growth = (lat[:, i] for i in range(len(LATENTS)))

    size_class = np.searchsorted(np.cumsum(SIZE_SHARES), rng.random(size)).astype(np.int8)
    seats = np.where(
        size_class == 0,
        1 + np.round(rng.lognormal(math.log(4.5), 0.7, size)),
        np.where(
            size_class == 1,
            np.round(rng.lognormal(math.log(65), 0.45, size)),
            np.round(rng.lognormal(math.log(320), 0.55, size)),
        ),
    )
    lo_seats = np.array([1, 20, 120])[size_class]
    hi_seats = np.array([40, 300, 5000])[size_class]
    seats0 = np.clip(seats, lo_seats, hi_seats).astype(np.int64)

    u = rng.random(size)
    upgrade = 0.25 * (adoption - 0.5)  # teams that use more of the product tend to buy a bigger plan
    small_plan = (u >= 0.65 - upgrade).astype(np.int64)
    medium_plan = np.where(u < 0.05, 3, np.where(u < 0.40 - upgrade, 1, 2))
    large_plan = np.where(u < 0.45 - upgrade, 2, 3)
    plan0 = np.select([size_class == 0, size_class == 1], [small_plan, medium_plan], large_plan)
    plan0 = np.where((size_class == 0) & (seats0 > 15), np.maximum(plan0, 1), plan0).astype(np.int8)

    annual = rng.random(size) < np.array([0.2, 0.7, 0.95])[size_class]
    discount = np.where(annual, 0.85, 1.0) * np.array([1.0, 0.93, 0.78])[size_class]
    discount = discount * rng.uniform(0.92, 1.0, size)

    size_slow = 1.0 + 0.35 * size_class
    ttfv_median = (5.0 + 75.0 * (1.0 - onboarding) ** 2.2) * size_slow * (0.8 + 0.4 * complexity)
    ttfv = ttfv_median * rng.lognormal(0.0, 0.45, size)
    ttfv = np.where(ttfv > 120.0, np.inf, ttfv)
    setup_days = (0.5 + (1.5 + 22.0 * (1.0 - onboarding) ** 2) * rng.lognormal(0.0, 0.5, size)) * size_slow
    setup_days = np.where(np.isfinite(ttfv), np.minimum(setup_days, 0.7 * ttfv), setup_days)
    team_days = (2.0 + 30.0 * (1.0 - onboarding) ** 2) * rng.lognormal(0.0, 0.5, size)
    team_days = np.where((seats0 >= 3) & (rng.random(size) < 0.35 + 0.65 * adoption), team_days, np.inf)

    ttfv_eff = np.minimum(ttfv, 120.0)
    o = np.exp(-1.2 + ttfv_eff / 28.0 + 0.8 * (complexity - 0.5))
    r = np.exp(
        1.8 * (0.5 - adoption)
        + 1.2 * (complexity - 0.5)
        + 0.6 * (0.5 - onboarding)
        + 0.3 * (0.5 - growth)
        - 0.35 * np.log(seats0 / 6.0)
        + 0.25 * rng.standard_normal(size)
    )
    share0 = np.clip(0.25 + 0.55 * adoption + 0.2 * growth + rng.normal(0.0, 0.1, size), 0.05, 1.0)
    return Pool(
        since=since,
        onboarding=onboarding,
        adoption=adoption,
        complexity=complexity,
        growth=growth,
        size_class=size_class,
        seats0=seats0,
        plan0=plan0,
        annual=annual,
        discount=discount,
        ttfv=ttfv,
        setup_days=setup_days,
        team_days=team_days,
        r=r,
        o=o,
        tolerance=rng.exponential(1.0, size),
        thin=rng.random(size),
        share0=share0,
    )


def lifetimes(pool: Pool, scale: float) -> np.ndarray:
    """Tenure (days) at which the cumulative hazard reaches each account's tolerance.

    Solves r t + o b (1 - exp(-t / b)) = tolerance / scale by Newton's method from t = 0; the left side is
    increasing and concave, so the iterates rise monotonically to the root.
    """
    y = pool.tolerance / scale
    t = np.zeros_like(y)
    for _ in range(40):
        ex = np.exp(-t / EARLY_DAYS)
        f = pool.r * t + pool.o * EARLY_DAYS * (1.0 - ex) - y
        t = np.minimum(t - f / (pool.r + pool.o * ex), MAX_LIFETIME_DAYS)
    return t


def churn_days(pool: Pool, lifetime: np.ndarray) -> np.ndarray:
    """First day without service: the end of the billing period (month or year) in which the decision falls."""
    cycle = np.where(pool.annual, 365.25, MONTH_DAYS)
    periods = np.maximum(1.0, np.ceil(lifetime / cycle))
    return pool.since + np.round(periods * cycle).astype(np.int64)


def calibrate(pool: Pool, spec: BookSpec) -> float:
    """Hazard scale at which the pool's measured monthly churn equals the spec (bisection on log scale)."""
    bounds = month_bounds(spec)
    lo, hi = math.log(1e-6), math.log(1.0)
    for _ in range(32):
        mid = 0.5 * (lo + hi)
        rate = churn_rates(pool.since, churn_days(pool, lifetimes(pool, math.exp(mid))), bounds).mean()
        if rate < spec.monthly_churn:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def simulate_pool(spec: BookSpec) -> tuple[Pool, float]:
    """Draw, calibrate and thin the arrivals down to the book: exactly `active_accounts` active at as_of.

    Returns the book's accounts (those active on some day of the window), sorted by customer_since, and the
    calibrated hazard scale.
    """
    size = spec.active_accounts * 7
    for attempt in range(8):
        pool = draw_pool(spec, size, stage_rng(spec.seed, 1, attempt))
        scale = calibrate(pool, spec)
        pool.lifetime = lifetimes(pool, scale)
        pool.churn_day = churn_days(pool, pool.lifetime)
        active_end = (pool.since < spec.days) & (pool.churn_day > spec.days)
        n_active = int(active_end.sum())
        if n_active >= spec.active_accounts * 1.1:
            break
        size = int(size * 1.3 * spec.active_accounts / max(n_active, 1)) + 100
    else:  # pragma: no cover - the pool grows geometrically, so this needs an absurd spec
        raise RuntimeError("could not draw enough accounts")
    cut = np.sort(pool.thin[active_end])[spec.active_accounts - 1]
    in_book = (pool.thin <= cut) & (pool.since < spec.days) & (pool.churn_day > 0)
    book = pool.subset(in_book)
    order = np.lexsort((book.thin, book.since))
    return book.subset(order), scale
