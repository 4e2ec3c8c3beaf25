"""Which accounts count as customers on a day: shared by scoring and the web app's dashboard (no pandas here)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, or_

from app.store.models import Account


def accounts_active_on(as_of: date):
    """Accounts that were customers on `as_of`: joined by then, not churned by then, not deleted in every CRM."""
    joined = or_(Account.customer_since.is_(None), Account.customer_since <= as_of)
    not_churned = or_(Account.churned_at.is_(None), Account.churned_at > as_of)
    churned_undated = and_(Account.status == "churned", Account.churned_at.is_(None))
    return and_(joined, not_churned, Account.status != "deleted", ~churned_undated)
