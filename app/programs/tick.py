"""Running programs against the store, set-based: who enters, exits and escalates (after each scoring), and the
steps that fall due (every scheduler tick), in the caller's transaction together with the actions and outbox rows
they cause.

Why nothing is sent twice or skipped: a tick first takes the programs lock (a transaction-scoped advisory lock
on PostgreSQL; SQLite's single writer lock, taken by the tick's first statement, a write), so ticks run one after
another and each reads what the one before committed. Beneath the lock every write is idempotent anyway: a sent
step's action (which is its history record too, `program_history`) and a held, covered or suppressed step's event
carry a dedupe key per enrollment and step (INSERT … ON CONFLICT DO NOTHING on a unique key), a sent step's outbox
rows are written only for an action this round wrote (see _write_round), and an enrollment moves on only by a
conditional UPDATE (`WHERE step = <the step just sent>`). A worker killed mid-tick rolls back what it had not
committed (the whole transaction; with parallel writers, the account buckets not yet committed, see _write), so the
next tick sends exactly what is left. A tick that finds an enrollment several steps behind sends them in order, one
round per step, never jumping over one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    and_,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.sql import ColumnElement

from app.programs.definitions import ActiveProgram
from app.programs.eligibility import no_recipients, recipients
from app.programs.hygiene import Limits, decide
from app.programs.surveys import add_survey_columns
from app.programs.texts import message_data, names_any, step_texts
from app.store.bulk import (
    chunked,
    copy_frame,
    fetch_frame,
    ignoring_conflicts,
    in_ids,
    insert_from_select_ignoring_conflicts,
    result_frame,
    staged_insert,
    temp_table,
)
from app.store.db import schema_xact_lock
from app.store.models import Account, Action, CurrentScore, ProgramEnrollment, ProgramEvent
from app.writeback.outbox import Planned, insert_outbox_rows, json_object, release_due_actions, release_status
from engine.programs.definition import CUSTOMER_CHANNELS
from engine.programs.plan import condition_frame, first_due_days, held_out, membership, step_table

__all__ = ["Limits", "TickResult", "advance", "enroll", "exit_enrollments", "run_tick"]

PE = ProgramEnrollment.__table__
EVENTS = ProgramEvent.__table__
EVENT_KEY = ["enrollment_id", "dedupe_key"]  # an event's unique key (ux_program_events_once)
LOCK_KEY = 7_242_011  # pg_advisory_xact_lock key of the program engine
ENGINE_ACTOR = "program engine"


@dataclass
class TickResult:
    sent: int = 0
    held: int = 0
    covered: int = 0
    deferred: int = 0
    suppressed: int = 0
    completed: int = 0
    exited: int = 0
    outbox_rows: int = 0
    by_step: dict[str, int] = field(default_factory=dict)


def take_lock(conn: Connection, shared: bool = False) -> None:
    """Serialize program ticks and enrollment updates (see the module docstring), until the transaction ends.

    `shared` is for the shards or parts of one scoring run (app.shards, app.rescoring): each enters only the
    accounts of its own id range, and every row it writes under the lock is one of those accounts' (enrollments
    unique per program and account, history events keyed by enrollment, milestones by account), so they cannot
    collide with each other and hold the lock together; a tick, and every other enrollment, takes it exclusively
    and waits for them (and they for it). Two runs of that kind never share it: see app.rescoring.take_run_lock."""
    if conn.dialect.name == "postgresql":
        schema_xact_lock(conn, LOCK_KEY, shared)
    else:  # a write first: SQLite hands the one writer lock to this transaction before it reads anything
        conn.execute(update(PE).where(PE.c.id == -1).values(step=0))


def _log_events(conn: Connection, kind: str, where, now: datetime, tag: str | None = None) -> None:
    """One history event per enrollment matching `where`, keyed `<kind>:<tag>` within it so a rerun adds none."""
    key = f"{kind}:{tag}" if tag else kind
    source = select(PE.c.id, PE.c.account_id, PE.c.program, literal(kind), literal(now, DateTime()), literal(key))
    columns = ["enrollment_id", "account_id", "program", "kind", "at", "dedupe_key"]
    conn.execute(ignoring_conflicts(conn, EVENTS, columns, source.where(where), EVENT_KEY))


def _arr_now():
    return select(Account.arr).where(Account.id == PE.c.account_id).scalar_subquery()


CURRENT_COLUMNS = ["id", "account_id", "status", "tier", "ended_at"]


def _current(conn: Connection, account_ids: list[int]) -> dict[str, pd.DataFrame]:
    """The enrollments of these accounts, by program, in one read of their id span narrowed here to the accounts.

    Read by the span, not by `account_id = ANY(ids)`: in a run's first chunks the table's statistics still say it is
    empty, so PostgreSQL scanned a program's rows by the program index and tested each against the 25,000-id array
    element by element (~50 s per program and chunk at a million accounts); a range is an index range scan whatever
    the statistics say, and a chunk's ids fill their span."""
    frame = result_frame(conn.execute(select(PE.c.program, *(PE.c[c] for c in CURRENT_COLUMNS))
                                      .where(_span(account_ids))))  # fmt: skip
    frame = frame[frame["account_id"].isin(account_ids)]
    return {name: group.drop(columns="program").reset_index(drop=True) for name, group in frame.groupby("program")}


