"""A simulated subscription product, written as the three files a SaaS company exports: an event log (account,
timestamp, event type id, user), an event-type table and subscription terms (plan, MRR, seats, billing period,
discount, start, end; add-ons as their own terms).

Modelled on fightchurn's ChurnSim `socialnet7` (the same eight behaviours with the same utilities: post 1,
newfriend 6, like 0.5, adview -1.5, dislike -1, unfriend -10, message 1, reply 1), with what socialnet7 lacks:
plans with seats, annual terms, discounts and an add-on, so upsell and downsell happen, and it needs neither
PostgreSQL nor a second environment (ChurnSim itself runs through `python -m bench.fightchurn_data`, in its own
environment, at about 0.05 s CPU per customer-month; docs/history.md compares the two).

Each customer has a behaviour rate per event type per user and day that drifts month to month; at every term end
the customer renews, churns (more likely the lower its recent utility per user), upgrades or downgrades its plan
(more likely the higher / lower that utility), and may add or drop an add-on. Seeded: the same seed and sizes give
the same files, byte for byte.

    python -m bench.saas_sim OUT_DIR [--accounts 10000] [--months 7] [--seed 7]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

EVENT_TYPES = ("post", "newfriend", "like", "adview", "dislike", "unfriend", "message", "reply")
UTILITY = np.array([1.0, 6.0, 0.5, -1.5, -1.0, -10.0, 1.0, 1.0])
MEAN_RATE = np.array([0.25, 0.02, 0.9, 0.6, 0.08, 0.006, 0.3, 0.25])  # events per user per day
PLANS = (("basic", 9.99, 1), ("team", 29.99, 5), ("business", 99.99, 20))
ADDON = ("addon_storage", 4.99)
START = pd.Timestamp("2020-01-01")
TERM_DAYS = 30
# The import mapping of the generated files (written next to them as bench.yaml by the bench scripts).
MAPPING = """kind: import
name: bench
tables:
  events: {path: events.csv}
  event_types: {path: event_types.csv}
  subscriptions: {path: subscriptions.csv}
history:
  events:
    table: events
    account: account_id
    time: event_time
    type: event_type_id
    user: user_id
    type_names: {table: event_types, id: event_type_id, name: event_type_name}
    types: {post: feature_used, newfriend: feature_used, like: feature_used, message: feature_used,
            reply: feature_used, adview: feature_used, dislike: feature_used, unfriend: feature_used}
  subscriptions:
    table: subscriptions
    account: account_id
    id: subscription_id
    plan: product
    mrr: mrr
    seats: quantity
    billing_period: bill_period_months
    discount: discount
    start: start_date
    end: end_date
    addon: {from: product, values: [addon_storage]}
