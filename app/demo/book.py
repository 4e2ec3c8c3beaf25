"""A seeded, reproducible demo book of business: accounts, contacts and six months of activity.

The book is what `cse demo` seeds the CRM sandboxes with and what the churn model first trains on, so churn and
expansion are *caused* by hidden account behaviours (the `latent_*` columns), not drawn at random:

* poor onboarding (slow or no first value) raises the churn hazard in the first months;
* low adoption (few core features, few users) and high complexity (tickets, short sessions, narrow breadth)
  raise it for good;
* weeks before churning an account disengages: logins and session length decay, features are abandoned,
  tickets spike, the champion may leave, replies to the CSM stop, and cancellation inquiries, data exports and
  competitor mentions appear;
* seats are added, plans upgraded, by healthy, growing, high-adoption accounts whose seats are nearly full.

Pipeline (one module each): accounts.py draws arrivals over six years and calibrates churn to the spec, then
thins them so exactly `active_accounts` are active at `as_of`; state.py decides disengagement, champions, seat
and plan moves and ARR; contacts.py the people; activity.py the events. Same seed, same frames.

Columns beyond the loader's contract, kept for the sandboxes and tests: accounts `crm`, `billing`,
`seats_initial`, `first_value_at` (onboarding milestone, also when it predates the window) and the hidden
`latent_*`; see ACCOUNT_EXTRA_COLUMNS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from app.demo.accounts import MONTH_DAYS, month_bounds, simulate_pool, stage_rng
from app.demo.activity import DAY, KINDS, LABELS, SOURCES, Events, simulate_events
from app.demo.contacts import ROLES, Contacts, build_contacts
from app.demo.names import company_names, csm_roster
from app.demo.spec import (
    CRMS,
    PLAN_API_LIMIT,
    PLAN_STORAGE_GB_PER_SEAT,
    PLANS,
    BookSpec,
)
from app.demo.state import BookState, build_state
from engine.canonical import Segment

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "key", "name", "domain", "segment", "plan", "arr", "seats_purchased", "seats_active", "api_limit",
    "api_used", "storage_limit_gb", "storage_used_gb", "customer_since", "renewal_date", "owner",
    "lifecycle_stage", "status", "churned_at", "roi_pct", "goal_attainment",
)  # fmt: skip
ACCOUNT_EXTRA_COLUMNS: dict[str, str] = {
    "crm": "the account's CRM: salesforce or hubspot (source of its tickets, meetings, seat/plan changes)",
    "billing": "monthly or annual; churn takes effect at the end of the paid period",
    "seats_initial": "seats purchased at the window start (or signup); + sum of seat_change = seats_purchased",
    "first_value_at": "date the first_value milestone was reached (NaT: not reached by as_of / churn)",
}
LATENT_COLUMNS: dict[str, str] = {
    "latent_onboarding": "onboarding quality 0-1 (1 = fast first value)",
    "latent_adoption": "product adoption propensity 0-1 (core features, users, logins)",
    "latent_complexity": "how hard the product is for this customer 0-1 (tickets, short sessions, narrow use)",
    "latent_growth": "team growth propensity 0-1 (seat and plan expansion)",
    "latent_hazard": "long-run monthly churn probability implied by the behaviours (no onboarding term)",
    "latent_ttfv_days": "days to first value the account would need (inf: never)",
    "latent_churn_date": "simulated churn date, also when after as_of (for evaluating forecasts)",
    "latent_disengage_date": "date disengagement before churn starts",
    "latent_champion_left": "the champion left during the simulation",
}
CONTACT_COLUMNS: tuple[str, ...] = (
    "account_key", "email", "name", "role", "is_champion", "is_exec_sponsor", "last_seen",
)  # fmt: skip
EVENT_COLUMNS: tuple[str, ...] = (
    "account_key", "contact_email", "occurred_at", "kind", "feature", "count", "value", "source", "external_id",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Book:
    """A generated book of business. Frames use the column names the store loader expects."""

    spec: BookSpec
    accounts: pd.DataFrame
    contacts: pd.DataFrame
    events: pd.DataFrame

    @property
    def window_start(self) -> pd.Timestamp:
        """First instant covered by events (as_of - days)."""
        return pd.Timestamp(self.spec.as_of - timedelta(days=self.spec.days))


def generate_book(spec: BookSpec = BookSpec()) -> Book:  # noqa: B008 - frozen, so a safe default
    """Generate the book for `spec`; the same spec always yields identical frames."""
    pool, hazard_scale = simulate_pool(spec)
    st = build_state(spec, pool)
    names, domains = company_names(st.n, stage_rng(spec.seed, 5))
    ct = build_contacts(spec.seed, st, domains)
    window_start = pd.Timestamp(spec.as_of - timedelta(days=spec.days))
    ev = simulate_events(spec.seed, st, ct, window_start.weekday())
    keys = np.array([f"A{i:06d}" for i in range(1, st.n + 1)], dtype=object)
    accounts = _accounts_frame(spec, st, ct, ev, keys, names, domains, window_start, hazard_scale)
    contacts = _contacts_frame(ct, ev, keys, window_start)
    events = _events_frame(ev, ct, keys, window_start)
    return Book(spec=spec, accounts=accounts, contacts=contacts, events=events)


def monthly_churn_rates(book: Book) -> pd.Series:
    """Share of accounts active on the first day of each calendar month of the window that churned by its end.

    An account is active on day d when customer_since <= d < churned_at; this is the definition the generator
    calibrates to, so on a default book the mean is the spec's monthly churn within sampling noise.
    """
    start = book.window_start
    since = (book.accounts["customer_since"] - start).dt.days.to_numpy()
    churn = (book.accounts["churned_at"] - start).dt.days.to_numpy(dtype=float, na_value=np.inf)
    out = {}
    for lo, hi in month_bounds(book.spec):
        active = (since <= lo) & (churn > lo)
        out[start + pd.Timedelta(days=lo)] = float((active & (churn <= hi)).sum() / max(int(active.sum()), 1))
    return pd.Series(out, name="monthly_churn")


def _day_to_ts(start: pd.Timestamp, day: np.ndarray) -> pd.Series:
    """Day offsets (float, inf/nan = missing) to midnight timestamps."""
    day = np.asarray(day, dtype=float)
    finite = np.isfinite(day) & (np.abs(day) < 1e6)
    out = np.full(len(day), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[finite] = np.datetime64(start, "ns") + np.floor(day[finite]).astype("timedelta64[D]")
    return pd.Series(out)


def _accounts_frame(
    spec: BookSpec,
    st: BookState,
    ct: Contacts,
    ev: Events,
    keys: np.ndarray,
    names: list[str],
    domains: list[str],
    start: pd.Timestamp,
    hazard_scale: float,
) -> pd.DataFrame:
    """One row per book account: the loader's columns, the extra ones, and the latents."""
    rng = stage_rng(spec.seed, 6)
    pool = st.pool
    n, days = st.n, st.days
    assert pool.churn_day is not None
    churned = st.churned

    # Seats in use fade with disengagement (zero once gone); active accounts keep at least one user.
    share_end = pool.share0 * st.decay(st.end - 1.0) ** 0.7
    seats_active = np.clip(np.round(st.seats_final * share_end), np.where(churned, 0, 1), st.seats_final)

    api = ev.kind == KINDS.index("api_call")
    recent = api & (ev.t >= (st.end[ev.acct] - 30).astype(np.int64) * DAY)
    api_used = np.bincount(ev.acct[recent], weights=ev.count[recent], minlength=n).astype(np.int64)

    storage_limit = st.seats_final * np.asarray(PLAN_STORAGE_GB_PER_SEAT)[st.plan_final]
    tenure_end = st.end - pool.since
    fill = 0.05 + 0.6 * pool.adoption * np.sqrt(np.minimum(1.0, tenure_end / 365.0)) + 0.2 * pool.growth
    storage_used = np.round(storage_limit * np.clip(fill + rng.normal(0, 0.08, n), 0.01, 0.98), 2)

    cycle = np.where(pool.annual, 365.25, MONTH_DAYS)
    periods = np.floor((days - pool.since) / cycle) + 1
    renewal = pool.since + np.round(periods * cycle)
    renewal = np.where(renewal <= days, pool.since + np.round((periods + 1) * cycle), renewal)
    renewal = np.where(churned, pool.churn_day, renewal)

    decaying_now = ~churned & (st.onset <= days)
    at_risk = (decaying_now & (rng.random(n) < 0.6)) | ((pool.adoption < 0.2) & (rng.random(n) < 0.4))
    lifecycle = np.where(
        churned, "churned", np.where(days - pool.since < 90, "onboarding", np.where(at_risk, "at_risk", "adopted"))
    )

    value_index = 0.5 * pool.adoption + 0.3 * pool.onboarding + 0.2 * (1.0 - pool.complexity)
    value_index = value_index * (1.0 - 0.5 * st.progress(st.end - 1.0))
    roi = np.round(np.maximum(-50.0, 30.0 + 420.0 * value_index + rng.normal(0, 60, n)), 1)
    roi = np.where(rng.random(n) < np.array([0.45, 0.25, 0.1])[st.segment], np.nan, roi)
    goal = np.round(np.clip(0.1 + 0.85 * value_index + rng.normal(0, 0.12, n), 0, 1), 3)
    goal = np.where(rng.random(n) < np.array([0.5, 0.2, 0.05])[st.segment], np.nan, goal)

    reached = pool.since + pool.ttfv
    first_value = np.where(reached < st.end, reached, np.nan)
    roster = csm_roster(spec.csms)
    segments = np.asarray([s.value for s in Segment], dtype=object)
    frame = pd.DataFrame(
        {
            "key": keys,
            "name": names,
            "domain": domains,
            "segment": segments[st.segment],
            "plan": np.asarray(PLANS, dtype=object)[st.plan_final],
            "arr": st.arr.astype(float),
            "seats_purchased": st.seats_final.astype(np.int64),
            "seats_active": seats_active.astype(np.int64),
            "api_limit": np.asarray(PLAN_API_LIMIT, dtype=np.int64)[st.plan_final],
            "api_used": api_used,
            "storage_limit_gb": storage_limit.astype(float),
            "storage_used_gb": storage_used.astype(float),
            "customer_since": _day_to_ts(start, pool.since),
            "renewal_date": _day_to_ts(start, renewal),
            "owner": np.asarray([email for _, email in roster], dtype=object)[st.owner],
            "lifecycle_stage": lifecycle.astype(object),
            "status": np.where(churned, "churned", "active").astype(object),
            "churned_at": _day_to_ts(start, np.where(churned, pool.churn_day, np.nan)),
            "roi_pct": roi,
            "goal_attainment": goal,
            "crm": np.asarray(CRMS, dtype=object)[st.crm],
            "billing": np.where(pool.annual, "annual", "monthly").astype(object),
            "seats_initial": pool.seats0.astype(np.int64),
            "first_value_at": _day_to_ts(start, first_value),
            "latent_onboarding": pool.onboarding,
            "latent_adoption": pool.adoption,
            "latent_complexity": pool.complexity,
            "latent_growth": pool.growth,
            "latent_hazard": 1.0 - np.exp(-hazard_scale * pool.r * MONTH_DAYS),
            "latent_ttfv_days": pool.ttfv,
            "latent_churn_date": _day_to_ts(start, pool.churn_day.astype(float)),
            "latent_disengage_date": _day_to_ts(start, st.onset),
            "latent_champion_left": np.isfinite(st.champion_leave) & st.champion0,
        }
    )
    return frame


