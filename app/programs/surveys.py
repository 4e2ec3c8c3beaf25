"""Survey answers captured back into the store, and what programs read of them.

A program step with `survey: nps` (nps_survey, nps_quarterly) goes out as a message; the vendor reports the
answers (connectors/surveys.py: for Intercom, the contact's reply to that message, and conversation ratings for
CSAT). `capture_answers` asks each vendor with a survey reader for the answers to the survey messages it delivered
in the last SURVEY_WINDOW_DAYS that have none yet (by its own message ids, read from its outbox rows), and for the
ratings given since its last run, and stores each answer once per contact and account with its date and score
(`survey_answers`, deduped by the vendor's id).

An NPS answer is also stored as `survey_response` activity, the canonical event every other survey source
(a mapped vendor event, an import) produces too: the health score's `nps_90d` sees it, and programs read each
account's latest answer (`nps_last`, `nps_days`; engine/programs/surveys.py). So after the next scoring a promoter
(9-10, healthy, ROI shown) enters advocacy and a detractor (0-6) gets detractor_recovery's task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, and_, or_, select

from app.programs.definitions import ActiveProgram
from app.store.bulk import chunked, in_ids, result_frame, staged_insert, upsert
from app.store.load import refresh_rollups
from app.store.models import Action, ActivityEvent, Contact, OutboxRow, SurveyAnswer, SyncCursor, WebhookEvent
from connectors.registry import all_connectors
from connectors.surveys import SurveyAnswer as VendorAnswer
from connectors.surveys import SurveyReader
from engine.canonical import EventKind
from engine.programs.surveys import SURVEY_COLUMNS, WINDOW_DAYS, survey_columns

SURVEY_WINDOW_DAYS = 30  # a survey message is answered within this long, or counts as unanswered
CURSOR_OBJECT = "survey_ratings"
OVERLAP = timedelta(hours=1)  # ratings are read again this far back; the vendor's id dedupes them
ANSWER_COLUMNS = ["account_id", "contact_id", "kind", "score", "answered_at", "vendor", "external_id", "message_id",
                  "remark"]  # fmt: skip
EVENT_COLUMNS = ["account_id", "contact_id", "occurred_at", "kind", "count", "value", "source", "external_id"]


@dataclass
class CaptureResult:
    stored: int = 0
    nps: int = 0
    csat: int = 0
    accounts: list[int] = field(default_factory=list)


def survey_steps(programs: Mapping[str, ActiveProgram]) -> dict[tuple[str, str], str]:
    """(program, step) -> what it asks (nps / csat), for every survey step of the active programs."""
    return {(name, s.key): s.survey for name, a in programs.items() for s in a.program.steps if s.survey}


def sent_surveys(conn: Connection, programs: Mapping[str, ActiveProgram], now: datetime, vendor: str) -> pd.DataFrame:
    """Survey messages `vendor` delivered in the last SURVEY_WINDOW_DAYS with no answer from it stored yet:
    account_id, message_id (that vendor's id of the message).

    The id is read from the vendor's own outbox row (one per action and vendor, keyed `<action key>:<vendor>`),
    not from the action, whose `external_id` holds only the last vendor's id when several sent the same step:
    so an answer is matched to the message of the vendor that reports it, and ids of two vendors never mix."""
    steps = survey_steps(programs)
    if not steps:
        return pd.DataFrame(columns=["account_id", "message_id"])
    delivery = and_(OutboxRow.dedupe_key == Action.dedupe_key + ":" + vendor, OutboxRow.vendor == vendor)
    query = (
        select(Action.account_id, Action.playbook, Action.step, OutboxRow.external_id)
        .join(OutboxRow, delivery)
        .where(Action.playbook.in_(sorted({p for p, _ in steps})), OutboxRow.status == "done",
               OutboxRow.external_id.is_not(None), Action.created_at >= now - timedelta(days=SURVEY_WINDOW_DAYS))
    )  # fmt: skip
    rows = result_frame(conn.execute(query), ["account_id", "program", "step", "message_id"])
    rows = rows[[(p, s) in steps for p, s in zip(rows["program"], rows["step"], strict=True)]]
    answered = set()
    for chunk in chunked(rows["message_id"].tolist()):
        query = select(SurveyAnswer.message_id).where(SurveyAnswer.vendor == vendor, SurveyAnswer.message_id.in_(chunk))
        answered.update(conn.execute(query).scalars())
    return rows.loc[~rows["message_id"].isin(answered), ["account_id", "message_id"]].reset_index(drop=True)


def _contacts(conn: Connection, emails: list[str]) -> pd.DataFrame:
    rows = []
    for chunk in chunked(sorted({e.lower() for e in emails if e})):
        query = select(Contact.email, Contact.id, Contact.account_id).where(Contact.email.in_(chunk))
        rows += conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["email", "contact_id", "contact_account"])
    return frame.assign(email=frame["email"].str.lower()).drop_duplicates("email").set_index("email")


def store_answers(conn: Connection, vendor: str, answers: list[VendorAnswer], sent: pd.DataFrame) -> pd.DataFrame:
    """Store answers per contact and account (a reply's account is the one its survey went to; a rating's, its
    contact's); NPS answers also become survey_response activity. Returns the rows stored (new ones only)."""
    if not answers:
        return pd.DataFrame(columns=ANSWER_COLUMNS)
    frame = pd.DataFrame([a.__dict__ for a in answers])
    frame["email"] = frame["contact_email"].fillna("").str.lower()
    frame = frame.join(_contacts(conn, frame["email"].tolist()), on="email")
    surveyed = sent.drop_duplicates("message_id").set_index("message_id")["account_id"]
    frame["account_id"] = frame["message_id"].map(surveyed).fillna(frame["contact_account"])
    frame = frame[frame["account_id"].notna()].assign(vendor=vendor)
    frame["account_id"] = frame["account_id"].astype("int64")
    frame["contact_id"] = frame["contact_id"].astype("Int64")
    known = set()
    for chunk in chunked(frame["external_id"].tolist()):
        query = select(SurveyAnswer.external_id).where(
            SurveyAnswer.vendor == vendor, SurveyAnswer.external_id.in_(chunk)
        )
        known.update(conn.execute(query).scalars())
    new = frame[~frame["external_id"].isin(known)].drop_duplicates("external_id")
    staged_insert(conn, SurveyAnswer.__table__, new, ANSWER_COLUMNS, conflict=["vendor", "external_id"])
    nps = new[new["kind"] == "nps"]
    if not nps.empty:
        events = pd.DataFrame({
            "account_id": nps["account_id"], "contact_id": nps["contact_id"], "occurred_at": nps["answered_at"],
            "kind": EventKind.SURVEY_RESPONSE.value, "count": 1, "value": nps["score"], "source": vendor,
            "external_id": "survey:" + nps["external_id"],
        })  # fmt: skip
        staged_insert(conn, ActivityEvent.__table__, events, EVENT_COLUMNS, conflict=["source", "external_id"])
        days = pd.to_datetime(nps["answered_at"])
        refresh_rollups(conn, sorted(set(nps["account_id"].tolist())), days.min().date(), days.max().date())
    return new[ANSWER_COLUMNS]


def _since(conn: Connection, vendor: str) -> datetime | None:
    cursor = conn.execute(
        select(SyncCursor.cursor).where(SyncCursor.vendor == vendor, SyncCursor.object == CURSOR_OBJECT)
    ).scalar()
    return datetime.fromisoformat(cursor) - OVERLAP if cursor else None


def capture_answers(engine: Engine, readers: Mapping[str, SurveyReader], programs: Mapping[str, ActiveProgram],
                    now: datetime) -> CaptureResult:  # fmt: skip
    """Ask each vendor's survey reader for new answers and store them (see the module docstring). The vendor is
    asked outside any transaction; each vendor's answers and its cursor commit together."""
    result = CaptureResult()
    touched: set[int] = set()
    for vendor, reader in readers.items():
        with engine.connect() as conn:
            sent, since = sent_surveys(conn, programs, now, vendor), _since(conn, vendor)
        answers = reader.answers(sent["message_id"].astype(str).tolist(), since)
        with engine.begin() as conn:
            stored = store_answers(conn, vendor, answers, sent)
            upsert(conn, SyncCursor.__table__, [{"vendor": vendor, "object": CURSOR_OBJECT, "cursor": now.isoformat(),
                                                 "updated_at": now}], conflict=["vendor", "object"])  # fmt: skip
        result.stored += len(stored)
        result.nps += int((stored["kind"] == "nps").sum())
        result.csat += int((stored["kind"] == "csat").sum())
        touched.update(int(a) for a in stored["account_id"])
    result.accounts = sorted(touched)
    return result


def answers_announced(conn: Connection) -> bool:
    """Whether a waiting webhook event announces a survey answer (a vendor's `survey_topics`, e.g. Intercom's
    conversation.user.replied): the webhook processing then reads the answers at once."""
    clauses = [and_(WebhookEvent.vendor == c.name, WebhookEvent.kind.in_(c.survey_topics))
               for c in all_connectors() if c.survey_topics]  # fmt: skip
    if not clauses:
        return False
    query = select(WebhookEvent.id).where(WebhookEvent.status == "received", or_(*clauses)).limit(1)
    return conn.execute(query).first() is not None


def add_survey_columns(conn: Connection, frame: pd.DataFrame, now: datetime) -> None:
    """Fill SURVEY_COLUMNS of a condition frame (index = account id) from the store: the latest NPS answer
    (survey_response activity, whatever brought it in) and the latest CSAT answer of each account."""
    since = now - timedelta(days=WINDOW_DAYS)
    rows = []
    ids = [int(i) for i in frame.index]
    for events, answers in zip(in_ids(conn, ActivityEvent.account_id, ids), in_ids(conn, SurveyAnswer.account_id, ids),
                               strict=True):  # fmt: skip
        nps = select(ActivityEvent.account_id, ActivityEvent.value, ActivityEvent.occurred_at).where(
            events, ActivityEvent.kind == EventKind.SURVEY_RESPONSE.value,
            ActivityEvent.occurred_at > since, ActivityEvent.value.is_not(None),
        )  # fmt: skip
        rows += [(a, "nps", v, t) for a, v, t in conn.execute(nps)]
        csat = select(SurveyAnswer.account_id, SurveyAnswer.score, SurveyAnswer.answered_at).where(
            answers, SurveyAnswer.kind == "csat", SurveyAnswer.answered_at > since
        )
        rows += [(a, "csat", v, t) for a, v, t in conn.execute(csat)]
    answers = pd.DataFrame(rows, columns=["account_id", "kind", "score", "answered_at"])
    frame[list(SURVEY_COLUMNS)] = survey_columns(answers, frame.index, pd.Timestamp(now))
