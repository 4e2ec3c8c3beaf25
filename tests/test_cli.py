"""`cse demo` and `cse score` as a user runs them: a separate process, settings from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy import select

from app.store.models import Account, Score

AS_OF = date(2026, 6, 30)
BANDS = {"healthy", "at_risk", "critical", "churning"}


def _cse(*args: str, database_url: str, data_dir) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "CSE_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_demo_then_score_prints_every_band(store, tmp_path):
    url = store.url.render_as_string(hide_password=False)
    demo = _cse("demo", "--json", "--accounts", "400", "--days", "90", "--as-of", "2026-06-30",
                database_url=url, data_dir=tmp_path)  # fmt: skip
    assert demo["accounts"] == 400
    assert set(demo["bands"]) == BANDS
    assert sum(band["count"] for band in demo["bands"].values()) == 400
    assert all(band["count"] > 0 for band in demo["bands"].values()), demo
    healthy, churning = demo["bands"]["healthy"], demo["bands"]["churning"]
    assert healthy["avg_health"] >= 80 > 40 > churning["avg_health"]

    writeback = demo["crms"]["writeback"]
    assert set(writeback) == {"salesforce", "hubspot", "intercom"}, "the loop runs through the bundled sandboxes"
    assert all(key.endswith(":done") for outcomes in writeback.values() for key in outcomes), writeback
    assert writeback["salesforce"]["update_fields:done"] + writeback["hubspot"]["update_fields:done"] == 400
    retention = demo["programs"]["retention"]
    assert retention["entered"] > retention["control"] > 0 and retention["uplift"]["low"] <= retention["uplift"]["high"]
    assert set(demo["onboarding"]["status"]) == {"on_track", "behind", "stuck"}
    assert demo["onboarding"]["funnel"]["welcome"] >= demo["onboarding"]["funnel"]["graduated"]
    rescored = _cse("score", "--json", "--as-of", "2026-06-30", database_url=url, data_dir=tmp_path)
    assert rescored["bands"] == demo["bands"]
    with store.connect() as conn:
        query = (
            select(Score.trend_7d, Score.trend_30d)
            .join(Account, Account.id == Score.account_id)
            .where(Score.as_of == AS_OF, Account.customer_since <= AS_OF - timedelta(days=30))
        )
        trends = pd.DataFrame(conn.execute(query).all())
    assert len(trends) > 300
    assert trends.notna().all().all(), "the demo scores 7 and 30 days back, so older accounts have trends"


def test_demo_health_ranks_the_accounts_about_to_churn(store, tmp_path):
    """The generated book's churn is caused by behaviour the health score sees, so health must rank it."""
    from app.demo.book import BookSpec, generate_book

    url = store.url.render_as_string(hide_password=False)
    _cse("demo", "--json", "--accounts", "600", "--days", "120", "--as-of", "2026-06-30", "--seed", "11",
         database_url=url, data_dir=tmp_path)  # fmt: skip
    book = generate_book(BookSpec(seed=11, active_accounts=600, days=120, as_of=AS_OF))
    with store.connect() as conn:
        rows = conn.execute(
            select(Account.key, Score.health).join(Score, Score.account_id == Account.id).where(Score.as_of == AS_OF)
        ).all()
    health = pd.DataFrame(rows, columns=["key", "health"]).set_index("key")["health"]
    churn_date = pd.to_datetime(book.accounts.set_index("key")["latent_churn_date"]).reindex(health.index)
    churns_soon = churn_date <= pd.Timestamp("2026-09-30")
    assert 0.05 < churns_soon.mean() < 0.6
    assert roc_auc_score(churns_soon, -health) > 0.7
