"""Load a generated book of business (the demo, the benchmarks) into the store, in chunks of accounts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import Engine

from app.store.load import load_accounts, load_contacts, load_events

CHUNK_ACCOUNTS = 500


def load_book(
    engine: Engine,
    accounts,
    contacts,
    events,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Load accounts, contacts and events; returns the number of new events.

    Events are loaded a chunk of accounts at a time so each rollup refresh stays small and progress can be shown;
    `on_progress` receives the number of event rows handled after each chunk.
    """
    with engine.begin() as conn:
        account_ids = load_accounts(conn, accounts)
        contact_ids = load_contacts(conn, contacts, account_ids)
    keys = accounts["key"].tolist()
    by_account = events.groupby("account_key", sort=False).indices
    inserted = 0
    for start in range(0, len(keys), CHUNK_ACCOUNTS):
        chunk_keys = [k for k in keys[start : start + CHUNK_ACCOUNTS] if k in by_account]
        if not chunk_keys:
            continue
        chunk = events.iloc[np.sort(np.concatenate([by_account[k] for k in chunk_keys]))]
        with engine.begin() as conn:
            inserted += load_events(conn, chunk, account_ids, contact_ids)
        if on_progress:
            on_progress(len(chunk))
    return inserted