def _contacts_frame(ct: Contacts, ev: Events, keys: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    """One row per contact; last_seen is the contact's last login in the window (NaT: none)."""
    login = (ev.kind == KINDS.index("login")) & (ev.contact >= 0)
    last = np.full(len(ct.acct), -1, dtype=np.int64)
    np.maximum.at(last, ev.contact[login], ev.t[login])
    seen = np.full(len(last), np.datetime64("NaT"), dtype="datetime64[ns]")
    seen[last >= 0] = np.datetime64(start, "ns") + last[last >= 0].astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "account_key": keys[ct.acct],
            "email": ct.email,
            "name": ct.name,
            "role": np.asarray(ROLES, dtype=object)[ct.role],
            "is_champion": ct.is_champion.astype(bool),
            "is_exec_sponsor": ct.is_exec_sponsor.astype(bool),
            "last_seen": seen,
        }
    )


def _events_frame(ev: Events, ct: Contacts, keys: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    """Events sorted by time, with external ids numbered per source in that order (stable across runs)."""
    order = np.lexsort((ev.label, ev.contact, ev.kind, ev.acct, ev.t))
    ev = Events(**{k: v[order] for k, v in ev.__dict__.items()})
    m = len(ev.t)
    external = np.empty(m, dtype=object)
    formats = {"intercom": "ic_{}", "salesforce": "00T5g{:013d}", "hubspot": "hs_{}"}
    for code, source in enumerate(SOURCES):
        rows = np.flatnonzero(ev.source == code)
        fmt = formats[source].format
        external[rows] = [fmt(i) for i in range(1, len(rows) + 1)]
    emails = np.append(ct.email, None)
    labels = np.append(np.asarray(LABELS, dtype=object), None)
    return pd.DataFrame(
        {
            "account_key": keys[ev.acct],
            "contact_email": emails[ev.contact],
            "occurred_at": np.datetime64(start, "ns") + ev.t.astype("timedelta64[s]"),
            "kind": np.asarray([k.value for k in KINDS], dtype=object)[ev.kind],
            "feature": labels[ev.label],
            "count": ev.count.astype(np.int64),
            "value": ev.value.astype(np.float64),
            "source": np.asarray(SOURCES, dtype=object)[ev.source],
            "external_id": external,
        }
    )
