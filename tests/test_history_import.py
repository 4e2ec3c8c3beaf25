"""History imports into the store: event types mapped in one pass, terms as the source of churn and expansion
labels, add-ons told from base plans, the as-of cut, idempotent and resumable re-imports, and leakage guards."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import app.history.usage as history_usage
from app.history.panel import history_panel, load_terms, load_type_counts
from app.ml.import_mapping import ImportMappingError, load_mapping
from app.ml.import_tables import build_dataset
from app.ml.importer import import_file
from app.ml.train import train_tabular
from app.store import bulk
from app.store.models import Account, AccountDay, SubscriptionTerm, UsageDay
from engine.health_config import load_health_config
from engine.learning.leakage import LeakageError, leaking_features, suspicious_score
from engine.learning.models import FeatureSpec
from engine.subscriptions import churn_dates, mrr_changes, plan_state, seat_changes

SAMPLE = Path(__file__).parent / "fixtures" / "history"


@pytest.fixture
def sample(tmp_path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    return folder / "saas.yaml"


def _counts(store) -> dict[str, object]:
    with store.connect() as conn:
        return {
            "usage_rows": conn.execute(select(func.count()).select_from(UsageDay)).scalar(),
            "event_total": conn.execute(select(func.sum(UsageDay.feature_uses))).scalar(),
            "logins": conn.execute(select(func.sum(AccountDay.logins))).scalar(),
            "types": sorted(conn.execute(select(UsageDay.types)).scalars()),
            "terms": conn.execute(select(func.count()).select_from(SubscriptionTerm)).scalar(),
            "days": conn.execute(select(func.count()).select_from(AccountDay)).scalar(),
            "feature_uses": conn.execute(select(func.sum(AccountDay.feature_uses))).scalar(),
            "accounts": conn.execute(select(func.count()).select_from(Account)).scalar(),
        }


# ---- terms: pure derivations ---------------------------------------------------------------------------------------


def _terms(rows: list[tuple]) -> pd.DataFrame:
    columns = ["account_id", "term_key", "plan", "is_addon", "mrr", "seats", "billing_period", "discount",
               "start_date", "end_date"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).assign(
        start_date=lambda f: pd.to_datetime(f["start_date"]), end_date=lambda f: pd.to_datetime(f["end_date"])
    )


TERMS = _terms([
    # 1: two base months, then gone (churned 2024-03-01); its add-on ended earlier and is no churn
    (1, "a", "team", False, 30.0, 5, "1", 0.0, "2024-01-01", "2024-02-01"),
    (1, "b", "team", False, 30.0, 5, "1", 0.0, "2024-02-01", "2024-03-01"),
    (1, "c", "addon", True, 5.0, 1, "1", 0.0, "2024-01-01", "2024-01-15"),
    # 2: base continues; an add-on added (upsell by MRR, not seats), then a downgrade with fewer seats
    (2, "d", "team", False, 30.0, 5, "1", 0.0, "2024-01-01", "2024-02-01"),
    (2, "e", "team", False, 30.0, 5, "1", 0.0, "2024-02-01", "2024-03-01"),
    (2, "f", "addon", True, 5.0, 100, "1", 0.0, "2024-02-10", None),
    (2, "g", "basic", False, 10.0, 1, "1", 0.1, "2024-03-01", "2024-04-01"),
    # 3: annual, open at the end of the data
    (3, "h", "business", False, 100.0, 20, "12", 0.2, "2024-01-15", "2025-01-15"),
])  # fmt: skip


def test_churn_comes_from_the_terms_and_an_ended_add_on_is_not_churn() -> None:
    out = churn_dates(TERMS, pd.Timestamp("2024-04-15"))
    assert out["churned_at"].to_dict() == {1: pd.Timestamp("2024-03-01"), 2: pd.Timestamp("2024-04-01"), 3: pd.NaT}
    assert out.loc[1, "customer_since"] == pd.Timestamp("2024-01-01")
    # the last term of account 2 has not ended long enough ago to know there is no successor
    assert pd.isna(churn_dates(TERMS, pd.Timestamp("2024-04-10"), grace_days=14).loc[2, "churned_at"])


def test_upsell_and_downsell_come_from_mrr_and_base_seat_changes() -> None:
    mrr = mrr_changes(TERMS)
    assert mrr.to_dict("records") == [
        {"account_id": 1, "day": pd.Timestamp("2024-01-15"), "delta": -5.0},
        {"account_id": 2, "day": pd.Timestamp("2024-02-10"), "delta": 5.0},
        {"account_id": 2, "day": pd.Timestamp("2024-03-01"), "delta": -20.0},
    ]  # renewals at the same price and the final end of a customer are no change
    seats = seat_changes(TERMS)  # the add-on's 100 "seats" are not seats of the plan
    assert seats.to_dict("records") == [{"account_id": 2, "day": pd.Timestamp("2024-03-01"), "delta": -4.0}]


def test_plan_state_reads_only_terms_started_by_the_date() -> None:
    at = pd.Timestamp("2024-02-20")
    state = plan_state(TERMS, at, horizon_days=30)
    assert state.loc[2, "sub_mrr"] == 35.0 and state.loc[2, "sub_addon_mrr"] == 5.0 and state.loc[2, "sub_seats"] == 5
    assert state.loc[2, "sub_plan"] == "team" and state.loc[2, "sub_days_to_term_end"] == 10
    assert state.loc[2, "sub_renewal_due"] == 1.0 and state.loc[3, "sub_renewal_due"] == 0.0
    future = pd.concat([TERMS, _terms([(3, "z", "enterprise", False, 900.0, 99, "12", 0.0, "2024-02-21", None),
                                       (4, "y", "team", False, 30.0, 5, "1", 0.0, "2024-03-01", None)])])  # fmt: skip
    pd.testing.assert_frame_equal(plan_state(future, at, 30), state)  # terms starting after D change nothing at D
    assert plan_state(future, pd.Timestamp("2024-02-21"), 30).loc[3, "sub_plan"] == "enterprise"


def test_tied_terms_are_picked_the_same_way_whatever_the_row_order() -> None:
    tied = _terms([(1, "x", "small", False, 10.0, 2, "1", 0.0, "2024-01-01", "2024-02-01"),
                   (1, "w", "large", False, 50.0, 9, "1", 0.0, "2024-01-01", "2024-02-01")])  # fmt: skip
    at = pd.Timestamp("2024-01-10")
    assert plan_state(tied, at, 30).loc[1, "sub_plan"] == "large"
    assert plan_state(tied.iloc[::-1], at, 30).loc[1, "sub_plan"] == "large"


# ---- the import into the store -------------------------------------------------------------------------------------


def test_event_types_are_mapped_in_one_pass_and_terms_set_the_labels(store, sample, tmp_path, monkeypatch) -> None:
    reads = []
    real = pd.read_csv

    def counting(path, *args, **kwargs):
        reads.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(history_usage.pd, "read_csv", counting)
    meta = import_file(sample, tmp_path / "data", store)
    assert reads.count("events.csv") == 1  # one streamed pass, whatever the number of types
    events = pd.read_csv(sample.parent / "events.csv")
    assert meta["events_read"] == len(events) and meta["chunks"] == -(-len(events) // 5000)
    names = pd.read_csv(sample.parent / "event_types.csv").set_index("event_type_id")["event_type_name"]
    with store.connect() as conn:
        keys = dict(conn.execute(select(Account.id, Account.key)).all())
        counts = load_type_counts(conn, "saas")
        stored = (counts[counts["feature"] != "active_users"].assign(key=counts["account_id"].map(keys))
                  .groupby(["key", "feature"])["count"].sum().rename("n").reset_index()
                  .rename(columns={"feature": "type"}))  # fmt: skip
        rollups = conn.execute(select(func.sum(AccountDay.feature_uses), func.sum(AccountDay.logins))).one()
        accounts = pd.DataFrame(conn.execute(select(Account.key, Account.churned_at, Account.status)).all(),
                                columns=["key", "churned_at", "status"]).set_index("key")  # fmt: skip
    expected = events.assign(type=events["event_type_id"].map(names), key=events["account_id"].astype(str))
    expected = expected.groupby(["key", "type"]).size().rename("n").reset_index()
    ordered = ["key", "type"]
    pd.testing.assert_frame_equal(stored.sort_values(ordered).reset_index(drop=True),
                                  expected.sort_values(ordered).reset_index(drop=True), check_dtype=False)  # fmt: skip
    # the daily rollups: every event a feature use; each user active on a day one login that day
    user_days = events.assign(day=pd.to_datetime(events["event_time"]).dt.normalize())
    assert rollups == (len(events), len(user_days.drop_duplicates(["account_id", "user_id", "day"])))
    # churned = the last base term ended with no successor, straight from the subscriptions file
    terms = pd.read_csv(sample.parent / "subscriptions.csv", parse_dates=["start_date", "end_date"])
    base = terms[terms["product"] != "addon_storage"]
    last_end = base.groupby("account_id")["end_date"].max()
    data_end = pd.Timestamp(meta["data_end"])
    churned = {str(a) for a, end in last_end.items() if end < data_end}
    assert set(accounts.index[accounts["status"] == "churned"]) == churned and churned
    assert meta["churned"] == len(churned)


def test_re_import_is_idempotent_and_a_crashed_import_resumes(store, sample, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    real = history_usage.reduce_chunk
    calls = {"n": 0}

    def crash_on_third_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(history_usage, "reduce_chunk", crash_on_third_chunk)
    with pytest.raises(RuntimeError):
        import_file(sample, data, store)
    with store.connect() as conn:  # nothing of the events reached the store
        assert conn.execute(select(func.count()).select_from(UsageDay)).scalar() == 0
    monkeypatch.undo()
    resumed = import_file(sample, data, store)
    assert resumed["chunks_skipped"] == 2  # the two saved chunks are not aggregated again
    after_resume = _counts(store)
    fresh = import_file(sample, tmp_path / "fresh", store)  # the same file read in one go, no checkpoint
    assert fresh["chunks_skipped"] == 0 and _counts(store) == after_resume
    again = import_file(sample, data, store)
    assert again["event_rows"] == 0 and _counts(store) == after_resume
    assert after_resume["event_total"] >= len(pd.read_csv(sample.parent / "events.csv"))
    # the same data dir with an empty store: the saved chunks restore the missing rows exactly
    with store.begin() as conn:
        conn.execute(UsageDay.__table__.delete())
        conn.execute(AccountDay.__table__.delete())
    restored = import_file(sample, data, store)
    assert restored["event_rows"] == after_resume["usage_rows"] and _counts(store) == after_resume
    # a changed file replaces the import's events instead of adding to them
    events = pd.read_csv(sample.parent / "events.csv")
    events.iloc[: len(events) // 2].to_csv(sample.parent / "events.csv", index=False)
    import_file(sample, data, store)
    half = _counts(store)
    assert half["terms"] == after_resume["terms"] and half["event_total"] < after_resume["event_total"]


def test_the_monthly_panel_stops_at_the_observation_date_and_at_churn(store, sample, tmp_path) -> None:
    import_file(sample, tmp_path / "data", store)
    config = load_health_config(None)
    with store.connect() as conn:
        panel = history_panel(conn, config, "saas", horizon_days=30, every_days=30)
        churned_at = dict(conn.execute(select(Account.id, Account.churned_at)).all())
    frame = panel.frame
    assert len(frame) and frame["as_of"].nunique() >= 3
    assert all(
        churned_at[a] is None or pd.Timestamp(churned_at[a]) > d
        for a, d in zip(frame["account_id"], frame["as_of"], strict=True)
    )
    # a term that starts after D and events after D change nothing at D
    subs = pd.read_csv(sample.parent / "subscriptions.csv")
    d = frame["as_of"].min()
    account = int(frame.loc[frame["as_of"] == d, "account_id"].iloc[0])
    with store.connect() as conn:
        key = conn.execute(select(Account.key).where(Account.id == account)).scalar()
    later = (d + pd.Timedelta(days=3)).date().isoformat()
    extra = {"subscription_id": 99_999, "account_id": int(key), "product": "business", "mrr": 999.0, "quantity": 50,
             "bill_period_months": 12, "discount": 0.0, "start_date": later, "end_date": "2021-01-01"}  # fmt: skip
    pd.concat([subs, pd.DataFrame([extra])]).to_csv(sample.parent / "subscriptions.csv", index=False)
    import_file(sample, tmp_path / "data", store)
    with store.connect() as conn:
        again = history_panel(conn, config, "saas", horizon_days=30, every_days=30).frame
        assert len(load_terms(conn, "saas")) == len(subs) + 1
    columns = [c for c in frame.columns if c.startswith(("sub_", "ev_"))]
    before = frame[frame["as_of"] == d].set_index("account_id")[columns]
    after = again[again["as_of"] == d].set_index("account_id")[columns]
    pd.testing.assert_frame_equal(before, after)
    assert again.loc[again["as_of"] == d].set_index("account_id").loc[account, "upsold"] == 1  # the label sees it


def test_the_scoring_panel_reads_the_horizon_as_the_training_panel_does(store, sample, tmp_path) -> None:
    """Scoring runs the dates to the end of the data, but its features (a renewal due within the horizon) are the
    training panel's on every date both hold."""
    import_file(sample, tmp_path / "data", store)
    config = load_health_config(None)
    with store.connect() as conn:
        training = history_panel(conn, config, "saas", horizon_days=30, every_days=30).frame
        scoring = history_panel(conn, config, "saas", horizon_days=30, every_days=30, through_end=True).frame
    assert scoring["as_of"].max() > training["as_of"].max()
    shared = sorted(set(training["as_of"]) & set(scoring["as_of"]))
    assert shared
    columns = [c for c in training.columns if c.startswith(("sub_", "ev_"))]
    assert training.loc[training["as_of"].isin(shared), "sub_renewal_due"].eq(1).any()  # the horizon matters here

    def rows(frame):
        return frame[frame["as_of"].isin(shared)].set_index(["as_of", "account_id"])[columns].sort_index()

    pd.testing.assert_frame_equal(rows(training), rows(scoring))