def _span(account_ids) -> ColumnElement[bool]:
    """The accounts' id span: with it, a statement that picks enrollments by id also keeps to the span of a scored
    chunk's accounts, which the (account_id, status) index serves whatever the statistics say.

    Why: after a first run the table's statistics may still say it is empty (autovacuum off, or not yet run), and
    planned so, a daily run's exit (`id = ANY(<ids>) AND status IN …`) read the whole (account_id, status) index
    for the status and filtered the ids: 323 s for the exits of 200,000 accounts instead of 0.07 s (docs/scale.md).
    Bounded by the span, any plan reads at most the chunk's enrollments."""
    return PE.c.account_id.between(int(min(account_ids)), int(max(account_ids)))


def exit_enrollments(conn: Connection, ids: pd.Series, reason: str, now: datetime,
                     span: ColumnElement[bool] | None = None) -> int:  # fmt: skip
    """End these active or completed enrollments with `reason` (history event included); returns how many.
    `span`: a filter all of them match (`_span` of their accounts), which bounds the statements' plans."""
    exited = 0
    for chunk in in_ids(conn, PE.c.id, ids):
        chunk = chunk if span is None else and_(chunk, span)
        where = and_(chunk, PE.c.status.in_(("active", "completed")))
        exited += conn.execute(
            update(PE).where(where).values(status="exited", exit_reason=reason, next_due_at=None,
                                           ended_at=func.coalesce(PE.c.ended_at, now), arr_at_end=_arr_now())
        ).rowcount  # fmt: skip
        _log_events(conn, "exited", and_(chunk, PE.c.exit_reason == reason), now, reason)
    return exited


def enroll(
    conn: Connection, programs: dict[str, ActiveProgram], scored: pd.DataFrame, now: datetime, shard: bool = False
) -> dict:
    """After a scoring: exits, escalations, CSM requests and new entries of the scored accounts, set-based.

    `shard`: the scored accounts are one chunk of a scoring shard's id range, so the programs lock is taken shared
    with the run's other shards (see take_lock)."""
    if scored.empty or not programs:
        return {}
    take_lock(conn, shared=shard)
    frame = condition_frame(scored)
    add_survey_columns(conn, frame, now)
    counts: dict[str, dict[str, int]] = {}
    account_ids = [int(i) for i in frame.index]
    enrolled, span = _current(conn, account_ids), _span(account_ids)
    for name, active in programs.items():
        program, state = active.program, membership(active.program, frame)
        current = enrolled.get(name, pd.DataFrame(columns=CURRENT_COLUMNS))
        open_rows = current[current["status"].isin(["active", "completed"])]
        reasons = state["exit_reason"].reindex(open_rows["account_id"]).to_numpy()
        exited = 0
        for reason in sorted({r for r in reasons if isinstance(r, str)}):
            exited += exit_enrollments(conn, open_rows["id"][reasons == reason], reason, now, span)
        active_rows = current[(current["status"] == "active")]
        active_rows = active_rows[pd.isna(state["exit_reason"].reindex(active_rows["account_id"]).to_numpy())]
        escalated = _escalate(conn, program, active_rows, state, now, span)
        activated = _activate_requests(conn, active, current, state, now)
        entered = _enter(conn, active, current, state, now, frame["arr"])
        counts[name] = {"exited": exited, "escalated": escalated, "requests": activated, "entered": entered}
    return counts


