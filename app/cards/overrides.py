"""Band overrides (snoozes) honoured where scores are produced, so the band written to the store and CRMs is the
override until it expires; the engine's own band is kept next to it in `band_computed`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from app.store.models import BandOverride

if TYPE_CHECKING:  # pandas only where scoring applies overrides: the web process reads cards without it
    import pandas as pd


def active_override_filter(at: datetime, table=BandOverride):
    """Overrides in force at `at`: not cleared, not yet expired, already made (`table` may be an alias)."""
    return (table.cleared_at.is_(None), table.expires_at > at, table.created_at <= at)


def overrides_on(conn: Connection, as_of: date, account_ids: list[int]) -> pd.Series:
    """The band override in force at the end of `as_of` per account (the newest when several overlap)."""
    import pandas as pd

    end_of_day = datetime.combine(as_of, time.max)
    start_of_next = datetime.combine(as_of + timedelta(days=1), time.min)
    query = (
        select(BandOverride.account_id, BandOverride.band)
        .where(BandOverride.cleared_at.is_(None), BandOverride.expires_at >= start_of_next,
               BandOverride.created_at <= end_of_day)
        .order_by(BandOverride.account_id, BandOverride.created_at, BandOverride.id)
    )  # fmt: skip
    if len(account_ids) <= 10_000:
        query = query.where(BandOverride.account_id.in_(account_ids))
    rows = conn.execute(query).all()
    latest = {account_id: band for account_id, band in rows}  # ordered by time: the newest wins
    return pd.Series(latest, dtype=object).reindex(pd.Index(account_ids)).dropna()


def apply_band_overrides(conn: Connection, scored: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """`scored` with overridden bands replaced and `band_computed` holding the engine's band where it was."""

    scored["band"] = scored["band"].astype(object)
    scored["band_computed"] = None
    if scored.empty:
        return scored
    overrides = overrides_on(conn, as_of, scored.index.tolist())
    if overrides.empty:
        return scored
    ids = overrides.index
    scored.loc[ids, "band_computed"] = scored.loc[ids, "band"]
    scored.loc[ids, "band"] = overrides
    return scored
