"""Small hand-made canonical frames, so store tests can state exactly what they expect."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

AS_OF = date(2026, 6, 30)


def accounts_frame(n: int = 3, **overrides) -> pd.DataFrame:
    rows = []
    for i in range(n):
        rows.append(
            {
                "key": f"A{i:04d}",
                "name": f"Company {i}",
                "domain": f"company{i}.example",
                "segment": "smb",
                "plan": "team",
                "arr": 2400.0 * (i + 1),
                "seats_purchased": 10,
                "seats_active": 8,
                "api_limit": 10000,
                "api_used": 1000 * (i + 1),
                "storage_limit_gb": 100.0,
                "storage_used_gb": 10.0,
                "customer_since": AS_OF - timedelta(days=200),
                "renewal_date": AS_OF + timedelta(days=100),
                "owner": "csm1@vendor.example",
                "lifecycle_stage": "adopted",
                "status": "active",
                "churned_at": None,
                "roi_pct": 250.0,
                "goal_attainment": 0.7,
            }
        )
    frame = pd.DataFrame(rows)
    for column, value in overrides.items():
        frame[column] = value
    return frame


def contacts_frame(accounts: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_key": accounts["key"],
            "email": [f"champion@{d}" for d in accounts["domain"]],
            "name": "Pat Champion",
            "role": "admin",
            "is_champion": True,
            "is_exec_sponsor": False,
            "last_seen": None,
        }
    )


def event(account_key: str, day: date, kind: str, *, feature=None, count=1, value=None, uid: str, hour: int = 10):
    return {
        "account_key": account_key,
        "contact_email": None,
        "occurred_at": datetime.combine(day, datetime.min.time()) + timedelta(hours=hour),
        "kind": kind,
        "feature": feature,
        "count": count,
        "value": value,
        "source": "intercom",
        "external_id": uid,
    }


def events_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(event("x", AS_OF, "login", uid="x")))