def _escalate(conn: Connection, program, active_rows: pd.DataFrame, state: pd.DataFrame, now: datetime,
              span: ColumnElement[bool]) -> int:  # fmt: skip
    """Move enrollments up to the highest tier that now holds (never down); steps already sent stay sent. `span`:
    the scored accounts' (`_span`), bounding the statements' plans."""
    if not program.tiers or active_rows.empty:
        return 0
    target = state["tier"].reindex(active_rows["account_id"]).to_numpy()
    rows = active_rows.assign(target=target)
    rows = rows[rows["target"] > rows["tier"].astype(int)]
    moved = 0
    for (old, new), group in rows.groupby(["tier", "target"]):
        due = now + timedelta(days=first_due_days(program, int(new)))
        for chunk in in_ids(conn, PE.c.id, group["id"]):
            chunk = and_(chunk, span)
            moved += conn.execute(
                update(PE).where(chunk, PE.c.tier == int(old), PE.c.status == "active")
                .values(tier=int(new), step=0, tier_entered_at=now, next_due_at=due)
            ).rowcount  # fmt: skip
            _log_events(conn, "escalated", and_(chunk, PE.c.tier == int(new)), now, f"tier{int(new)}")
    return moved


def _entry_values(active: ActiveProgram, tier: int, audience: str, now: datetime) -> dict:
    return {
        "status": "active", "version": active.version, "audience": audience, "tier": tier, "step": 0,
        "entered_at": now, "tier_entered_at": now, "last_step_at": None, "exit_reason": None, "ended_at": None,
        "next_due_at": now + timedelta(days=first_due_days(active.program, tier)),
    }  # fmt: skip


def _activate_requests(
    conn: Connection, active: ActiveProgram, current: pd.DataFrame, state: pd.DataFrame, now: datetime
) -> int:
    """A CSM's request from the account card enters the account (never into the control group: a person asked;
    its `entered_at` is its history's `entered` row); one for an account already active in the program is marked
    `merged`."""
    requested = current[current["status"] == "requested"]
    if requested.empty:
        return 0
    busy = set(current.loc[current["status"] == "active", "account_id"])
    merged = requested[requested["account_id"].isin(busy)]
    for chunk in in_ids(conn, PE.c.id, merged["id"]):
        conn.execute(update(PE).where(chunk, PE.c.status == "requested").values(status="merged"))
    todo = requested[~requested["account_id"].isin(busy)].drop_duplicates("account_id")
    tiers = state["tier"].reindex(todo["account_id"]).fillna(0).clip(lower=0).astype(int).to_numpy()
    audiences = state["audience"].reindex(todo["account_id"]).fillna("default").to_numpy()
    done = 0
    for (tier, audience), group in todo.assign(t=tiers, a=audiences).groupby(["t", "a"]):
        values = {**_entry_values(active, int(tier), audience, now), "holdout": False, "arr_at_entry": _arr_now()}
        for chunk in in_ids(conn, PE.c.id, group["id"]):
            done += conn.execute(update(PE).where(chunk, PE.c.status == "requested").values(**values)).rowcount
    return done


def _enter(
    conn: Connection, active: ActiveProgram, current: pd.DataFrame, state: pd.DataFrame, now: datetime, arr: pd.Series
) -> int:
    """New enrollments for accounts whose entry holds, none active, and the re-entry policy allows it, each with
    its account's ARR (`arr`, read with the scores in this transaction) as `arr_at_entry`. An enrollment's
    `entered_at` is its history's `entered` row (`program_history`): no event is written per entry.

    The rows are laid out a column at a time and written in one bulk statement (COPY on PostgreSQL), with no
    conflict check: none of these accounts is active in the program (`current`, read under the programs lock by
    this transaction) and nothing else can make it so meanwhile (every write that makes an enrollment active,
    here and in `_activate_requests`, holds the lock exclusively, or shared by shards of disjoint account ranges;
    a card's request is `requested`, not active). Should one slip through anyway, the partial unique index
    `ux_program_enrollments_active` fails the run rather than keep two active enrollments; an `ON CONFLICT DO
    NOTHING` through a staging table cost a million-account first run twice each row and a speculative insertion
    (docs/scale.md). The ARR travels with the rows rather than by an UPDATE after the insert, which wrote every new
    row a second time."""
    program = active.program
    candidates = state.index[state["entry"].to_numpy()]
    occupied = set(current.loc[current["status"].isin(["active", "requested"]), "account_id"])
    ended = current[current["status"].isin(["completed", "exited"])]
    if program.reentry == "never":
        occupied |= set(ended["account_id"])
    elif program.reentry == "after_days":
        last = ended.groupby("account_id")["ended_at"].max()
        occupied |= set(last.index[last > now - timedelta(days=program.reentry_days)])
    ids = np.array([a for a in candidates if a not in occupied], dtype=np.int64)
    if len(ids) == 0:
        return 0
    holdout = pd.Series(held_out(program.program, ids, program.holdout), index=ids)
    frames = [
        pd.DataFrame({
            **_entry_values(active, tier, audience, now), "account_id": group, "program": program.program,
            "holdout": holdout[group].to_numpy(), "requested_by": ENGINE_ACTOR, "source": "engine",
            "requested_at": now, "arr_at_entry": arr.reindex(group).to_numpy(dtype="float64"),
        })
        for tier, audience, group in _groups(ids, state)
    ]  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    return staged_insert(conn, PE, frame, list(frame.columns))


