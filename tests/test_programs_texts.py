"""Every customer-facing step of every shipped program, rendered for real accounts of the demo book: a real body
(not the title again, no unfilled field), personalized from the account's own data, and free of the words we use
internally to rate a customer."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from app.demo.book import BookSpec, generate_book
from app.programs.definitions import active_programs
from engine.programs import DEFAULT_PROGRAMS_DIR
from engine.programs.definition import CUSTOMER_CHANNELS, INTERNAL_WORDS
from engine.programs.render import MESSAGE_FIELDS, render

AS_OF = date(2026, 6, 30)
# What a customer must never read about how we rate them: the validator's list plus what a careless edit would say.
REVEALING = (*INTERNAL_WORDS, "health", "score", "danger", "warning", "alert", "flagged", "declin", "disengag",
             "inactive", "save plan", "low usage", "red flag", "unhappy")  # fmt: skip
# Fields that say something about the account itself (a greeting by first name alone is not personalization).
ACCOUNT_DATA = set(MESSAGE_FIELDS) - {"first_name"}
PROGRAMS = active_programs(None, DEFAULT_PROGRAMS_DIR)
CUSTOMER_STEPS = [
    pytest.param(name, step, audience, id=f"{name}:{step.key}:{audience}")
    for name, active in PROGRAMS.items()
    for step in active.program.steps
    if step.channel in CUSTOMER_CHANNELS
    for audience in step.text
]


@pytest.fixture(scope="module")
def accounts() -> pd.DataFrame:
    """Message data as the tick reads it, for the demo book's accounts (each with its first contact's name)."""
    book = generate_book(BookSpec(seed=5, active_accounts=60, days=31, as_of=AS_OF))
    data = book.accounts.set_index("key")
    today = pd.Timestamp(AS_OF)
    data["tenure_days"] = (today - pd.to_datetime(data["customer_since"])).dt.days
    data["days_to_renewal"] = (pd.to_datetime(data["renewal_date"]) - today).dt.days
    first = book.contacts.drop_duplicates("account_key").set_index("account_key")["name"].str.split().str[0]
    data["first_name"] = first.reindex(data.index).fillna("there")
    counts = book.events[book.events["kind"] == "login"].groupby("account_key")
    data["logins_30d"] = counts["count"].sum().reindex(data.index).fillna(0)
    data["active_days_30d"] = counts["occurred_at"].apply(lambda t: t.dt.date.nunique()).reindex(data.index).fillna(0)
    return data[data["status"] == "active"].head(25)


def test_every_shipped_program_has_customer_facing_steps_to_check():
    assert len(CUSTOMER_STEPS) >= 15
    assert {"onboarding", "retention", "advocacy", "nps_survey"} <= {p.values[0] for p in CUSTOMER_STEPS}


@pytest.mark.parametrize(("name", "step", "audience"), CUSTOMER_STEPS)
def test_customer_facing_text_is_a_personal_body_without_internal_wording(accounts, name, step, audience):
    text = step.text[audience]
    fields = set(re.findall(r"\{([a-z0-9_]+)\}", text.body))
    assert fields & ACCOUNT_DATA, f"{name}:{step.key}: the body names none of the account's own data"
    titles, bodies = render(text.title, accounts), render(text.body, accounts)
    for title, body in zip(titles, bodies, strict=True):
        assert body.strip() and body.strip() != title.strip()
        assert len(body.split()) >= 12, f"{name}:{step.key}: {body!r} is not a real message body"
        assert "{" not in body + title and "}" not in body + title
        assert "–" not in body + title, f"{name}:{step.key}: a field without data reads as a dash: {body!r}"
        lowered = f"{title} {body}".lower()
        assert not [w for w in REVEALING if w in lowered], f"{name}:{step.key}: {title} / {body}"
    assert bodies.nunique() > 1, f"{name}:{step.key}: every account reads the same body"


def test_numbers_render_whole_with_thousands_separators_and_a_dash_when_missing():
    """Each distinct number is formatted once and every row gets its own (repeats, a gap, rounding, a text column)."""
    frame = pd.DataFrame({"arr": [12000.0, None, 1234.6, 12000.0], "seats_active": [3, 3, 40, 3],
                          "name": ["Acme", "Beta", None, "Acme"]}, index=[7, 3, 9, 1])  # fmt: skip
    rendered = render("{name}: ARR {arr}, {seats_active} seats", frame)
    assert rendered.to_dict() == {7: "Acme: ARR 12,000, 3 seats", 3: "Beta: ARR –, 3 seats",
                                  9: "–: ARR 1,235, 40 seats", 1: "Acme: ARR 12,000, 3 seats"}  # fmt: skip