# ---- leakage guards ------------------------------------------------------------------------------------------------


def test_a_feature_equal_to_or_near_determining_the_label_is_refused_by_name() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    frame = pd.DataFrame({"honest": rng.normal(size=400), "label_copy": y.astype(float),
                          "refund": y * 10 + rng.normal(0, 0.5, 400)})  # fmt: skip
    spec = FeatureSpec(("honest", "label_copy", "refund"), ())
    found = dict(leaking_features(frame, y, spec))
    assert set(found) == {"label_copy", "refund"} and found["label_copy"] == "equals the label"
    with pytest.raises(LeakageError, match="label_copy.*refund"):
        train_tabular(frame, y, spec, None, save=False)
    summary = train_tabular(frame[["honest"]], y, FeatureSpec(("honest",), ()), None, save=False)
    assert summary["warnings"] == []
    assert "suspiciously perfect" in suspicious_score({"roc_auc": 0.995}, "churn")
    assert suspicious_score({"roc_auc": 0.8}, "churn") is None


def test_a_feature_from_after_the_snapshot_date_is_refused(tmp_path) -> None:
    customers = {"id": [1, 2, 3], "churned": ["yes", "no", "no"],
                 "cancelled_on": ["2024-01-01", "2024-08-01", "2023-05-01"]}  # fmt: skip
    pd.DataFrame(customers).to_csv(tmp_path / "c.csv", index=False)
    pd.DataFrame({"id": [1, 2], "at": ["2024-06-01", "2024-06-02"]}).to_csv(tmp_path / "e.csv", index=False)
    (tmp_path / "m.yaml").write_text(
        "name: t\ntables: {c: {path: c.csv}, e: {path: e.csv}}\nbase: c\nid: id\nlabel: {from: churned}\n"
        "columns:\n  since_cancel: {type: days_since, from: cancelled_on}\n"
        "activity: {as_of: 2024-06-30, logs: [{table: e, time: at, key: id, kind: login}]}\n"
    )
    with pytest.raises(ImportMappingError, match="since_cancel.*after the snapshot date 2024-06-30"):
        build_dataset(load_mapping(tmp_path / "m.yaml"), tmp_path)