def _groups(ids: np.ndarray, state: pd.DataFrame):
    sub = state.loc[ids, ["tier", "audience"]]
    for (tier, audience), group in sub.groupby(["tier", "audience"]):
        yield int(tier), str(audience), group.index.to_numpy()


# What a round reads per due enrollment: its position, and its account's data (the decisions and the texts read it),
# with the risk (0-100) of its current score, which the CSM task budget is spent by (ARR at risk): one joined row per
# account (current_scores), not a search of the score history per enrollment.
DUE = [PE.c.id, PE.c.account_id, PE.c.program, PE.c.tier, PE.c.step, PE.c.audience, PE.c.holdout, PE.c.tier_entered_at,
       Account.owner, Account.arr, Account.name, Account.plan, Account.seats_active, Account.seats_purchased,
       Account.roi_pct, Account.customer_since, Account.renewal_date, CurrentScore.risk]  # fmt: skip
DUE_COLUMNS = [c.key for c in DUE]


def _due_where(now: datetime, names: list[str]):
    return and_(PE.c.status == "active", PE.c.next_due_at <= now, PE.c.program.in_(names))


def _due(conn: Connection, now: datetime, names: list[str]) -> pd.DataFrame:
    query = (select(*DUE).select_from(PE).join(Account, Account.id == PE.c.account_id)
             .outerjoin(CurrentScore, CurrentScore.account_id == PE.c.account_id)
             .where(_due_where(now, names)))  # fmt: skip
    due = fetch_frame(conn, query, DUE_COLUMNS)
    for column in ("arr", "seats_active", "seats_purchased", "roi_pct", "risk"):
        due[column] = pd.to_numeric(due[column], errors="coerce")
    return due.astype({"id": "int64", "account_id": "int64", "tier": "int64", "step": "int64"})


def _exit_churned(conn: Connection, now: datetime) -> int:
    """Enrollments of accounts that churned leave with reason `churned` (nothing more is sent to them)."""
    churned = select(Account.id).where(Account.status == "churned")
    where = and_(PE.c.status.in_(("active", "completed")), PE.c.account_id.in_(churned))
    count = conn.execute(
        update(PE).where(where).values(status="exited", exit_reason="churned", next_due_at=None,
                                       ended_at=func.coalesce(PE.c.ended_at, now), arr_at_end=_arr_now())
    ).rowcount  # fmt: skip
    if count:
        _log_events(conn, "exited", and_(PE.c.exit_reason == "churned", PE.c.ended_at >= now - timedelta(days=1)),
                    now, "churned")  # fmt: skip
    return count


EVENT_KIND = {"send": "step_sent", "held": "step_held", "covered": "step_covered", "suppressed": "step_suppressed"}


