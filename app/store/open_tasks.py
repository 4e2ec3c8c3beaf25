"""What an open CRM task is: one definition for every surface that shows or counts them (the account card's task list,
the dashboard's open tasks per CSM) and for the programs, which plan no second task for a problem still open.

A CRM task's status says how far delivery got, never whether the CSM finished it: `planned` and `released` wait
for the outbox, `done` means the CRM has the task (where it sits open in the CSM's task list: completion in the CRM
is not read back), `no_target` means no CRM holds the company, so the task is only on the account page. None of
them closes the task, so counting only the undelivered ones (as the card once did) hid exactly the tasks a CSM has
in their CRM. Age is what retires a task: one planned within the last OPEN_TASK_DAYS days is open; an older one is
taken as dealt with, since nothing tells us otherwise.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_

from app.store.models import Action

OPEN_TASK_DAYS = 14


def open_since(day: date) -> datetime:
    """The earliest creation time of a task still open on `day`: midnight OPEN_TASK_DAYS days before it."""
    return datetime.combine(day - timedelta(days=OPEN_TASK_DAYS), time.min)


def open_task(since: datetime | ColumnElement) -> ColumnElement[bool]:
    """WHERE clause (on Action) for the CRM tasks open since `since` (a value, or a bound parameter)."""
    return and_(Action.kind == "crm_task", Action.created_at >= since)
