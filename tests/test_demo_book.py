"""The demo book: reproducible, consistent, and with churn and expansion caused by the hidden behaviours.

The churn model trains on this data first, so these tests check the signal (not just the shape): accounts with
better adoption log in more and churn less, complexity brings tickets, disengagement precedes churn.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from app.demo import (
    CORE_FEATURES,
    FEATURES,
    MILESTONES,
    PLANS,
    Book,
    BookSpec,
    generate_book,
    monthly_churn_rates,
)
from app.demo.book import ACCOUNT_COLUMNS, CONTACT_COLUMNS, EVENT_COLUMNS
from engine.canonical import EventKind, Segment

SMALL = BookSpec(seed=11, active_accounts=300)


@pytest.fixture(scope="module")
def small() -> Book:
    return generate_book(SMALL)


@pytest.fixture(scope="module")
def default() -> Book:
    return generate_book()


def _quartile_means(values: pd.Series, by: pd.Series) -> pd.Series:
    return values.groupby(pd.qcut(by, 4, labels=False)).mean()


def test_spec_defaults_describe_the_reference_case() -> None:
    spec = BookSpec()
    assert (spec.seed, spec.active_accounts, spec.days, spec.as_of) == (7, 2500, 365, date(2026, 11, 1))
    assert (spec.avg_arr, spec.monthly_churn, spec.csms) == (2400.0, 0.08, 5)
    with pytest.raises(ValueError):
        BookSpec(days=10)


def test_catalogue_constants() -> None:
    assert CORE_FEATURES == ("tasks", "projects", "boards", "reports", "automations", "dashboards")
    assert FEATURES[:6] == CORE_FEATURES
    assert set(FEATURES[6:]) == {
        "gantt", "time_tracking", "docs", "goals", "workload", "portfolios", "integrations", "custom_fields", "api",
    }  # fmt: skip


def test_same_seed_same_frames_and_different_seed_differs(small: Book) -> None:
    again = generate_book(SMALL)
    pd.testing.assert_frame_equal(small.accounts, again.accounts)
    pd.testing.assert_frame_equal(small.contacts, again.contacts)
    pd.testing.assert_frame_equal(small.events, again.events)
    other = generate_book(replace(SMALL, seed=12))
    assert not other.accounts["name"].equals(small.accounts["name"])
    assert len(other.events) != len(small.events)


def test_column_contract(small: Book) -> None:
    a, c, e = small.accounts, small.contacts, small.events
    assert set(ACCOUNT_COLUMNS) | {"crm"} <= set(a.columns)
    assert {"latent_onboarding", "latent_adoption", "latent_complexity", "latent_growth"} <= set(a.columns)
    assert list(c.columns) == list(CONTACT_COLUMNS)
    assert list(e.columns) == list(EVENT_COLUMNS)

    assert set(a["segment"]) <= {s.value for s in Segment}
    assert set(a["plan"]) <= set(PLANS)
    assert set(a["status"]) == {"active", "churned"}
    assert set(a["crm"]) == {"salesforce", "hubspot"}
    assert set(a["lifecycle_stage"]) <= {"onboarding", "adopted", "at_risk", "churned"}
    assert a["owner"].nunique() == SMALL.csms
    for column in ("customer_since", "renewal_date", "churned_at"):
        assert pd.api.types.is_datetime64_any_dtype(a[column])
    assert a["key"].str.fullmatch(r"A\d{6}").all()
    assert a["roi_pct"].isna().any() and a["roi_pct"].notna().any()
    assert a["goal_attainment"].dropna().between(0, 1).all() and a["goal_attainment"].isna().any()
    assert (a["api_used"] >= 0).all() and (a["storage_used_gb"] <= a["storage_limit_gb"]).all()

    assert set(c["role"]) <= {"admin", "manager", "member", "executive"}
    assert c["is_champion"].dtype == bool and c["is_exec_sponsor"].dtype == bool
    per_account = c.groupby("account_key").size()
    assert per_account.between(1, 40).all() and len(per_account) == len(a)

    assert pd.api.types.is_datetime64_any_dtype(e["occurred_at"])
    assert set(e["kind"]) == {k.value for k in EventKind}
    assert (e["count"] >= 1).all()
    assert set(e.loc[e["kind"] == "feature_used", "feature"]) == set(FEATURES)
    assert set(e.loc[e["kind"] == "milestone", "feature"]) == set(MILESTONES)
    assert set(e.loc[e["kind"] == "plan_change", "feature"]) <= set(PLANS)
    assert e.loc[e["kind"].isin(["login", "ticket_opened", "seat_change"]), "feature"].isna().all()
    assert e.loc[e["kind"] == "login", "value"].gt(0).all()
    assert e.loc[e["kind"] == "survey_response", "value"].between(0, 10).all()
    product = e["kind"].isin(["login", "feature_used", "api_call", "survey_response", "milestone", "self_service"])
    assert (e.loc[product, "source"] == "intercom").all()
    crm_kinds = ["ticket_opened", "ticket_closed", "meeting", "seat_change", "plan_change", "outreach"]
    crm_rows = e[e["kind"].isin(crm_kinds)].join(a.set_index("key")["crm"], on="account_key")
    assert (crm_rows["source"] == crm_rows["crm"]).all()
    assert e.loc[e["kind"] == "api_call", "contact_email"].isna().all()
    assert e["contact_email"].dropna().isin(set(c["email"])).all()


def test_uniqueness(small: Book) -> None:
    a, c, e = small.accounts, small.contacts, small.events
    for column in ("key", "name", "domain"):
        assert a[column].is_unique, column
    assert c["email"].is_unique
    assert not e.duplicated(["source", "external_id"]).any()
    emails = c.join(a.set_index("key")["domain"], on="account_key")
    assert (emails["email"].str.split("@").str[1] == emails["domain"]).all()


def test_seats_are_consistent_with_seat_changes(small: Book) -> None:
    a = small.accounts.set_index("key")
    changes = small.events[small.events["kind"] == "seat_change"].groupby("account_key")["value"].sum()
    expected = a["seats_initial"] + changes.reindex(a.index).fillna(0)
    assert (expected == a["seats_purchased"]).all()
    assert (a["seats_purchased"] >= 1).all()
    assert (a["seats_active"] <= a["seats_purchased"]).all()
    assert (a.loc[a["status"] == "active", "seats_active"] >= 1).all()


def test_activity_only_while_a_customer_and_inside_the_window(small: Book) -> None:
    a = small.accounts.set_index("key")
    e = small.events.join(a[["customer_since", "churned_at"]], on="account_key")
    assert e["occurred_at"].min() >= small.window_start
    assert e["occurred_at"].max() < pd.Timestamp(SMALL.as_of)
    assert (e["occurred_at"] >= e["customer_since"]).all()
    churned = e["churned_at"].notna()
    assert (e.loc[churned, "occurred_at"] < e.loc[churned, "churned_at"]).all()


def test_exactly_the_active_accounts_at_as_of(small: Book, default: Book) -> None:
    for book in (small, default):
        a = book.accounts
        active = a["status"] == "active"
        assert active.sum() == book.spec.active_accounts
        assert a.loc[active, "churned_at"].isna().all()
        assert a.loc[~active, "churned_at"].notna().all()
        assert (a.loc[active, "renewal_date"] > pd.Timestamp(book.spec.as_of)).all()
        assert (a.loc[~active, "churned_at"] <= pd.Timestamp(book.spec.as_of)).all()
        assert (a.loc[~active, "churned_at"] > book.window_start).all()
        tenure = (pd.Timestamp(book.spec.as_of) - a["customer_since"]).dt.days
        assert (a.loc[active & (tenure < 90), "lifecycle_stage"] == "onboarding").all()
        assert (a.loc[~active, "lifecycle_stage"] == "churned").all()
    # Roughly 2,500 active + 8 % of them churned in each month of the window: new accounts replace the churned ones.
    expected = default.spec.active_accounts * default.spec.monthly_churn * default.spec.days / 30.44
    assert 0.7 * expected <= (default.accounts["status"] == "churned").sum() <= 1.25 * expected
    joined = default.accounts["customer_since"] >= default.window_start
    assert 0.65 * expected <= joined.sum() <= 1.35 * expected


def test_monthly_churn_matches_the_spec(default: Book) -> None:
    rates = monthly_churn_rates(default)
    assert len(rates) == 12  # November 2025 to October 2026 lie wholly inside the window
    assert abs(rates.mean() - 0.08) < 0.015
    assert rates.between(0.05, 0.11).all()


def test_monthly_churn_follows_a_different_spec() -> None:
    book = generate_book(BookSpec(seed=3, active_accounts=400, monthly_churn=0.04))
    assert abs(monthly_churn_rates(book).mean() - 0.04) < 0.015


def test_arr_average_and_segments(default: Book) -> None:
    a = default.accounts
    active = a[a["status"] == "active"]
    assert abs(active["arr"].mean() - 2400) < 24
    counts = active["segment"].value_counts()
    assert counts["smb"] > 0.85 * len(active)
    assert counts["mid_market"] >= 25 and counts["enterprise"] >= 5
    bands = {"smb": (0, 10_000), "mid_market": (10_000, 50_000), "enterprise": (50_000, np.inf)}
    for segment, (lo, hi) in bands.items():
        assert a.loc[a["segment"] == segment, "arr"].between(lo, hi).all()
    assert a.groupby("owner")["arr"].sum().pipe(lambda s: s.max() / s.min()) < 1.5


def test_adoption_drives_logins_and_retention(default: Book) -> None:
    a = default.accounts.set_index("key")
    logins = default.events[default.events["kind"] == "login"]
    recent = logins[logins["occurred_at"] >= pd.Timestamp(default.spec.as_of) - pd.Timedelta(days=28)]
    active_days = recent.groupby("account_key")["occurred_at"].apply(lambda s: s.dt.normalize().nunique()) / 4
    active = a[a["status"] == "active"].copy()
    active["days_per_week"] = active_days.reindex(active.index).fillna(0)
    by_quartile = _quartile_means(active["days_per_week"], active["latent_adoption"])
    assert by_quartile[3] > 1.8 * by_quartile[0]
    churned = (a["status"] == "churned").astype(float)
    churn_by_adoption = _quartile_means(churned, a["latent_adoption"])
    assert churn_by_adoption[0] > 2 * churn_by_adoption[3]
    churn_by_onboarding = _quartile_means(churned, a["latent_onboarding"])
    assert churn_by_onboarding[0] > 1.5 * churn_by_onboarding[3]
    churn_by_complexity = _quartile_means(churned, a["latent_complexity"])
    assert churn_by_complexity[3] > 1.5 * churn_by_complexity[0]


def test_complexity_brings_tickets_and_short_sessions(default: Book) -> None:
    a = default.accounts.set_index("key")
    e = default.events
    tickets = e[e["kind"] == "ticket_opened"].groupby("account_key")["count"].sum().reindex(a.index).fillna(0)
    per_seat = tickets / a["seats_initial"]
    assert _quartile_means(per_seat, a["latent_complexity"]).pipe(lambda q: q[3] > 2 * q[0])
    logins = e[e["kind"] == "login"].groupby("account_key")[["count", "value"]].sum()
    minutes = (logins["value"] / logins["count"]).reindex(a.index)
    assert _quartile_means(minutes, a["latent_complexity"]).pipe(lambda q: q[0] > 1.3 * q[3])


def test_usage_decays_and_churn_signals_precede_churn(default: Book) -> None:
    a = default.accounts.set_index("key")
    e = default.events.join(a["churned_at"], on="account_key")
    late = a[a["churned_at"] >= default.window_start + pd.Timedelta(days=75)].index
    logins = e[(e["kind"] == "login") & e["account_key"].isin(late)]
    before = (logins["churned_at"] - logins["occurred_at"]).dt.days
    assert (before < 14).sum() < 0.4 * ((before >= 46) & (before < 60)).sum()

    horizon = a["latent_churn_date"] <= pd.Timestamp(default.spec.as_of) + pd.Timedelta(days=45)
    for kind in ("cancellation_inquiry", "data_export", "competitor_mention"):
        who = e.loc[e["kind"] == kind, "account_key"]
        assert horizon.reindex(who).mean() > 0.6, kind
    lost = a.loc[a["status"] == "churned", "latent_champion_left"].mean()
    assert lost > 0.15 > a.loc[a["status"] == "active", "latent_champion_left"].mean()


def test_expansion_concentrates_in_healthy_full_accounts(default: Book) -> None:
    a = default.accounts.set_index("key")
    e = default.events
    up = e[(e["kind"] == "seat_change") & (e["value"] > 0)]["account_key"].unique()
    expanded = pd.Series(a.index.isin(up), index=a.index, dtype=float)
    by_adoption = _quartile_means(expanded, a["latent_adoption"])
    assert by_adoption[3] > 3 * by_adoption[0]
    active = a["status"] == "active"
    utilisation = a["seats_active"] / a["seats_purchased"]
    assert utilisation[active & (expanded > 0)].mean() > utilisation[active & (expanded == 0)].mean() + 0.1
    upgrades = e[(e["kind"] == "plan_change") & (e["value"] > 0)]["account_key"]
    assert a.loc[upgrades, "latent_growth"].mean() > a["latent_growth"].mean() + 0.1


def test_weekly_rhythm(small: Book) -> None:
    logins = small.events[small.events["kind"] == "login"]
    per_weekday = logins["occurred_at"].dt.day_of_week.value_counts().sort_index()
    assert per_weekday[[5, 6]].mean() < 0.35 * per_weekday[[0, 1, 2, 3]].mean()


def test_onboarding_milestones_match_first_value(small: Book) -> None:
    a = small.accounts.set_index("key")
    first_value = small.events[(small.events["kind"] == "milestone") & (small.events["feature"] == "first_value")]
    at = first_value.set_index("account_key")["occurred_at"].dt.normalize()
    assert at.index.is_unique
    assert (a.loc[at.index, "first_value_at"] == at).all()
    in_window = a["first_value_at"] >= small.window_start
    assert set(a.index[in_window]) == set(at.index)


def test_default_book_size(default: Book) -> None:
    assert 1_000 <= len(default.events) / default.spec.days <= 8_000  # events per day of the window (~6,700)
    assert default.accounts["latent_adoption"].between(0, 1).all()


def test_demo_catalogue_matches_the_default_health_config():
    """The demo product's features are the ones the packaged health config counts for adoption."""
    from app.demo.spec import CORE_FEATURES, FEATURES
    from engine.health_config import load_health_config

    config = load_health_config()
    assert tuple(config.features) == FEATURES
    assert tuple(config.core_features) == CORE_FEATURES
