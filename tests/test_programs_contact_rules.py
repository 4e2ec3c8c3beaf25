"""Who may be contacted and when: unsubscribed contacts and churned accounts get nothing customer-facing; quiet
periods (weekdays, hours, blackout dates, in the account's timezone) defer messages without dropping them, and
the per-account cap still holds across programs once the quiet period ends."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import insert, select, update

from app.programs.definitions import refuse_closed_quiet_periods
from app.programs.eligibility import recipients
from app.programs.tick import Limits, enroll, run_tick
from app.store.models import Account, Contact, OutboxRow, ProgramEnrollment, program_history
from app.sync import run_sync
from connectors.intercom.client import IntercomClient
from connectors.intercom.source import IntercomSource
from engine.programs.definition import ProgramError
from engine.programs.quiet import parse_quiet, reopens_at
from tests.programs_support import T0, book, program, scored

TWO_MESSAGES = """
program: {name}
title: Messages
entry: risk >= 40
holdout: 0
steps:
  - {{key: {name}_a, day: 0, channel: inapp_message, text: {{default: {{title: "A", body: "a {{name}}"}}}}}}
  - {{key: {name}_b, day: 0, channel: email, text: {{default: {{title: "B", body: "b {{name}}"}}}}}}
  - {{key: {name}_task, day: 0, channel: crm_task, text: {{default: {{title: "T", body: "t {{name}}"}}}}}}
