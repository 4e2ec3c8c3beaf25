"""Program steps reach the customer through Intercom (the real python-intercom SDK against the sandbox): an email
step goes as Intercom's email message with a subject, each body personalized from the account's data."""

from __future__ import annotations

from datetime import datetime

from app.programs.tick import Limits, run_tick
from app.rescoring import rescore
from app.writeback.jobs import enqueue_deliveries
from engine.health_config import load_health_config
from tests.programs_support import program
from tests.writeback_support import AS_OF

WELCOME = """
program: hello
title: Hello
entry: tenure_days >= 0
holdout: 0
steps:
  - key: hello_email
    day: 0
    channel: email
    text:
      default:
        title: "News for {name}"
        body: "Hi {first_name}, {seats_active} of {seats_purchased} seats at {name} are active."
"""


def test_email_steps_are_sent_as_personalized_intercom_emails(intercom_linked):
    store, state, settings = intercom_linked
    programs = program(WELCOME)
    rescore(store, AS_OF, load_health_config(), 2.0, programs=programs)
    before = len(state.workspace.messages)
    with store.begin() as conn:
        result = run_tick(conn, programs, datetime.combine(AS_OF, datetime.max.time()), Limits(5, 1000))
    assert result.sent > 0
    enqueue_deliveries(settings, store, vendors=("intercom",))
    emails = [m for m in state.workspace.messages[before:] if m["message_type"] == "email"]
    assert emails and all(m["subject"].startswith("News for ") for m in emails)
    names = {m["subject"].removeprefix("News for ") for m in emails}
    assert all(any(f"at {n} are active" in m["body"] for n in names) for m in emails)
    assert all("{" not in m["body"] for m in emails)
