"""Running programs against the store, set-based: who enters, exits and escalates (after each scoring), and the
steps that fall due (every scheduler tick), in the caller's transaction together with the actions and outbox rows
they cause.

Why nothing is sent twice or skipped: a tick first takes the programs lock (a transaction-scoped advisory lock
on PostgreSQL; SQLite's single writer lock, taken by the tick's first statement, a write), so ticks run one after
another and each reads what the one before committed. Beneath the lock every write is idempotent anyway: a step's
event and its action carry a dedupe key per enrollment and step (INSERT … ON CONFLICT DO NOTHING on a unique key),
and an enrollment moves on only by a conditional UPDATE (`WHERE step = <the step just sent>`). A worker killed
mid-tick rolls the whole transaction back, so the next tick sends exactly what it would have. A tick that finds an
enrollment several steps behind sends them in order, one round per step, never jumping over one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Column, Connection, DateTime, Integer, String, and_, cast, func, literal, select, text, update

from app.programs.contacts import apply_contact_rules
from app.programs.definitions import ActiveProgram
from app.programs.surveys import add_survey_columns
from app.store.bulk import (
    chunked,
    copy_rows,
    dialect_insert,
    insert_from_select_ignoring_conflicts,
    rows_of,
    staged_insert,
    temp_table,
)
from app.store.models import Account, AccountDay, Action, Contact, ProgramEnrollment, ProgramEvent
from app.writeback.outbox import release_due_actions
from engine.programs.definition import CUSTOMER_CHANNELS
from engine.programs.plan import condition_frame, first_due_days, held_out, membership, step_table
from engine.programs.quiet import QuietRules
from engine.programs.render import render

PE = ProgramEnrollment.__table__
EVENTS = ProgramEvent.__table__
LOCK_KEY = 7_242_011  # pg_advisory_xact_lock key of the program engine
URGENCY = {"low": 1.0, "normal": 2.0, "high": 3.0, "urgent": 4.0}
REACH_DAYS = 14  # a contact not seen for this long gets an email instead of an in-app message
OPEN_TASK_DAYS = 14  # a task for the same problem within this many days counts as still open
ENGINE_ACTOR = "program engine"


@dataclass
class Limits:
    """Contact hygiene and CSM capacity (settings CSE_MESSAGES_PER_WEEK, CSE_TASK_BUDGET_PER_CSM, CSE_QUIET_*)."""

    messages_per_week: int = 2
    task_budget_per_csm: int = 25
    quiet: QuietRules = QuietRules()


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


def take_lock(conn: Connection) -> None:
    """Serialize program ticks and enrollment updates (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    else:  # a write first: SQLite hands the one writer lock to this transaction before it reads anything
        conn.execute(update(PE).where(PE.c.id == -1).values(step=0))


def _log_events(conn: Connection, kind: str, where, now: datetime, tag: str | None = None) -> None:
    """One history event per enrollment matching `where`, keyed `<kind>:<tag>:<id>` so a rerun adds none."""
    prefix = f"{kind}:{tag}:" if tag else f"{kind}:"
    source = select(
        PE.c.id, PE.c.account_id, PE.c.program, literal(kind), literal(now, DateTime()),
        (literal(prefix) + cast(PE.c.id, String)).label("dedupe_key"),
    ).where(where)  # fmt: skip
    columns = ["enrollment_id", "account_id", "program", "kind", "at", "dedupe_key"]
    insert_from_select_ignoring_conflicts(conn, EVENTS, columns, source, ["dedupe_key"])


def _arr_now():
    return select(Account.arr).where(Account.id == PE.c.account_id).scalar_subquery()


def _current(conn: Connection, program: str, account_ids: list[int]) -> pd.DataFrame:
    rows = []
    query = select(PE.c.id, PE.c.account_id, PE.c.status, PE.c.tier, PE.c.ended_at).where(PE.c.program == program)
    for chunk in chunked(account_ids):
        rows += conn.execute(query.where(PE.c.account_id.in_(chunk))).all()
    return pd.DataFrame(rows, columns=["id", "account_id", "status", "tier", "ended_at"])


def exit_enrollments(conn: Connection, ids: pd.Series, reason: str, now: datetime) -> int:
    """End these active or completed enrollments with `reason` (history event included); returns how many."""
    exited = 0
    for chunk in chunked(ids.astype(int).tolist()):
        where = and_(PE.c.id.in_(chunk), PE.c.status.in_(("active", "completed")))
        exited += conn.execute(
            update(PE).where(where).values(status="exited", exit_reason=reason, next_due_at=None,
                                           ended_at=func.coalesce(PE.c.ended_at, now), arr_at_end=_arr_now())
        ).rowcount  # fmt: skip
        _log_events(conn, "exited", and_(PE.c.id.in_(chunk), PE.c.exit_reason == reason), now, reason)
    return exited


def enroll(conn: Connection, programs: dict[str, ActiveProgram], scored: pd.DataFrame, now: datetime) -> dict:
    """After a scoring: exits, escalations, CSM requests and new entries of the scored accounts, set-based."""
    if scored.empty or not programs:
        return {}
    take_lock(conn)
    frame = condition_frame(scored)
    add_survey_columns(conn, frame, now)
    ids = [int(i) for i in frame.index]
    counts: dict[str, dict[str, int]] = {}
    for name, active in programs.items():
        program, state = active.program, membership(active.program, frame)
        current = _current(conn, name, ids)
        open_rows = current[current["status"].isin(["active", "completed"])]
        reasons = state["exit_reason"].reindex(open_rows["account_id"]).to_numpy()
        exited = 0
        for reason in sorted({r for r in reasons if isinstance(r, str)}):
            exited += exit_enrollments(conn, open_rows["id"][reasons == reason], reason, now)
        active_rows = current[(current["status"] == "active")]
        active_rows = active_rows[pd.isna(state["exit_reason"].reindex(active_rows["account_id"]).to_numpy())]
        escalated = _escalate(conn, program, active_rows, state, now)
        activated = _activate_requests(conn, active, current, state, now)
        entered = _enter(conn, active, current, state, now)
        _log_events(conn, "entered", and_(PE.c.program == name, PE.c.entered_at == now), now)
        counts[name] = {"exited": exited, "escalated": escalated, "requests": activated, "entered": entered}
    return counts


def _escalate(conn: Connection, program, active_rows: pd.DataFrame, state: pd.DataFrame, now: datetime) -> int:
    """Move enrollments up to the highest tier that now holds (never down); steps already sent stay sent."""
    if not program.tiers or active_rows.empty:
        return 0
    target = state["tier"].reindex(active_rows["account_id"]).to_numpy()
    rows = active_rows.assign(target=target)
    rows = rows[rows["target"] > rows["tier"].astype(int)]
    moved = 0
    for (old, new), group in rows.groupby(["tier", "target"]):
        due = now + timedelta(days=first_due_days(program, int(new)))
        for chunk in chunked(group["id"].astype(int).tolist()):
            moved += conn.execute(
                update(PE).where(PE.c.id.in_(chunk), PE.c.tier == int(old), PE.c.status == "active")
                .values(tier=int(new), step=0, tier_entered_at=now, next_due_at=due)
            ).rowcount  # fmt: skip
            _log_events(conn, "escalated", and_(PE.c.id.in_(chunk), PE.c.tier == int(new)), now, f"tier{int(new)}")
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
    """A CSM's request from the account card enters the account (never into the control group: a person asked);
    one for an account already active in the program is marked `merged`."""
    requested = current[current["status"] == "requested"]
    if requested.empty:
        return 0
    busy = set(current.loc[current["status"] == "active", "account_id"])
    merged = requested[requested["account_id"].isin(busy)]
    for chunk in chunked(merged["id"].astype(int).tolist()):
        conn.execute(update(PE).where(PE.c.id.in_(chunk), PE.c.status == "requested").values(status="merged"))
    todo = requested[~requested["account_id"].isin(busy)].drop_duplicates("account_id")
    tiers = state["tier"].reindex(todo["account_id"]).fillna(0).clip(lower=0).astype(int).to_numpy()
    audiences = state["audience"].reindex(todo["account_id"]).fillna("default").to_numpy()
    done = 0
    for (tier, audience), group in todo.assign(t=tiers, a=audiences).groupby(["t", "a"]):
        values = {**_entry_values(active, int(tier), audience, now), "holdout": False, "arr_at_entry": _arr_now()}
        for chunk in chunked(group["id"].astype(int).tolist()):
            done += conn.execute(
                update(PE).where(PE.c.id.in_(chunk), PE.c.status == "requested").values(**values)
            ).rowcount
    return done


def _enter(conn: Connection, active: ActiveProgram, current: pd.DataFrame, state: pd.DataFrame, now: datetime) -> int:
    """New enrollments for accounts whose entry holds, none active, and the re-entry policy allows it."""
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
    holdout = dict(zip(ids.tolist(), held_out(program.program, ids, program.holdout).tolist(), strict=True))
    records = []
    for tier, audience, group in _groups(ids, state):
        base = _entry_values(active, tier, audience, now)
        records += [
            {**base, "account_id": int(a), "program": program.program, "holdout": holdout[int(a)],
             "requested_by": ENGINE_ACTOR, "source": "engine", "requested_at": now}
            for a in group
        ]  # fmt: skip
    stmt = dialect_insert(conn, PE).on_conflict_do_nothing(
        index_elements=["program", "account_id"], index_where=text("status = 'active'")
    )
    inserted = 0
    for chunk in chunked(records):
        inserted += conn.execute(stmt, chunk).rowcount or 0
    conn.execute(
        update(PE).where(PE.c.program == program.program, PE.c.entered_at == now, PE.c.arr_at_entry.is_(None))
        .values(arr_at_entry=_arr_now())
    )  # fmt: skip
    return inserted


def _groups(ids: np.ndarray, state: pd.DataFrame):
    sub = state.loc[ids, ["tier", "audience"]]
    for (tier, audience), group in sub.groupby(["tier", "audience"]):
        yield int(tier), str(audience), group.index.to_numpy()


DUE_COLUMNS = ["id", "account_id", "program", "tier", "step", "audience", "holdout", "tier_entered_at", "owner", "arr"]


def _due(conn: Connection, now: datetime, names: list[str]) -> pd.DataFrame:
    query = (
        select(PE.c.id, PE.c.account_id, PE.c.program, PE.c.tier, PE.c.step, PE.c.audience, PE.c.holdout,
               PE.c.tier_entered_at, Account.owner, Account.arr)
        .select_from(PE)
        .join(Account, Account.id == PE.c.account_id)
        .where(PE.c.status == "active", PE.c.next_due_at <= now, PE.c.program.in_(names))
    )  # fmt: skip
    return pd.DataFrame(conn.execute(query).all(), columns=DUE_COLUMNS)


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


def _recent_messages(conn: Connection, since: datetime) -> pd.Series:
    query = (
        select(EVENTS.c.account_id, func.count())
        .where(EVENTS.c.kind == "step_sent", EVENTS.c.channel.in_(CUSTOMER_CHANNELS), EVENTS.c.at > since)
        .group_by(EVENTS.c.account_id)
    )
    return pd.Series(dict(conn.execute(query).all()), dtype="float64")


def _tasks_this_week(conn: Connection, week_start: datetime) -> pd.Series:
    query = (
        select(Account.owner, func.count())
        .select_from(Action)
        .join(Account, Account.id == Action.account_id)
        .where(Action.kind == "crm_task", Action.created_at >= week_start)
        .group_by(Account.owner)
    )
    return pd.Series(dict(conn.execute(query).all()), dtype="float64")


def _open_problems(conn: Connection, since: datetime) -> pd.DataFrame:
    """(account_id, problem) of the tasks sent recently: still open, so no second task for the same problem."""
    query = select(EVENTS.c.account_id, EVENTS.c.problem, EVENTS.c.enrollment_id).where(
        EVENTS.c.kind == "step_sent", EVENTS.c.problem.is_not(None), EVENTS.c.at > since
    )
    rows = pd.DataFrame(conn.execute(query.distinct()).all(), columns=["account_id", "problem", "by"])
    return rows.astype({"account_id": "int64", "by": "int64"})


def _last_seen(conn: Connection, account_ids: list[int]) -> pd.Series:
    rows = []
    for chunk in chunked(account_ids):
        query = select(Contact.account_id, func.max(Contact.last_seen)).where(
            Contact.account_id.in_(chunk), Contact.unsubscribed.is_(False)
        )
        rows += conn.execute(query.group_by(Contact.account_id)).all()
    return pd.Series(dict(rows), dtype="datetime64[ns]")


def _capacity(rows: pd.DataFrame, used: pd.Series, group: str, limit: int, order: list[str]) -> np.ndarray:
    """Which rows fit the limit per `group`: the first ones in `order` until used + taken reaches the limit."""
    ranked = rows.sort_values(order, ascending=False, kind="stable")
    rank = ranked.groupby(group, dropna=False).cumcount()
    already = ranked[group].map(used).fillna(0.0)
    fits = (already + rank < limit) | ranked[group].isna()
    return fits.reindex(rows.index).to_numpy(dtype=bool)


def _hygiene(conn: Connection, due: pd.DataFrame, now: datetime, limits: Limits) -> pd.DataFrame:
    """Decide per due row: send, hold (control), cover (a task for that problem is open) or defer (cap/budget);
    and the channel by reach. Adds `outcome`, `channel` (effective) and `defer_until`."""
    due = due.copy()
    due["outcome"] = np.where(due["holdout"].fillna(False).astype(bool), "held", "send")
    due["defer_until"] = pd.NaT
    sending = due["outcome"] == "send"
    customer = sending & due["channel"].isin(CUSTOMER_CHANNELS)
    customer = apply_contact_rules(conn, due, customer, now, limits.quiet)
    if customer.any():
        seen = _last_seen(conn, due.loc[customer, "account_id"].astype(int).unique().tolist())
        last = due.loc[customer, "account_id"].map(seen)
        unreachable = last.isna() | (last < pd.Timestamp(now - timedelta(days=REACH_DAYS)))
        inapp = due.loc[customer, "channel"] == "inapp_message"
        due.loc[inapp[inapp & unreachable].index, "channel"] = "email"
        rows = due[customer].assign(urgency=due["priority"].map(URGENCY))
        fits = _capacity(rows, _recent_messages(conn, now - timedelta(days=7)), "account_id",
                         limits.messages_per_week, ["urgency"])  # fmt: skip
        late = rows.index[~fits]
        due.loc[late, ["outcome", "defer_until"]] = ["deferred", now + timedelta(days=1)]
    tasks = sending & (due["channel"] == "crm_task")
    if tasks.any():
        open_problems = _open_problems(conn, now - timedelta(days=OPEN_TASK_DAYS))
        asked = due.loc[tasks, ["id", "account_id", "problem"]].astype({"account_id": "int64", "id": "int64"})
        found = asked.reset_index().merge(open_problems, on=["account_id", "problem"])
        covered = found.loc[found["by"] != found["id"], "index"]  # a task of another program (same one: escalation)
        due.loc[covered, "outcome"] = "covered"
        twice = due.loc[tasks].duplicated(["account_id", "problem"]) & due.loc[tasks, "problem"].notna()
        due.loc[twice[twice].index, "outcome"] = "covered"  # two programs due the same task for one problem
        tasks = tasks & (due["outcome"] == "send")
        week_start = datetime.combine((now - timedelta(days=now.weekday())).date(), datetime.min.time())
        rows = due[tasks].assign(value=due["arr"].fillna(0.0) * due["priority"].map(URGENCY))
        fits = _capacity(rows, _tasks_this_week(conn, week_start), "owner", limits.task_budget_per_csm, ["value"])
        queued = rows.index[~fits]
        due.loc[queued, ["outcome", "defer_until"]] = ["deferred", week_start + timedelta(days=7)]
    return due


def _message_data(conn: Connection, account_ids: list[int], now: datetime, need_usage: bool) -> pd.DataFrame:
    """The account data message templates may name (engine/programs/render.MESSAGE_FIELDS)."""
    columns = [Account.id, Account.name, Account.owner, Account.plan, Account.arr, Account.seats_active,
               Account.seats_purchased, Account.roi_pct, Account.customer_since, Account.renewal_date]  # fmt: skip
    rows = []
    for chunk in chunked(account_ids):
        rows += conn.execute(select(*columns).where(Account.id.in_(chunk))).all()
    data = pd.DataFrame(rows, columns=[c.key for c in columns]).set_index("id")
    today = pd.Timestamp(now.date())
    data["tenure_days"] = (today - pd.to_datetime(data.pop("customer_since"))).dt.days
    data["days_to_renewal"] = (pd.to_datetime(data.pop("renewal_date")) - today).dt.days
    names = []
    for chunk in chunked(account_ids):
        query = select(Contact.account_id, Contact.name).where(Contact.account_id.in_(chunk))
        names += conn.execute(query.order_by(Contact.account_id, Contact.is_champion.desc(), Contact.id)).all()
    first = pd.DataFrame(names, columns=["account_id", "name"]).drop_duplicates("account_id").set_index("account_id")
    data["first_name"] = first["name"].str.split().str[0].reindex(data.index).fillna("there")
    if need_usage:
        since = (now - timedelta(days=30)).date()
        usage = []
        for chunk in chunked(account_ids):
            query = select(AccountDay.account_id, func.sum(AccountDay.logins), func.count())  # days with a login
            usage += conn.execute(
                query.where(AccountDay.account_id.in_(chunk), AccountDay.day >= since, AccountDay.logins > 0)
                .group_by(AccountDay.account_id)
            ).all()  # fmt: skip
        frame = pd.DataFrame(usage, columns=["account_id", "logins_30d", "active_days_30d"]).set_index("account_id")
        data = data.join(frame)
        data[["logins_30d", "active_days_30d"]] = data[["logins_30d", "active_days_30d"]].fillna(0)
    return data


EVENT_COLUMNS = ["enrollment_id", "account_id", "program", "kind", "step", "channel", "problem", "at", "dedupe_key"]
ACTION_COLUMNS = ["account_id", "playbook", "step", "kind", "due", "status", "dedupe_key", "created_at", "payload"]
EVENT_KIND = {"send": "step_sent", "held": "step_held", "covered": "step_covered", "suppressed": "step_suppressed"}


def _texts(programs: dict[str, ActiveProgram], due: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame:
    """Title and body per due row: the step's variant for the row's audience (else `default`), rendered from data."""
    out = pd.DataFrame({"title": "", "body": ""}, index=due.index, dtype=object)
    for (name, key, audience), group in due.groupby(["program", "key", "audience"], dropna=False):
        step = next(s for s in programs[name].program.steps if s.key == key)
        variant = step.text.get(audience, step.text["default"])
        rows = data.reindex(group["account_id"].astype(int).to_numpy()).set_axis(group.index)
        out.loc[group.index, "title"] = render(variant.title, rows)
        out.loc[group.index, "body"] = render(variant.body, rows)
    return out


def _record(conn: Connection, programs: dict[str, ActiveProgram], due: pd.DataFrame, now: datetime) -> int:
    """Events for every decided row and actions for the rows sent; both keyed per enrollment and step."""
    decided = due[due["outcome"] != "deferred"]
    keys = "step:" + decided["id"].astype(str) + ":" + decided["key"]
    events = pd.DataFrame({
        "enrollment_id": decided["id"], "account_id": decided["account_id"], "program": decided["program"],
        "kind": decided["outcome"].map(EVENT_KIND), "step": decided["key"], "channel": decided["channel"],
        "problem": decided["problem"], "at": now, "dedupe_key": keys,
    })  # fmt: skip
    staged_insert(conn, EVENTS, events, EVENT_COLUMNS, conflict=["dedupe_key"])
    sent = decided[decided["outcome"] == "send"]
    if sent.empty:
        return 0
    needs_usage = any("_30d}" in t.title + t.body for a in programs.values() for s in a.program.steps
                      for t in s.text.values())  # fmt: skip
    data = _message_data(conn, sent["account_id"].astype(int).unique().tolist(), now, needs_usage)
    texts = _texts(programs, sent, data)
    reason = "Program " + sent["program"] + ", step " + sent["key"] + " (" + sent["audience"].fillna("default") + ")"
    payload = [
        json.dumps({"title": t, "body": b, "priority": p, "reason": r, "channel": c, "program": g,
                    "enrollment_id": int(e)})
        for t, b, p, r, c, g, e in zip(texts["title"], texts["body"], sent["priority"], reason, sent["channel"],
                                       sent["program"], sent["id"], strict=True)
    ]  # fmt: skip
    actions = pd.DataFrame({
        "account_id": sent["account_id"], "playbook": sent["program"], "step": sent["key"], "kind": sent["channel"],
        "due": now, "status": "planned", "dedupe_key": "program:" + sent["id"].astype(str) + ":" + sent["key"],
        "created_at": now, "payload": payload,
    })  # fmt: skip
    return staged_insert(conn, Action.__table__, actions, ACTION_COLUMNS, json_columns=["payload"],
                         conflict=["dedupe_key"])  # fmt: skip


def _move_on(conn: Connection, programs: dict[str, ActiveProgram], due: pd.DataFrame, now: datetime) -> int:
    """Advance every decided row one step (or complete it), defer the rest; only rows still at their step move."""
    steps = step_table({n: a.program for n, a in programs.items()})
    decided = due["outcome"] != "deferred"
    nxt = due[["program", "tier"]].assign(step=due["step"] + 1).merge(
        steps, on=["program", "tier", "step"], how="left"
    ).set_axis(due.index)  # fmt: skip
    offset = pd.to_timedelta(nxt["day"].fillna(0.0), unit="D")
    from_entry = pd.to_datetime(due["tier_entered_at"]) + offset
    from_now = pd.Timestamp(now) + offset
    next_due = from_entry.where(nxt["after"] == "entry", from_now).where(nxt["key"].notna(), pd.NaT)
    finished = decided & nxt["key"].isna()
    stage_frame = pd.DataFrame({
        "id": due["id"].astype(int), "old_step": due["step"].astype(int),
        "new_step": np.where(decided, due["step"] + 1, due["step"]).astype(int),
        "status": np.where(finished, "completed", "active"),
        "next_due_at": next_due.where(decided, pd.to_datetime(due["defer_until"])),
        "ended_at": pd.Series(pd.Timestamp(now), index=due.index).where(finished, pd.NaT),
        "last_step_at": pd.Series(pd.Timestamp(now), index=due.index).where(decided, pd.NaT),
    })  # fmt: skip
    stage = temp_table(conn, "_stage_program_moves", [
        Column("id", Integer), Column("old_step", Integer), Column("new_step", Integer), Column("status", String(16)),
        Column("next_due_at", DateTime), Column("ended_at", DateTime), Column("last_step_at", DateTime),
    ])  # fmt: skip
    copy_rows(conn, stage, list(stage_frame.columns), rows_of(stage_frame, list(stage_frame.columns)))
    moved = conn.execute(
        update(PE)
        .where(PE.c.id == stage.c.id, PE.c.step == stage.c.old_step, PE.c.status == "active")
        .values(step=stage.c.new_step, status=stage.c.status, next_due_at=stage.c.next_due_at,
                ended_at=stage.c.ended_at, last_step_at=func.coalesce(stage.c.last_step_at, PE.c.last_step_at))
    ).rowcount  # fmt: skip
    stage.drop(conn)
    return int(finished.sum()) if moved else 0


def advance(conn: Connection, programs: dict[str, ActiveProgram], now: datetime, limits: Limits) -> TickResult:
    """Every step that fell due by `now`, for all enrollments at once: one round per step position, until none is
    due (an enrollment behind by several steps gets them in order within the caps)."""
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
        due = _hygiene(conn, due, now, limits)
        _record(conn, programs, due, now)
        result.completed += _move_on(conn, programs, due, now)
        counts = due["outcome"].value_counts()
        result.sent += int(counts.get("send", 0))
        result.held += int(counts.get("held", 0))
        result.covered += int(counts.get("covered", 0))
        result.deferred += int(counts.get("deferred", 0))
        result.suppressed += int(counts.get("suppressed", 0))
        for key, n in due[due["outcome"] == "send"].groupby(["program", "key"]).size().items():
            result.by_step[":".join(key)] = result.by_step.get(":".join(key), 0) + int(n)
        if (due["outcome"] == "deferred").all():
            break
    return result


def run_tick(conn: Connection, programs: dict[str, ActiveProgram], now: datetime, limits: Limits) -> TickResult:
    """One scheduler tick in the caller's transaction: advance due steps, then release their actions to the
    outbox, so enrollment state, history, actions and outbox rows commit together (or not at all)."""
    result = advance(conn, programs, now, limits)
    result.outbox_rows = release_due_actions(conn, now)
    return result
