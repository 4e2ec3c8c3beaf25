"""Seeding a workspace from a canonical book: companies, contacts, data events and conversations.

How the book maps onto Intercom is described in sandbox/intercom/workspace.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pandas as pd

from sandbox.intercom.values import (
    CONVERSATION_TOPICS,
    NAMED_BY_FEATURE,
    SEED_ATTRIBUTES,
    clean,
    coerce_seed,
    epoch,
    epochs,
)


class Seeding:
    """A Workspace's constructors from a book and the seeding they run (a mixin of Workspace)."""

    @classmethod
    def from_book(cls, book: Any, **kwargs: Any) -> Self:
        """A workspace holding `book` (anything with `accounts`, `contacts`, `events` frames)."""
        return cls.from_frames(book.accounts, book.contacts, book.events, **kwargs)

    @classmethod
    def from_frames(
        cls,
        accounts: pd.DataFrame,
        contacts: pd.DataFrame,
        events: pd.DataFrame | None = None,
        *,
        seeded_at: int | None = None,
        **kwargs: Any,
    ) -> Self:
        """Seed from canonical frames; records carry `updated_at = seeded_at` (default: now) as their last change."""
        workspace = cls(**kwargs)
        workspace.seed(accounts, contacts, events, seeded_at=seeded_at)
        return workspace

    def seed(
        self,
        accounts: pd.DataFrame,
        contacts: pd.DataFrame,
        events: pd.DataFrame | None = None,
        *,
        seeded_at: int | None = None,
    ) -> None:
        with self.lock:
            stamp = self.now() if seeded_at is None else int(seeded_at)
            for row in accounts.to_dict("records"):
                self._seed_company(row, stamp)
            for row in contacts.to_dict("records"):
                self._seed_contact(row, stamp)
            if events is not None and len(events):
                self._seed_events(events)

    def _seed_company(self, row: Mapping[str, Any], stamp: int) -> None:
        since = epoch(row.get("customer_since")) or stamp
        arr = clean(row.get("arr"))
        custom = {}
        for model, name, data_type, column in SEED_ATTRIBUTES:
            value = clean(row.get(column)) if model == "company" else None
            if value is not None:
                custom[name] = coerce_seed(value, data_type)
        plan = clean(row.get("plan"))
        self.add_company(
            {
                "company_id": str(row["key"]),
                "name": str(row.get("name") or row["key"]),
                "website": f"https://{row['domain']}" if clean(row.get("domain")) else "",
                "remote_created_at": since,
                "monthly_spend": round(arr / 12) if arr is not None else 0,
                "plan": str(plan) if plan else None,
                "custom_attributes": custom,
            },
            created_at=since,
            updated_at=stamp,
        )

    def _seed_contact(self, row: Mapping[str, Any], stamp: int) -> None:
        company = self._company_by_key.get(str(row["account_key"]))
        created = self.companies[company]["created_at"] if company else stamp
        custom = {}
        for model, name, data_type, column in SEED_ATTRIBUTES:
            value = clean(row.get(column)) if model == "contact" else None
            if value is not None:
                custom[name] = coerce_seed(value, data_type)
        contact = self.add_contact(
            {
                "email": str(row["email"]),
                "name": clean(row.get("name")),
                "last_seen_at": clean(row.get("last_seen")),
                "signed_up_at": created,
                "custom_attributes": custom,
            },
            created_at=created,
            updated_at=stamp,
        )
        if company:
            self._attach(contact["id"], company, touch=False)

    def _seed_events(self, events: pd.DataFrame) -> None:
        frame = events[events["source"] == "intercom"].copy()
        frame["created_at"] = epochs(frame["occurred_at"])
        # Each distinct email is looked up once (millions of events, a few thousand people).
        codes, emails = pd.factorize(frame["contact_email"])
        ids = [self._contact_by_email.get(str(e).lower()) if e else None for e in emails]
        frame["contact_id"] = np.array([*ids, None], dtype=object)[codes]  # code -1 (no email) takes the None
        frame["scope_account"] = frame["contact_id"].isna()
        first_contact = {
            key: self._company_contacts[cid][0]
            for key, cid in self._company_by_key.items()
            if self._company_contacts.get(cid)
        }
        missing = frame["contact_id"].isna()
        frame.loc[missing, "contact_id"] = frame.loc[missing, "account_key"].map(first_contact)
        placed = frame["contact_id"].notna() & np.isfinite(frame["created_at"])
        self.unplaced_events += int((~placed).sum())
        frame = frame[placed]

        talk = frame["kind"].isin(list(CONVERSATION_TOPICS))
        for row in frame[talk].sort_values("created_at").to_dict("records"):
            self._seed_conversation(row)

        usage = frame[~talk].copy()
        usage["contact"] = usage["contact_id"].map(self._contact_index).astype(np.int64)
        usage["created_at"] = usage["created_at"].astype(np.int64)
        feature = usage["feature"].astype(object).where(usage["feature"].notna(), None)
        named = usage["kind"].isin(NAMED_BY_FEATURE) & feature.notna()
        usage["event_name"] = np.where(named, feature, usage["kind"]).astype(object)
        usage["feature"] = feature
        usage = usage.sort_values(["contact", "created_at"], kind="stable")
        usage["ms"] = usage["created_at"] * 1000 + usage.groupby(["contact", "created_at"]).cumcount()
        usage["count"] = usage["count"].fillna(1).astype(np.int64)
        usage["value"] = usage["value"].astype(float)
        self.events.load(usage[["contact", "ms", "event_name", "count", "value", "feature", "scope_account"]])

        # Company rollups Intercom keeps: web sessions and last request (the latest contact activity).
        logins = usage[usage["kind"] == "login"]
        sessions = logins.groupby("account_key")["count"].sum()
        for key, total in sessions.items():
            self.companies[self._company_by_key[key]]["session_count"] = int(total)

    def _seed_conversation(self, row: Mapping[str, Any]) -> None:
        contact = self.contacts[row["contact_id"]]
        created = int(row["created_at"])
        topic = CONVERSATION_TOPICS[row["kind"]]
        self.add_conversation(contact["id"], f"<p>{topic}: {row['kind'].replace('_', ' ')}</p>", created, topic)