"""
SATURDAY = T0 + timedelta(days=5)  # T0 is Monday 2026-06-01 09:00 UTC
WEEKEND = parse_quiet(weekdays="sat,sun")


def programs_of(*names: str) -> dict:
    out = {}
    for name in names:
        out.update(program(TWO_MESSAGES.format(name=name)))
    return out


def tick(store, programs, ids, at, limits, enter=True):
    if enter:
        with store.begin() as conn:
            enroll(conn, programs, scored(ids, [50.0] * len(ids)), at)
    with store.begin() as conn:
        return run_tick(conn, programs, at, limits)


def events(store, kind: str) -> list[tuple[int, str | None]]:
    with store.connect() as conn:
        query = select(program_history.c.account_id, program_history.c.channel).where(program_history.c.kind == kind)
        return sorted(conn.execute(query).all())


def customer_sent(store) -> list[int]:
    return [a for a, c in events(store, "step_sent") if c in ("inapp_message", "email")]


def test_unsubscribed_contacts_get_nothing_and_are_never_recipients(store):
    ids = book(store, 3)
    with store.begin() as conn:
        conn.execute(update(Contact).where(Contact.account_id == ids[0]).values(unsubscribed=True))
        # Account 1: its champion unsubscribed, a colleague did not; the colleague gets the messages.
        conn.execute(update(Contact).where(Contact.account_id == ids[1]).values(unsubscribed=True))
        conn.execute(insert(Contact).values(account_id=ids[1], email="colleague@company1.example", name="Sam Lee",
                                            is_champion=False, is_exec_sponsor=False, last_seen=T0))  # fmt: skip
    result = tick(store, programs_of("one"), ids, T0, Limits(messages_per_week=5))
    assert sorted(customer_sent(store)) == sorted([ids[1]] * 2 + [ids[2]] * 2)
    assert events(store, "step_suppressed") == [(ids[0], "email"), (ids[0], "inapp_message")]
    assert result.suppressed == 2
    assert (ids[0], "crm_task") in events(store, "step_sent")  # the CSM's task is not customer-facing
    with store.connect() as conn:
        payloads = conn.execute(select(OutboxRow.payload).where(OutboxRow.operation == "send_message")).scalars()
        recipients = {json.loads(p)["email"] if isinstance(p, str) else p["email"] for p in payloads}
    assert recipients == {"colleague@company1.example", "champion@company2.example"}
    with store.connect() as conn:  # suppressed steps are not owed later: the enrollment moved on
        steps = conn.execute(select(ProgramEnrollment.account_id, ProgramEnrollment.status)).all()
    assert (ids[0], "completed") in steps


def test_churned_accounts_get_nothing(store):
    ids = book(store, 2)
    programs = programs_of("one")
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [50.0, 50.0]), T0)
        conn.execute(update(Account).where(Account.id == ids[0]).values(status="churned"))
    with store.begin() as conn:
        run_tick(conn, programs, T0, Limits(messages_per_week=5))
    assert ids[0] not in {a for a, _ in events(store, "step_sent")}
    assert sorted(customer_sent(store)) == [ids[1], ids[1]]


def test_weekend_quiet_period_defers_to_monday_in_each_accounts_timezone(store):
    ids = book(store, 2)
    with store.begin() as conn:
        conn.execute(update(Account).where(Account.id == ids[1]).values(timezone="America/Los_Angeles"))
    programs = programs_of("one")
    limits = Limits(messages_per_week=5, quiet=WEEKEND)
    result = tick(store, programs, ids, SATURDAY, limits)
    assert events(store, "step_sent") == [] and result.deferred == 2  # deferred (the sequence waits), not dropped
    tick(store, programs, ids, SATURDAY + timedelta(days=1), limits, enter=False)
    assert customer_sent(store) == []
    monday_utc = datetime(2026, 6, 8, 1, 0)  # still Sunday 18:00 in Los Angeles
    tick(store, programs, ids, monday_utc, limits, enter=False)
    assert customer_sent(store) == [ids[0], ids[0]]
    tick(store, programs, ids, datetime(2026, 6, 8, 7, 30), limits, enter=False)  # Monday 00:30 in LA
    assert sorted(customer_sent(store)) == [ids[0], ids[0], ids[1], ids[1]]


def test_caps_hold_across_programs_when_a_quiet_period_releases_its_messages(store):
    ids = book(store, 2)
    programs = programs_of("one", "two")  # four messages per account fall due on the Saturday
    limits = Limits(messages_per_week=2, quiet=WEEKEND)
    tick(store, programs, ids, SATURDAY, limits)
    assert customer_sent(store) == []
    tick(store, programs, ids, datetime(2026, 6, 8, 9, 0), limits, enter=False)
    sent = customer_sent(store)
    assert sorted(sent) == sorted(ids * 2)  # two each, the cap; the other two wait
    tick(store, programs, ids, datetime(2026, 6, 10, 9, 0), limits, enter=False)
    assert len(customer_sent(store)) == 4  # still the same week
    tick(store, programs, ids, datetime(2026, 6, 16, 9, 0), limits, enter=False)  # the next week (a Tuesday)
    assert sorted(customer_sent(store)) == sorted(ids * 4)


def test_quiet_hours_and_blackouts_reopen_at_the_right_moment():
    rules = parse_quiet(hours="20-8", blackouts="2026-12-24..2026-12-26", default_timezone="Europe/Berlin")
    zones = pd.Series([None, "America/New_York", "Asia/Tokyo"])
    # 2026-12-23 18:30 UTC: Berlin 19:30 (open), New York 13:30 (open), Tokyo 03:30 on the 24th (blackout)
    out = reopens_at(datetime(2026, 12, 23, 18, 30), zones, rules)
    assert pd.isna(out[0]) and pd.isna(out[1])
    assert out[2] == pd.Timestamp(datetime(2026, 12, 26, 23, 0))  # Tokyo 2026-12-27 08:00, after the night
    # 21:00 UTC: Berlin 22:00 is in quiet hours until 08:00, but the 24th-26th are blacked out: the 27th 08:00
    out = reopens_at(datetime(2026, 12, 23, 21, 0), zones, rules)
    assert out[0] == pd.Timestamp(datetime(2026, 12, 27, 7, 0))
    assert pd.isna(out[1])  # New York 16:00
    assert reopens_at(datetime(2026, 12, 23, 12, 0), zones, parse_quiet()).isna().all()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("weekdays", "sat,sunday,funday"), ("weekdays", "mon,tue,wed,thu,fri,sat,sun"), ("hours", "8"),
     ("hours", "25-3"), ("hours", "8-20,20-8"), ("blackouts", "2026-12-30..2026-12-24"), ("blackouts", "christmas"),
     ("default_timezone", "Mars/Olympus")],
)  # fmt: skip
def test_bad_quiet_settings_are_refused_with_the_setting_named(setting, value):
    with pytest.raises(ValueError, match="CSE_"):
        parse_quiet(**{setting: value})


def test_a_programs_quiet_periods_that_close_the_week_with_the_global_ones_are_refused_with_its_name():
    """Each alone leaves time to send (weekdays mon-fri; the global weekend), together none: refused at load,
    naming the program, instead of every tick failing once its first message falls due."""
    closed = program(TWO_MESSAGES.format(name="closed").replace(
        "holdout: 0\n", "holdout: 0\nquiet: {weekdays: 'mon,tue,wed,thu,fri'}\n"))  # fmt: skip
    refuse_closed_quiet_periods(closed, parse_quiet())  # no global quiet period: it can still send at weekends
    with pytest.raises(ProgramError, match="every weekday is quiet, so program 'closed' could never send"):
        refuse_closed_quiet_periods({**programs_of("open"), **closed}, WEEKEND)
    refuse_closed_quiet_periods(programs_of("open"), WEEKEND)


def test_a_date_blackout_alone_is_a_whole_local_day():
    rules = parse_quiet(blackouts="2026-07-04")
    assert reopens_at(datetime(2026, 7, 4, 23, 59), pd.Series([None]), rules)[0] == pd.Timestamp(date(2026, 7, 5))


def test_a_contact_unsubscribed_in_intercom_is_synced_and_never_a_recipient(intercom_linked, tmp_path):
    store, state, settings = intercom_linked
    client = IntercomClient.from_settings(settings)
    with store.connect() as conn:
        before = recipients(conn, T0)
    account = int(before.index[0])
    email = before.loc[account, "email"]
    contact = state.workspace.find_contact(email=email)["id"]
    client.sdk.contacts.update(contact, unsubscribed_from_emails=True)  # as Intercom records an unsubscribe
    run_sync(store, [IntercomSource.from_settings(settings)], log_dir=tmp_path)
    with store.connect() as conn:
        assert conn.execute(select(Contact.unsubscribed).where(Contact.email == email)).scalar_one() is True
        assert conn.execute(select(Contact.unsubscribed).where(Contact.email != email)).scalars().all().count(True) == 0
        after = recipients(conn, T0)
    assert email not in set(after["email"])
    assert account not in after.index or after.loc[account, "email"] != email


def by_program(store) -> list[tuple[str, int]]:
    with store.connect() as conn:
        query = select(program_history.c.program, program_history.c.account_id).where(
            program_history.c.kind == "step_sent", program_history.c.channel.in_(("inapp_message", "email"))
        )
        return sorted(conn.execute(query).all())


def test_a_programs_own_quiet_period_defers_its_messages_and_not_another_programs(store):
    ids = book(store, 2)
    quiet = program(TWO_MESSAGES.format(name="quiet").replace("holdout: 0\n", "holdout: 0\nquiet: {weekdays: sat}\n"))
    programs = {**programs_of("loud"), **quiet}
    limits = Limits(messages_per_week=10)  # no global quiet period
    result = tick(store, programs, ids, SATURDAY, limits)
    assert by_program(store) == sorted(("loud", a) for a in ids * 2)
    assert result.deferred == 2  # the quiet program's first message per account waits, the sequence with it
    tick(store, programs, ids, SATURDAY + timedelta(days=1), limits, enter=False)  # Sunday: open again
    assert by_program(store) == sorted([("loud", a) for a in ids * 2] + [("quiet", a) for a in ids * 2])


def test_a_program_may_replace_the_global_quiet_periods_or_add_to_them(store):
    ids = book(store, 1)
    own = "holdout: 0\nquiet: {{hours: 20-8, replace: {}}}\n"
    programs = {
        **program(TWO_MESSAGES.format(name="weekend_ok").replace("holdout: 0\n", own.format("true"))),
        **program(TWO_MESSAGES.format(name="nights_too").replace("holdout: 0\n", own.format("false"))),
    }
    tick(store, programs, ids, SATURDAY, Limits(messages_per_week=10, quiet=WEEKEND))  # 09:00 UTC: not night
    assert by_program(store) == [("weekend_ok", ids[0]), ("weekend_ok", ids[0])]
    tick(store, programs, ids, datetime(2026, 6, 8, 21, 0), Limits(messages_per_week=10, quiet=WEEKEND), enter=False)
    assert [p for p, _ in by_program(store)].count("nights_too") == 0  # Monday 21:00: its own night
    tick(store, programs, ids, datetime(2026, 6, 9, 8, 0), Limits(messages_per_week=10, quiet=WEEKEND), enter=False)
    assert [p for p, _ in by_program(store)].count("nights_too") == 2