"""


def simulate(accounts: int = 10_000, months: int = 7, seed: int = 7) -> dict[str, pd.DataFrame]:
    """The three tables (events, event_types, subscriptions) of a simulated product."""
    rng = np.random.default_rng(seed)
    n_types = len(EVENT_TYPES)
    joined = rng.integers(0, TERM_DAYS * (months - 3), accounts)  # join over the first months
    plan = rng.choice(len(PLANS), accounts, p=[0.6, 0.3, 0.1])
    users = np.maximum(1, np.round(np.array([p[2] for p in PLANS])[plan] * rng.uniform(0.3, 1.0, accounts)))
    taste = rng.lognormal(0.0, 0.6, (accounts, n_types))
    annual = rng.random(accounts) < 0.15
    discount = np.where(rng.random(accounts) < 0.2, rng.choice([0.1, 0.2, 0.3], accounts), 0.0)
    has_addon = rng.random(accounts) < 0.1
    alive = np.ones(accounts, dtype=bool)
    term_start = joined.copy()
    term_end = joined + np.where(annual, 365, TERM_DAYS)
    events, terms = [], []
    horizon = TERM_DAYS * months
    term_id = 0
    for day0 in range(0, horizon, TERM_DAYS):
        drift = rng.lognormal(0.0, 0.25, (accounts, n_types))
        taste = taste * drift
        days = np.arange(day0, min(day0 + TERM_DAYS, horizon))
        for day in days:
            live = np.flatnonzero(alive & (joined <= day))
            lam = taste[live] * MEAN_RATE * users[live, None]
            counts = rng.poisson(lam)
            acct, kind = np.nonzero(counts)
            n = counts[acct, kind]
            idx = np.repeat(live[acct], n)
            events.append(
                (idx, np.full(len(idx), day, dtype=np.int32), np.repeat(kind, n).astype(np.int8),
                 (rng.random(len(idx)) * users[idx]).astype(np.int32), rng.integers(0, 86_400, len(idx)))
            )  # fmt: skip
            # terms ending today: renew, change plan, or churn
            ending = np.flatnonzero(alive & (term_end == day))
            if not len(ending):
                continue
            utility = (taste[ending] * MEAN_RATE * UTILITY).sum(axis=1)
            p_churn = 1.0 / (1.0 + np.exp(4.0 * (utility - 0.3)))
            churn = rng.random(len(ending)) < 0.6 * p_churn
            up = ~churn & (rng.random(len(ending)) < 0.12 / (1.0 + np.exp(-3.0 * (utility - 1.5))))
            down = ~churn & ~up & (rng.random(len(ending)) < 0.25 * p_churn)
            for account, c in zip(ending, churn, strict=True):
                terms.append(_term(term_id, account, plan[account], term_start[account], day, annual[account],
                                   discount[account]))  # fmt: skip
                term_id += 1
                if has_addon[account]:
                    terms.append((term_id, account, ADDON[0], ADDON[1], 1, 1, 0.0, term_start[account], day))
                    term_id += 1
                if c:
                    alive[account] = False
            plan[ending[up]] = np.minimum(plan[ending[up]] + 1, len(PLANS) - 1)
            plan[ending[down]] = np.maximum(plan[ending[down]] - 1, 0)
            users[ending[up]] = np.ceil(users[ending[up]] * 1.5)
            has_addon[ending] ^= rng.random(len(ending)) < 0.05
            term_start[ending] = day
            term_end[ending] = day + np.where(annual[ending], 365, TERM_DAYS)
    open_accounts = np.flatnonzero(alive)
    for account in open_accounts:  # terms in force at the end of the data: their scheduled end
        terms.append(_term(term_id, account, plan[account], term_start[account], term_end[account], annual[account],
                           discount[account]))  # fmt: skip
        term_id += 1
        if has_addon[account]:
            terms.append((term_id, account, ADDON[0], ADDON[1], 1, 1, 0.0, term_start[account], term_end[account]))
            term_id += 1
    return {"events": _events_frame(events), "event_types": _types_frame(), "subscriptions": _terms_frame(terms)}


def _term(term_id, account, plan, start, end, annual, discount) -> tuple:
    name, mrr, seats = PLANS[plan]
    return (term_id, account, name, round(mrr * seats * (1 - discount), 2), seats, 12 if annual else 1, discount,
            start, end)  # fmt: skip


def _events_frame(parts: list) -> pd.DataFrame:
    idx, day, kind, user, second = (np.concatenate([p[i] for p in parts]) for i in range(5))
    times = START + pd.to_timedelta(day.astype("int64") * 86_400 + second, unit="s")
    frame = pd.DataFrame({"account_id": idx, "event_time": times, "event_type_id": kind.astype(np.int16) + 1,
                          "user_id": idx.astype(np.int64) * 1000 + user})  # fmt: skip
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def _types_frame() -> pd.DataFrame:
    return pd.DataFrame({"event_type_id": range(1, len(EVENT_TYPES) + 1), "event_type_name": EVENT_TYPES})


def _terms_frame(terms: list) -> pd.DataFrame:
    frame = pd.DataFrame(terms, columns=["subscription_id", "account_id", "product", "mrr", "quantity",
                                         "bill_period_months", "discount", "start_day", "end_day"])  # fmt: skip
    frame["start_date"] = (START + pd.to_timedelta(frame.pop("start_day"), unit="D")).dt.date
    frame["end_date"] = (START + pd.to_timedelta(frame.pop("end_day"), unit="D")).dt.date
    return frame.sort_values("subscription_id").reset_index(drop=True)


def write(out: Path, tables: dict[str, pd.DataFrame]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    tables = simulate(args.accounts, args.months, args.seed)
    write(args.out, tables)
    print({name: len(frame) for name, frame in tables.items()})


if __name__ == "__main__":
    main()
