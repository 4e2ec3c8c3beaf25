"""One definition of an open CRM task (app/store/open_tasks.py): the account card lists and the dashboard counts
the same tasks on the same data, whatever their delivery status, and neither shows a task past the window."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import insert

from app.cards.model import build_card
from app.scoring import score_and_store
from app.store.load import load_accounts
from app.store.models import Action
from app.store.open_tasks import OPEN_TASK_DAYS, open_since
from app.web import book
from engine.health_config import load_health_config
from tests.factories import AS_OF, accounts_frame

NOON = datetime.combine(AS_OF, time(12))
ADA, CARL = "ada@vendor.example", "carl@vendor.example"


def _task(account_id: int, title: str, status: str, created_at: datetime, kind: str = "crm_task") -> dict:
    return {"account_id": account_id, "playbook": "retention", "step": title, "kind": kind, "status": status,
            "due": created_at + timedelta(days=3), "dedupe_key": f"{account_id}:{title}",
            "payload": {"title": title}, "created_at": created_at}  # fmt: skip


def test_the_card_and_the_dashboard_agree_on_which_tasks_are_open(store):
    accounts = accounts_frame(3)
    accounts["owner"] = [ADA, ADA, CARL]
    edge = open_since(AS_OF)
    with store.begin() as conn:
        ids = load_accounts(conn, accounts)
        score_and_store(conn, AS_OF, load_health_config())
        a, b, c = ids["A0000"], ids["A0001"], ids["A0002"]
        conn.execute(insert(Action), [
            _task(a, "planned today", "planned", NOON - timedelta(hours=1)),
            _task(a, "released", "released", NOON - timedelta(days=2)),
            _task(a, "in the CRM", "done", NOON - timedelta(days=5)),  # delivered: open in the CSM's task list
            _task(a, "first day of the window", "done", edge),
            _task(a, "past the window", "done", edge - timedelta(seconds=1)),
            _task(a, "a message", "released", NOON, kind="inapp_message"),
            _task(b, "no CRM holds it", "no_target", NOON - timedelta(days=1)),
            _task(b, "long ago", "released", NOON - timedelta(days=OPEN_TASK_DAYS + 3)),
            _task(c, "carl's", "done", NOON - timedelta(days=OPEN_TASK_DAYS - 1)),
        ])  # fmt: skip
    with store.connect() as conn:
        cards = {key: build_card(conn, ids[key], (), now=NOON) for key in ("A0000", "A0001", "A0002")}
        workload = book.book_figures(conn, AS_OF, book.BookFilter())["workload"]
    shown = {key: {t["title"] for t in card["tasks"]} for key, card in cards.items()}
    assert shown == {
        "A0000": {"planned today", "released", "in the CRM", "first day of the window"},
        "A0001": {"no CRM holds it"},
        "A0002": {"carl's"},
    }
    per_owner = {ADA: len(shown["A0000"]) + len(shown["A0001"]), CARL: len(shown["A0002"])}
    assert {w["owner"]: w["open_tasks"] for w in workload} == per_owner == {ADA: 5, CARL: 1}
