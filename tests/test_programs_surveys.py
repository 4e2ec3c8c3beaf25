"""NPS and CSAT answers come back into the store: a survey step goes out as an Intercom message (the official
SDK against the sandbox), the contact replies to it or rates a conversation as Intercom records that, the
answers are read back through the SDK and stored per contact and account with date and score; then promoters
enter advocacy and detractors get detractor_recovery's task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import insert, select, update

from app.programs.definitions import active_programs
from app.programs.surveys import answers_announced, capture_answers
from app.programs.tick import Limits, run_tick
from app.rescoring import rescore
from app.store.models import (
    Account,
    Action,
    ActivityEvent,
    Contact,
    OutboxRow,
    ProgramEnrollment,
    Score,
    SurveyAnswer,
    WebhookEvent,
)
from app.writeback.jobs import enqueue_deliveries
from connectors.intercom.client import IntercomClient
from connectors.intercom.surveys import IntercomSurveys
from connectors.surveys import SurveyAnswer as VendorAnswer
from connectors.surveys import nps_score
from engine.health_config import load_health_config
from engine.programs import DEFAULT_PROGRAMS_DIR
from sandbox.intercom.openapi import SPEC_2_11, ResponseChecker
from tests.writeback_support import AS_OF

SURVEYED = AS_OF - timedelta(days=3)
TICK = datetime.combine(AS_OF - timedelta(days=1), datetime.min.time()) + timedelta(hours=12)


def epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def shipped(*names: str) -> dict:
    programs = active_programs(None, DEFAULT_PROGRAMS_DIR)
    return {name: programs[name] for name in names}


def score(store, day, programs):
    rescore(store, day, load_health_config(), 2.0, programs=programs, now=datetime.combine(day, datetime.max.time()))


def send_surveys(store, settings, state) -> list[dict]:
    """Enter the book into the quarterly survey, send its step, deliver it to Intercom; the messages sent."""
    programs = shipped("nps_quarterly")
    score(store, SURVEYED, programs)
    with store.begin() as conn:
        result = run_tick(conn, programs, TICK, Limits(5, 1000))
    sent = result.by_step.get("nps_quarterly:survey", 0)
    assert sent > 3
    before = len(state.workspace.messages)
    enqueue_deliveries(settings, store, vendors=("intercom",))  # with the messages other programs sent
    surveys = [m for m in state.workspace.messages[before:] if "How likely are you to recommend" in m["body"]]
    assert len(surveys) == sent
    return surveys


def account_of(store, contact_id_in_intercom: str, workspace) -> int:
    email = workspace.get_contact(contact_id_in_intercom)["email"]
    with store.connect() as conn:
        return conn.execute(select(Contact.account_id).where(Contact.email == email)).scalar_one()


def could_promote(store, messages, workspace, answered: datetime) -> list[dict]:
    """Messages to accounts healthy at AS_OF with ROI shown (advocacy's other entry conditions) whose answer at
    `answered` will be their latest survey answer."""
    score(store, AS_OF, {})
    with store.connect() as conn:
        bands = dict(conn.execute(select(Score.account_id, Score.band).order_by(Score.as_of)).all())
        roi_shown = set(conn.execute(select(Account.id).where(Account.roi_pct >= 100)).scalars())
        later = set(conn.execute(select(ActivityEvent.account_id).where(
            ActivityEvent.kind == "survey_response", ActivityEvent.occurred_at >= answered)).scalars())  # fmt: skip
    accounts = [account_of(store, m["to"], workspace) for m in messages]
    admitted = {a for a in accounts if bands.get(a) == "healthy" and a in roi_shown and a not in later}
    return [m for m, a in zip(messages, accounts, strict=True) if a in admitted]


def test_survey_replies_and_ratings_are_stored_and_route_promoters_and_detractors(intercom_linked):
    store, state, settings = intercom_linked
    ws = state.workspace
    messages = send_surveys(store, settings, state)
    assert all("reply with a number from 0 (not at all) to 10" in m["body"].lower() for m in messages)
    assert all("{" not in m["body"] for m in messages)
    replied = TICK + timedelta(hours=3)
    promoter_msg, detractor_msg = could_promote(store, messages, ws, replied)[:2]
    silent_msg = next(m for m in messages if m not in (promoter_msg, detractor_msg))
    promoter, detractor, silent = (account_of(store, m["to"], ws) for m in (promoter_msg, detractor_msg, silent_msg))
    ws.reply_to_message(promoter_msg["id"], "10 - the team loves it", at=epoch(replied))
    ws.reply_to_message(detractor_msg["id"], "Honestly? 3. Too many bugs lately.", at=epoch(replied))
    ws.reply_to_message(silent_msg["id"], "not now, thanks", at=epoch(replied))
    ws.rate_conversation(promoter_msg["conversation_id"], 2, "slow answer", at=epoch(replied + timedelta(hours=1)))

    reader = IntercomSurveys.from_settings(settings)
    result = capture_answers(store, {"intercom": reader}, shipped("nps_quarterly"), TICK + timedelta(hours=5))
    assert (result.nps, result.csat) == (2, 1)
    with store.connect() as conn:
        a = SurveyAnswer
        rows = conn.execute(select(a.account_id, a.contact_id, a.kind, a.score, a.answered_at, a.remark)).all()
        contacts = dict(conn.execute(select(Contact.email, Contact.id)).all())
    stored = {(a, k): (s, at, r, c) for a, c, k, s, at, r in rows}
    assert set(stored) == {(promoter, "nps"), (detractor, "nps"), (promoter, "csat")}
    assert stored[(promoter, "nps")][:2] == (10.0, replied)
    assert stored[(detractor, "nps")][0] == 3.0
    assert stored[(promoter, "csat")][0] == 2.0 and stored[(promoter, "csat")][2] == "slow answer"
    assert stored[(promoter, "nps")][3] == contacts[ws.get_contact(promoter_msg["to"])["email"]]

    again = capture_answers(store, {"intercom": reader}, shipped("nps_quarterly"), TICK + timedelta(hours=6))
    assert again.stored == 0  # nothing is stored twice; answered surveys are not even asked about again
    with store.connect() as conn:
        activity = conn.execute(select(ActivityEvent.account_id, ActivityEvent.value).where(
            ActivityEvent.external_id.like("survey:%"))).all()  # fmt: skip
    assert sorted(activity) == sorted([(promoter, 10.0), (detractor, 3.0)])

    # The next scoring: the promoter (healthy, ROI shown) enters advocacy, the detractor detractor_recovery.
    with store.begin() as conn:
        conn.execute(update(Account).where(Account.id == promoter).values(roi_pct=180.0))
    routed = shipped("advocacy", "detractor_recovery")
    score(store, AS_OF, routed)
    with store.connect() as conn:
        enrolled = set(conn.execute(select(ProgramEnrollment.program, ProgramEnrollment.account_id).where(
            ProgramEnrollment.status == "active")).all())  # fmt: skip
    assert ("advocacy", promoter) in enrolled and ("detractor_recovery", promoter) not in enrolled
    assert ("detractor_recovery", detractor) in enrolled and ("advocacy", detractor) not in enrolled
    with store.begin() as conn:
        conn.execute(update(ProgramEnrollment).where(ProgramEnrollment.account_id == detractor)
                     .values(holdout=False))  # fmt: skip
        run_tick(conn, routed, datetime.combine(AS_OF, datetime.max.time()), Limits(5, 1000))
    with store.connect() as conn:
        tasks = conn.execute(select(Action.account_id).where(Action.step == "recovery_call")).scalars().all()
    assert detractor in tasks


def test_sandbox_serves_replies_as_intercom_documents_them(intercom_linked):
    """Every response checked against Intercom's OpenAPI description (2.11) as the SDK receives it."""
    if not SPEC_2_11.exists():
        pytest.skip(f"Intercom's OpenAPI description is missing at {SPEC_2_11}")
    store, state, settings = intercom_linked
    ws = state.workspace
    contact = next(iter(ws.contacts))
    message = ws.create_message({"message_type": "inapp", "body": "How likely ...?", "from": {
        "type": "admin", "id": ws.admins[0]["id"]}, "to": {"type": "user", "id": contact}})  # fmt: skip
    client = IntercomClient(settings.intercom_access_token, base_url=settings.intercom_base_url,
                            response_hooks=[ResponseChecker().check])  # fmt: skip
    reader = IntercomSurveys(client)
    assert reader.nps_replies([message["id"]]) == []  # no conversation until the contact responds
    ws.reply_to_message(message["id"], "<b>9</b>", at=1_780_000_000)
    found = reader.client.request("POST", "conversations/search", json_body={
        "query": {"field": "source.id", "operator": "=", "value": message["id"]}})  # fmt: skip
    (conversation,) = found["conversations"]
    assert conversation["id"] == message["conversation_id"] and "conversation_parts" not in conversation
    assert conversation["source"]["delivered_as"] == "admin_initiated"
    typed = reader.client.sdk.conversations.find(conversation_id=conversation["id"])  # the SDK's own model
    assert typed.conversation_parts.conversation_parts[0].author.type == "user"
    (answer,) = reader.nps_replies([message["id"]])
    assert (answer.score, answer.message_id, answer.answered_at) == (9.0, message["id"],
                                                                      datetime(2026, 5, 28, 20, 26, 40))  # fmt: skip
    assert reader.ratings(datetime(2026, 5, 28)) == []
    ws.rate_conversation(message["conversation_id"], 4, "quick", at=1_780_000_600)
    (rating,) = reader.ratings(datetime(2026, 5, 28))
    assert (rating.kind, rating.score, rating.remark) == ("csat", 4.0, "quick")
    assert rating.contact_email == ws.get_contact(contact)["email"]
    assert reader.ratings(datetime(2026, 5, 29)) == []  # rated before that


@pytest.mark.parametrize(
    ("reply", "score"),
    [("9", 9), ("<p>I'd say 8/10</p>", 8), ("10 - great", 10), ("0", 0), ("not now", None), ("11", None),
     ("7.5", None), ("2026 was fine", None), ("&nbsp;6&nbsp;", 6)],
)  # fmt: skip
def test_the_score_is_read_from_the_reply_text(reply, score):
    assert nps_score(reply) == score


def test_survey_columns_take_each_accounts_latest_answer_within_90_days():
    from engine.programs.surveys import survey_columns

    now = pd.Timestamp("2026-06-30")
    answers = pd.DataFrame({
        "account_id": [1, 1, 2, 3, 3], "kind": ["nps", "nps", "nps", "csat", "nps"], "score": [3, 9, 10, 4, 2],
        "answered_at": pd.to_datetime(["2026-06-01", "2026-06-20", "2026-01-01", "2026-06-29", "2026-06-10"]),
    })  # fmt: skip
    out = survey_columns(answers, pd.Index([1, 2, 3, 4]), now)
    assert out.loc[1, "nps_last"] == 9 and out.loc[1, "nps_days"] == 10
    assert pd.isna(out.loc[2, "nps_last"])  # older than 90 days
    assert out.loc[3, "csat_last"] == 4 and out.loc[3, "nps_last"] == 2
    assert out.loc[4].isna().all()


@pytest.mark.parametrize(
    ("vendor", "topic", "status", "announced"),
    [("intercom", "conversation.user.replied", "received", True), ("intercom", "conversation.rating.added",
     "received", True), ("intercom", "conversation.user.replied", "processed", False),
     ("intercom", "contact.user.created", "received", False), ("hubspot", "conversation.user.replied", "received",
     False)],
)  # fmt: skip
def test_a_webhook_announcing_a_reply_or_rating_makes_the_processing_read_answers(store, vendor, topic, status,
                                                                                   announced):  # fmt: skip
    with store.begin() as conn:
        assert not answers_announced(conn)
        conn.execute(insert(WebhookEvent).values(vendor=vendor, event_id="notif_1", received_at=TICK, status=status,
                                                 kind=topic, object="conversation", object_id="1001"))  # fmt: skip
        assert answers_announced(conn) is announced


class _Reader:
    """A survey reader that answers only the message ids it is asked about (as Intercom's search does)."""

    def __init__(self, replies: dict[str, float]) -> None:
        self.replies, self.asked = replies, []

    def answers(self, message_ids, since):
        self.asked += list(message_ids)
        return [VendorAnswer("nps", score, TICK, f"reply-{mid}", None, mid) for mid, score in self.replies.items()
                if mid in message_ids]  # fmt: skip

    def close(self) -> None:
        pass


def test_answers_match_the_message_id_of_the_vendor_that_reports_them(store):
    """One survey step sent by two vendors: each vendor's id is kept on its own delivery (the action's
    `external_id` holds only the last), so each vendor is asked about its own message and its answer lands on the
    account that message went to, even when the other vendor uses the same id for another account's message."""
    with store.begin() as conn:
        conn.execute(insert(Account), [{"id": i, "key": f"A{i}", "name": f"Acme {i}", "status": "active"}
                                       for i in (1, 2)])  # fmt: skip
        for account, ids in ((1, {"intercom": "m-1", "othervendor": "m-2"}), (2, {"othervendor": "m-1"})):
            key = f"program:{account}:survey"
            conn.execute(insert(Action).values(account_id=account, playbook="nps_quarterly", step="survey",
                                               kind="inapp_message", status="done", dedupe_key=key,
                                               external_id=list(ids.values())[-1], created_at=TICK))  # fmt: skip
            conn.execute(insert(OutboxRow), [
                {"vendor": vendor, "operation": "send_message", "account_id": account, "dedupe_key": f"{key}:{vendor}",
                 "payload": {}, "status": "done", "attempts": 1, "external_id": mid, "created_at": TICK,
                 "updated_at": TICK} for vendor, mid in ids.items()
            ])  # fmt: skip
    readers = {"intercom": _Reader({"m-1": 10.0}), "othervendor": _Reader({"m-1": 2.0, "m-2": 4.0})}
    result = capture_answers(store, readers, shipped("nps_quarterly"), TICK + timedelta(hours=1))
    assert sorted(readers["intercom"].asked) == ["m-1"]
    assert sorted(readers["othervendor"].asked) == ["m-1", "m-2"]
    with store.connect() as conn:
        rows = conn.execute(select(SurveyAnswer.vendor, SurveyAnswer.message_id, SurveyAnswer.account_id,
                                   SurveyAnswer.score)).all()  # fmt: skip
    assert sorted(rows) == [("intercom", "m-1", 1, 10.0), ("othervendor", "m-1", 2, 2.0),
                            ("othervendor", "m-2", 1, 4.0)]  # fmt: skip
    assert result.nps == 3
    again = capture_answers(store, readers, shipped("nps_quarterly"), TICK + timedelta(hours=2))
    assert again.stored == 0