def _next_positions(programs: dict[str, ActiveProgram], due: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Where each row goes: the next step (or completion) for a decided row, the deferral date for the rest."""
    steps = step_table({n: a.program for n, a in programs.items()})
    decided = (due["outcome"] != "deferred").to_numpy()
    nxt = due[["program", "tier"]].assign(step=due["step"] + 1).merge(
        steps, on=["program", "tier", "step"], how="left"
    ).set_axis(due.index)  # fmt: skip
    offset = pd.to_timedelta(nxt["day"].astype("float64").fillna(0.0), unit="D")
    from_entry = pd.to_datetime(due["tier_entered_at"]) + offset
    from_now = pd.Timestamp(now) + offset
    next_due = from_entry.where(nxt["after"] == "entry", from_now).where(nxt["key"].notna(), pd.NaT)
    finished = decided & nxt["key"].isna().to_numpy()
    return pd.DataFrame({
        "new_step": np.where(decided, due["step"] + 1, due["step"]).astype(int),
        "status": np.where(finished, "completed", "active"),
        "next_due_at": next_due.where(decided, pd.to_datetime(due["defer_until"])),
    }, index=due.index)  # fmt: skip


ROUND_COLUMNS = {
    "id": Integer, "account_id": Integer, "program": String(64), "step_key": String(48), "event_kind": String(32),
    "channel": String(32), "problem": String(48), "old_step": Integer, "new_step": Integer, "status": String(16),
    "next_due_at": DateTime, "title": Text, "body": Text, "priority": String(16), "audience": String(48),
    "action_key": String(255),
}  # fmt: skip


def _stage_round(conn: Connection, due: pd.DataFrame, texts: pd.DataFrame, moves: pd.DataFrame):
    """One staging table holding every decision of the round: what the three set-based writes read."""
    frame = pd.DataFrame({
        "id": due["id"], "account_id": due["account_id"], "program": due["program"], "step_key": due["key"],
        "event_kind": due["outcome"].map(EVENT_KIND), "channel": due["channel"], "problem": due["problem"],
        "old_step": due["step"], **moves, "title": texts["title"].reindex(due.index),
        "body": texts["body"].reindex(due.index), "priority": due["priority"], "audience": due["audience"],
        "action_key": "program:" + due["id"].astype(str) + ":" + due["key"],
    })  # fmt: skip
    stage = temp_table(conn, "_stage_program_round", [Column(n, t) for n, t in ROUND_COLUMNS.items()])
    columns = list(ROUND_COLUMNS)
    copy_frame(conn, stage, frame, columns)
    return stage


def _write_round(conn: Connection, stage, sending: int, now: datetime) -> tuple[int, int]:
    """From the staged round (`sending` rows of it to send), set-based: the history events of the rows held, covered
    or suppressed, the actions of the rows sent and their outbox rows, and the enrollments' move (only those still at
    the step the round read; `_move`). Returns (enrollments moved, outbox rows).

    A sent step's action is its history record (`program_history` derives its `step_sent` row: no event is written
    for it), written in its final status, `released` or `no_target` (an action written `planned` and then updated
    costs PostgreSQL a second row version, its index entries and foreign key check), with its enrollment and
    problem. A step whose action exists already (a newer version of the program put it at a later position, an
    escalation reached a step the lower tier sent, a rerun) gets no action and no outbox row again: when the actions
    insert wrote fewer rows than the round sends, the rows whose action is older than the insert (an id at most the
    largest before it: ids only grow, and under the programs lock every such action was committed before) lose
    their key, by an index lookup per row. A round of new steps skips the lookups."""
    at = literal(now, DateTime())
    sent = stage.c.event_kind == EVENT_KIND["send"]
    events = select(stage.c.id, stage.c.account_id, stage.c.program, stage.c.event_kind, stage.c.step_key,
                    stage.c.channel, stage.c.problem, at, literal("step:") + stage.c.step_key)  # fmt: skip
    insert_from_select_ignoring_conflicts(conn, EVENTS, EVENT_COLUMNS, events.where(~sent), EVENT_KEY)
    fields = _action_fields(stage)
    planned = Planned(stage, stage.c.account_id, stage.c.channel, literal(now.isoformat()), stage.c.action_key,
                      fields, sent)  # fmt: skip
    before = conn.execute(select(func.coalesce(func.max(Action.id), 0))).scalar_one()
    actions = select(stage.c.account_id, stage.c.program, stage.c.step_key, stage.c.channel, at,
                     release_status(planned, now), stage.c.action_key, at, json_object(conn, fields), stage.c.id,
                     stage.c.problem).where(sent)  # fmt: skip
    if insert_from_select_ignoring_conflicts(conn, Action.__table__, ACTION_COLUMNS, actions, ["dedupe_key"]) < sending:
        older = select(Action.id).where(Action.dedupe_key == stage.c.action_key, Action.id <= before).exists()
        conn.execute(update(stage).where(sent, older).values(action_key=None))
        planned = replace(planned, where=and_(sent, stage.c.action_key.is_not(None)))
    created = insert_outbox_rows(conn, planned, now)
    moved = 0
    for finished in (False, True):
        moved += conn.execute(
            update(PE)
            .where(PE.c.id == stage.c.id, PE.c.step == stage.c.old_step, PE.c.status == "active",
                   stage.c.status == ("completed" if finished else "active"))
            .values(**_move(stage, at, finished))
        ).rowcount  # fmt: skip
    stage.drop(conn)
    return moved, created


def _move(stage, at, finished: bool) -> dict:
    """The columns an enrollment's move sets. One that stays active keeps its status and `ended_at` out of the SET
    list: SQLite rewrites the entry of every index holding a column the SET names, changed or not (three of the
    table's indexes hold `status`), and the move's moment is the tick's, so it is not staged per row."""
    sent = case((stage.c.event_kind.is_not(None), at), else_=PE.c.last_step_at)  # a deferred row was not sent
    if finished:
        return {"step": stage.c.new_step, "status": "completed", "next_due_at": None, "ended_at": at,
                "last_step_at": at}  # fmt: skip
    return {"step": stage.c.new_step, "next_due_at": stage.c.next_due_at, "last_step_at": sent}


def _action_fields(stage) -> dict:
    """The JSON payload's fields of a sent step's action, built by the database from the staged texts: title, body,
    priority, channel, program, enrollment, and the `reason` a CRM task shows the CSM (its body and the program step
    it comes from; customers never see it)."""
    source = ("program " + stage.c.program + ", step " + stage.c.step_key + ", "
              + func.coalesce(stage.c.audience, "default"))  # fmt: skip
    return {"title": stage.c.title, "body": stage.c.body, "priority": stage.c.priority,
            "reason": stage.c.body + " (" + source + ")", "channel": stage.c.channel, "program": stage.c.program,
            "enrollment_id": stage.c.id}  # fmt: skip


EVENT_COLUMNS = ["enrollment_id", "account_id", "program", "kind", "step", "channel", "problem", "at", "dedupe_key"]
ACTION_COLUMNS = ["account_id", "playbook", "step", "kind", "due", "status", "dedupe_key", "created_at", "payload",
                  "enrollment_id", "problem"]  # fmt: skip


def _round(conn: Connection, programs: dict[str, ActiveProgram], due: pd.DataFrame, now: datetime,
           limits: Limits, writers: int) -> tuple[pd.DataFrame, int]:  # fmt: skip
    """Decide, render and write one round of due rows; returns the rows with their `outcome`, `finished` and
    `due_again` (moved to a step due by `now`), and the outbox rows written. The contacts are
    read only when a customer message is due or a text names the recipient, usage only when a text names it."""
    accounts = select(PE.c.account_id).where(_due_where(now, list(programs)))
    customer = due["channel"].isin(CUSTOMER_CHANNELS) & ~due["holdout"].fillna(False).astype(bool)
    needs_contacts = bool(customer.any()) or names_any(programs, due, ("first_name",))
    contacts = recipients(conn, now, accounts) if needs_contacts else no_recipients()
    quiet = {n: a.program.quiet.rules(limits.quiet) for n, a in programs.items() if a.program.quiet is not None}
    due = decide(conn, due, accounts, contacts, now, limits, quiet)
    sent = due[due["outcome"] == "send"]
    texts = pd.DataFrame({"title": pd.Series(dtype=object), "body": pd.Series(dtype=object)})
    if not sent.empty:
        needs_usage = names_any(programs, sent, ("logins_30d", "active_days_30d"))
        texts = step_texts(programs, sent, message_data(conn, sent, accounts, contacts, now, needs_usage))
    moves = _next_positions(programs, due, now)
    moved, created = _write(conn, due, texts, moves, now, writers)
    again = (moves["next_due_at"] <= pd.Timestamp(now)).to_numpy()  # a next step already due: another round
    return due.assign(finished=(moves["status"] == "completed") & (moved > 0), due_again=again), created


# A round at least this large is written over `writers` connections on PostgreSQL (see _write).
PARALLEL_MIN_ROWS = 20_000


def _write(conn: Connection, due: pd.DataFrame, texts: pd.DataFrame, moves: pd.DataFrame, now: datetime,
           writers: int) -> tuple[int, int]:  # fmt: skip
    """Write a decided round: in the tick's transaction, or, for a large round on PostgreSQL, in `writers`
    transactions side by side, each on a connection of its own holding the accounts of one hash bucket.

    Why: the round's time is the server writing its rows (events, actions, outbox rows, moves), which one backend
    does on one core. Split by account, every account's step, event, action, outbox rows and move still commit
    together, and the buckets share no row, unique key or lock. They need no lock of their own: the tick holds the
    programs lock until they are done, so nothing else enters or advances meanwhile. A bucket that fails rolls
    back alone and the tick fails; buckets already committed stay, and the next tick, which reads what they
    committed, sends the rest, nothing twice (the dedupe keys)."""
    if writers < 2 or conn.dialect.name != "postgresql" or len(due) < PARALLEL_MIN_ROWS:
        return _write_part(conn, due, texts, moves, now)
    bucket = due["account_id"].to_numpy() % writers
    with ThreadPoolExecutor(writers, thread_name_prefix="program-round") as pool:
        parts = [pool.submit(_write_bucket, conn.engine, due[bucket == k], texts, moves[bucket == k], now)
                 for k in range(writers)]  # fmt: skip
        written = [part.result() for part in parts]
    return sum(moved for moved, _ in written), sum(created for _, created in written)


def _write_bucket(engine: Engine, due: pd.DataFrame, texts: pd.DataFrame, moves: pd.DataFrame,
                  now: datetime) -> tuple[int, int]:  # fmt: skip
    with engine.begin() as conn:
        return _write_part(conn, due, texts, moves, now)


def _write_part(conn: Connection, due: pd.DataFrame, texts: pd.DataFrame, moves: pd.DataFrame,
                now: datetime) -> tuple[int, int]:  # fmt: skip
    stage = _stage_round(conn, due, texts, moves)
    return _write_round(conn, stage, int((due["outcome"] == "send").sum()), now)


def advance(
    conn: Connection, programs: dict[str, ActiveProgram], now: datetime, limits: Limits, writers: int = 1
) -> TickResult:
    """Every step that fell due by `now`, for all enrollments at once: one round per step position, until none is
    due (an enrollment behind by several steps gets them in order within the caps). `writers`: see _write."""
    result = TickResult()
    take_lock(conn)
    result.exited = _exit_churned(conn, now)
    if not programs:
        return result
    steps = step_table({n: a.program for n, a in programs.items()})
    rounds = int(steps.groupby(["program", "tier"]).size().max()) + 1
    for _ in range(rounds):
        due = _due(conn, now, list(programs))
        if due.empty:
            break
        due = due.merge(steps, on=["program", "tier", "step"], how="left")
        gone = due["key"].isna()  # past the last step of a newer, shorter version: nothing left to send
        for chunk in chunked(due.loc[gone, "id"].astype(int).tolist()):
            conn.execute(update(PE).where(PE.c.id.in_(chunk), PE.c.status == "active")
                         .values(status="completed", ended_at=now, next_due_at=None))  # fmt: skip
        due = due[~gone].reset_index(drop=True)
        if due.empty:
            break
        due, created = _round(conn, programs, due, now, limits, writers)
        result.outbox_rows += created
        result.completed += int(due["finished"].sum())
        counts = due["outcome"].value_counts()
        result.sent += int(counts.get("send", 0))
        result.held += int(counts.get("held", 0))
        result.covered += int(counts.get("covered", 0))
        result.deferred += int(counts.get("deferred", 0))
        result.suppressed += int(counts.get("suppressed", 0))
        for key, n in due[due["outcome"] == "send"].groupby(["program", "key"]).size().items():
            result.by_step[":".join(key)] = result.by_step.get(":".join(key), 0) + int(n)
        if not due["due_again"].any():  # only a row this round moved can be due again by `now`: no empty read
            break
    return result


def run_tick(
    conn: Connection, programs: dict[str, ActiveProgram], now: datetime, limits: Limits, writers: int = 1
) -> TickResult:
    """One scheduler tick in the caller's transaction: advance due steps (their actions released to the outbox as
    they are written), then release any other action that fell due, so enrollment state, history, actions and
    outbox rows commit together (or not at all). With `writers` > 1 on PostgreSQL a large round is written by that
    many connections side by side, each account's rows committing together in one of them (see _write)."""
    result = advance(conn, programs, now, limits, writers)
    result.outbox_rows += release_due_actions(conn, now)
    return result