def test_a_live_event_on_an_imported_day_adds_to_the_imported_usage(store, sample, tmp_path) -> None:
    """The rollup of a day holds imported usage and activity events together: a later event does not erase it."""
    from app.store.load import load_events

    import_file(sample, tmp_path / "data", store)
    with store.connect() as conn:
        account, day, uses, logins = conn.execute(
            select(AccountDay.account_id, AccountDay.day, AccountDay.feature_uses, AccountDay.logins)
            .where(AccountDay.feature_uses > 0).order_by(AccountDay.account_id, AccountDay.day).limit(1)
        ).one()  # fmt: skip
        key = conn.execute(select(Account.key).where(Account.id == account)).scalar()
    live = pd.DataFrame([{"account_key": key, "occurred_at": pd.Timestamp(day) + pd.Timedelta(hours=9),
                          "kind": "feature_used", "feature": "post", "count": 2, "value": None, "source": "segment",
                          "external_id": "live-1"}])  # fmt: skip
    with store.begin() as conn:
        load_events(conn, live, {key: account})
    with store.connect() as conn:
        after = conn.execute(select(AccountDay.feature_uses, AccountDay.logins)
                             .where(AccountDay.account_id == account, AccountDay.day == day)).one()  # fmt: skip
    assert tuple(after) == (uses + 2, logins)


def test_a_big_import_checking_foreign_keys_once_stores_the_same(store, sample, tmp_path, monkeypatch) -> None:
    if store.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL drops and re-adds the foreign keys of a big load")
    keys = ("SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = ANY('{usage_days,account_days}'::regclass[])")  # fmt: skip
    with store.connect() as conn:
        before = conn.exec_driver_sql(keys).scalar()
    monkeypatch.setattr(bulk, "BIG_LOAD_ROWS", 1)
    import_file(sample, tmp_path / "big", store)
    big = _counts(store)
    with store.connect() as conn:
        assert conn.exec_driver_sql(keys).scalar() == before == 2
    monkeypatch.undo()
    with store.begin() as conn:
        conn.execute(UsageDay.__table__.delete())
        conn.execute(AccountDay.__table__.delete())
    import_file(sample, tmp_path / "small", store)
    assert _counts(store) == big and big["usage_rows"] > 0
