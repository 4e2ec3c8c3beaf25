"""Planning writes into the outbox, in the caller's transaction, so scores and the writes they cause commit together.

Only what moved is written: a field update is planned when the band changes or a score moves by at least the
configured step since the last planned update, and an action's dedupe key makes reruns plan it once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    FromClause,
    Select,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.programs.eligibility import RECIPIENT_ORDER, contact_is_eligible
from app.store.bulk import (
    fetch_frame,
    in_ids,
    insert_from_select_ignoring_conflicts,
    result_frame,
    upsert,
)
from app.store.models import Action, Contact, ExternalId, OutboxRow
from connectors.mapping.schema import PUSH_SCHEMA
from connectors.registry import all_connectors, connector
from engine.canonical import FACTOR_LABELS

UPDATE_FIELDS = "update_fields"
CREATE_TASK = "create_task"
SEND_MESSAGE = "send_message"
# Canonical score fields planned for the CRMs: every one a push mapping may name (connectors/mapping/schema.py),
# so whatever an admin maps reaches the CRM; the vendor's push mapping picks which are written, and where.
PUSHED_FIELDS = tuple(PUSH_SCHEMA)
# Decimals kept per number field; the rest of the numbers keep one.
_DECIMALS = {"churn_probability": 3, "coverage": 3, "revenue_potential": 2}


def _company_records() -> Select:
    clauses = [and_(ExternalId.vendor == c.name, ExternalId.object == c.company_object) for c in all_connectors()]
    return select(ExternalId.account_id, ExternalId.vendor, ExternalId.external_id).where(or_(*clauses))


def company_targets(conn: Connection, account_ids: list[int] | Select) -> pd.DataFrame:
    """(account_id, vendor, external_id) of every account's company record in each connected vendor; the accounts
    given as ids or as a query selecting them (no IN list of parameters to send)."""
    columns = ["account_id", "vendor", "external_id"]
    if isinstance(account_ids, Select):
        return fetch_frame(conn, _company_records().where(ExternalId.account_id.in_(account_ids)), columns)
    query = _company_records()
    chunks = in_ids(conn, ExternalId.account_id, account_ids)
    frames = [result_frame(conn.execute(query.where(chunk)), columns) for chunk in chunks]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _driver_text(model_drivers, health_drivers: list) -> str:
    """What a CSM reads in the CRM: the churn model's drivers when there is a model, else the weak factors."""
    if isinstance(model_drivers, list) and model_drivers:
        return "; ".join(f"{d['label']} {d['relation']} (+{d['points']} pts)" for d in model_drivers)
    return ", ".join(d for d in health_drivers if d)


def _factor_names(scored: pd.DataFrame) -> np.ndarray:
    """The weak health factors by the names a CSM reads on the account page (the store keeps the config keys)."""
    columns = [c for c in ("driver_1", "driver_2", "driver_3") if c in scored]
    named = scored[columns].apply(lambda column: column.map(FACTOR_LABELS))
    return named.astype(object).where(named.notna(), None).to_numpy()


def _field_values(scored: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One column per PUSHED_FIELDS entry: the value as the CRM should show it (NaN/None where there is none)."""
    health_drivers = _factor_names(scored)
    model_drivers = scored["risk_drivers"] if "risk_drivers" in scored else pd.Series(None, index=scored.index)
    out: dict[str, object] = {
        "drivers": [", ".join(d for d in row if d) for row in health_drivers],
        "risk_drivers": [_driver_text(m, list(h)) for m, h in zip(model_drivers, health_drivers, strict=True)],
        "as_of": as_of.isoformat(),
        "computed_at": datetime.now().isoformat(timespec="seconds"),
    }
    for name, field in PUSH_SCHEMA.items():
        if name in out:
            continue
        if name not in scored:
            out[name] = np.nan if field.kind in ("number", "integer") else None
        elif field.kind in ("number", "integer"):
            out[name] = pd.to_numeric(scored[name], errors="coerce").round(_DECIMALS.get(name, 1))
        else:
            out[name] = scored[name].astype(object).where(scored[name].notna(), None)
    return pd.DataFrame(out, index=scored.index)[list(PUSHED_FIELDS)]


def _last_planned(conn: Connection, vendor: str, account_ids: list[int]) -> pd.DataFrame:
    """The field values last planned per account for this vendor (what the CRM holds or is about to)."""
    rows = []
    for chunk in in_ids(conn, OutboxRow.account_id, account_ids):
        latest = (
            select(func.max(OutboxRow.id))
            .where(OutboxRow.vendor == vendor, OutboxRow.operation == UPDATE_FIELDS, chunk)
            .group_by(OutboxRow.account_id)
        )
        rows += conn.execute(select(OutboxRow.account_id, OutboxRow.payload).where(OutboxRow.id.in_(latest))).all()
    return pd.DataFrame(
        [payload["fields"] for _, payload in rows], index=pd.Index([a for a, _ in rows], name="account_id")
    ).reindex(columns=list(PUSHED_FIELDS))


def _text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "")


def _moved(new: pd.DataFrame, old: pd.DataFrame, step: float) -> pd.Series:
    """Accounts whose pushed values moved enough to be worth a write."""
    old = old.reindex(new.index)
    never = old["band"].isna() & old["health"].isna()
    texts = ("band", "expansion_type", "risk_drivers", "risk_source", "recommended_action", "early_warning")
    text_moved = pd.concat([_text(new[c]) != _text(old[c]) for c in texts], axis=1).any(axis=1)
    numbers = pd.concat(
        [(new[c].astype(float) - old[c].astype(float)).abs() >= step for c in ("health", "expansion_score", "risk")],
        axis=1,
    ).any(axis=1)
    probability = (new["churn_probability"].astype(float) - old["churn_probability"].astype(float)).abs() >= step / 100
    return never | text_moved | numbers | probability


def plan_field_writes(conn: Connection, scored: pd.DataFrame, as_of: date, step: float) -> int:
    """Queue field updates for the accounts whose scores moved; supersede their older pending updates."""
    if scored.empty:
        return 0
    targets = company_targets(conn, scored.index.tolist())
    if targets.empty:  # no account linked to a CRM company: nothing to plan (a book without a CRM, a bench)
        return 0
    values = _field_values(scored[scored.index.isin(targets["account_id"])], as_of)
    now = datetime.now()
    # Field writes need no dedupe across runs (a rerun with unchanged scores plans nothing); the key only has to
    # be unique, and must not collide with an older write of the same values after they changed in between.
    planning = uuid.uuid4().hex
    planned = 0
    for vendor, group in targets.groupby("vendor"):
        accounts = group.set_index("account_id")["external_id"]
        new = values.reindex(accounts.index)
        moved = _moved(new, _last_planned(conn, vendor, accounts.index.tolist()), step)
        changed = new[moved.to_numpy()]
        if changed.empty:
            continue
        clean = changed.astype(object).where(changed.notna(), None)
        records, company_object = [], connector(vendor).company_object
        for account_id, fields in zip(clean.index, clean.to_dict("records"), strict=True):
            payload = {"object": company_object, "external_id": accounts[account_id], "fields": fields}
            records.append({
                "vendor": vendor, "operation": UPDATE_FIELDS, "account_id": int(account_id),
                "dedupe_key": f"{vendor}:fields:{account_id}:{planning}", "payload": payload,
                "status": "pending", "attempts": 0, "created_at": now, "updated_at": now,
            })  # fmt: skip
        for chunk in in_ids(conn, OutboxRow.account_id, changed.index):
            conn.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.vendor == vendor,
                    OutboxRow.operation == UPDATE_FIELDS,
                    OutboxRow.status == "pending",
                    chunk,
                )
                .values(status="superseded", updated_at=now)
            )
        upsert(conn, OutboxRow.__table__, records, conflict=["dedupe_key"])
        planned += len(records)
    return planned


def _due_text(conn: Connection, due) -> ColumnElement:
    """An action's due moment as the text `datetime.isoformat()` gives (`2026-11-02T09:00:00`, microseconds only
    when there are some), computed by the database: SQLite stores `2026-11-02 09:00:00.000000`."""
    if conn.dialect.name == "postgresql":
        text_form = func.to_char(due, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS.US'"))
    else:
        text_form = func.replace(type_coerce(due, Text), " ", "T")
    return func.replace(text_form, ".000000", "")


def json_object(conn: Connection, fields: dict[str, ColumnElement]) -> ColumnElement:
    """A JSON object of these keys and column values, built by the database (keys in this order)."""
    if conn.dialect.name == "postgresql":  # keys as SQL text constants: json_build_object cannot type a parameter
        return func.json_build_object(*[p for k, v in fields.items() for p in (literal_column(f"'{k}'"), v)])
    return func.json_object(*[p for k, v in fields.items() for p in (literal(k), v)])


def _payload(conn: Connection, payload, fields: dict[str, ColumnElement]) -> ColumnElement:
    """The action's JSON payload with `fields` added as keys (a key already there is replaced), built by the
    database so no payload travels to Python and back. A payload given as its fields is built once with them (on
    PostgreSQL merging into a stored one costs a parse into jsonb and back per row)."""
    if isinstance(payload, dict):
        return json_object(conn, {**payload, **fields})
    if conn.dialect.name == "postgresql":  # keys as SQL text constants: jsonb_build_object cannot type a parameter
        pairs = [part for name, value in fields.items() for part in (literal_column(f"'{name}'"), value)]
        base = func.coalesce(cast(payload, JSONB), cast(literal("{}"), JSONB))
        return cast(base.op("||")(func.jsonb_build_object(*pairs)), JSON)
    pairs = [part for name, value in fields.items() for part in (literal(f"$.{name}"), value)]
    return func.json_set(func.coalesce(type_coerce(payload, Text), "{}"), *pairs)


def _companies(connector) -> Select:
    """Company records in one connector: account_id, external_id."""
    return select(ExternalId.account_id, ExternalId.external_id).where(
        ExternalId.vendor == connector.name, ExternalId.object == connector.company_object
    )


def _first_recipients(now: datetime) -> Select:
    """Each account's eligible contacts ranked in eligibility.RECIPIENT_ORDER (rank 1: where a message goes)."""
    rank = func.row_number().over(partition_by=Contact.account_id, order_by=RECIPIENT_ORDER).label("rank")
    return select(Contact.account_id, Contact.email, rank).where(contact_is_eligible(now))


OUTBOX_COLUMNS = ("vendor", "operation", "account_id", "dedupe_key", "payload", "status", "attempts", "created_at",
                  "updated_at")  # fmt: skip


@dataclass(frozen=True)
class Planned:
    """Planned actions a release reads: the actions table's planned rows, or a program tick's staged round (its
    actions released as they are written, so none is written `planned` and then updated). `payload` is the
    action's JSON payload, or its fields (key to column) when it is not stored yet; `where` selects the rows to
    release."""

    source: FromClause
    account_id: ColumnElement
    kind: ColumnElement
    due_text: ColumnElement  # the due moment as `datetime.isoformat()` writes it
    dedupe_key: ColumnElement
    payload: ColumnElement | dict[str, ColumnElement]
    where: ColumnElement


def planned_actions(conn: Connection, now: datetime) -> Planned:
    """The actions table's planned rows that are due: tasks at once (the CRM task carries its due date), messages
    when due. 'planned' as SQL text, not a parameter: so both databases see the partial index ix_actions_planned."""
    actions = Action.__table__
    due = and_(actions.c.status == literal_column("'planned'"), or_(actions.c.kind == "crm_task", actions.c.due <= now))
    return Planned(actions, actions.c.account_id, actions.c.kind, _due_text(conn, actions.c.due),
                   actions.c.dedupe_key, actions.c.payload, due)  # fmt: skip


def has_target(planned: Planned, now: datetime) -> ColumnElement:
    """Whether an action has somewhere to go: a task a company record in a task CRM, a message an eligible contact
    and a messaging vendor. Its status once released is `released` when it has, else `no_target`."""
    task_vendors = [c for c in all_connectors() if c.tasks]
    companies = [and_(ExternalId.vendor == c.name, ExternalId.object == c.company_object) for c in task_vendors]
    has_home = select(ExternalId.id).where(ExternalId.account_id == planned.account_id, or_(false(), *companies))
    messaging = any(c.messages for c in all_connectors())
    reachable = select(Contact.id).where(Contact.account_id == planned.account_id, contact_is_eligible(now),
                                         true() if messaging else false())  # fmt: skip
    return case((planned.kind == "crm_task", has_home.exists()), else_=reachable.exists())


def release_status(planned: Planned, now: datetime) -> ColumnElement:
    """An action's status once its outbox rows are written: `released`, or `no_target` (kept, so it is not retried)."""
    return case((has_target(planned, now), "released"), else_="no_target")


def insert_outbox_rows(conn: Connection, planned: Planned, now: datetime) -> int:
    """The outbox rows of these planned actions, set-based, in the database (INSERT ... SELECT, one statement per
    vendor; nothing is read back into Python): a task goes to the CRM of lowest rank that holds the company, a
    message to every messaging vendor (to the account's first eligible contact,
    app/programs/eligibility.RECIPIENT_ORDER); the outbox payload is the action's plus its due date, dedupe key and
    target. Returns the outbox rows created."""
    stamp = literal(datetime.now(), DateTime())
    common = {"due": planned.due_text, "dedupe_key": planned.dedupe_key}

    def rows(vendor, operation: str, fields: dict) -> Select:
        return select(
            vendor, literal(operation), planned.account_id, planned.dedupe_key + ":" + vendor,
            _payload(conn, planned.payload, {**common, **fields}), literal("pending"), literal(0), stamp, stamp,
        )  # fmt: skip

    def any_of(kind: ColumnElement) -> bool:  # a cheap probe: the statements below rank every contact, say
        probe = select(literal(1)).select_from(planned.source).where(planned.where, kind).limit(1)
        return conn.execute(probe).first() is not None

    outbox, created = OutboxRow.__table__, 0
    has_tasks, has_messages = any_of(planned.kind == "crm_task"), any_of(planned.kind != "crm_task")
    if conn.dialect.name == "postgresql":  # the actions were just written, so no statistics know them: joins by hash,
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")  # never a nested loop over a table assumed tiny
    task_vendors = [c for c in all_connectors() if c.tasks and has_tasks]
    for rank, vendor in enumerate(task_vendors):  # a task goes to the first task CRM (registry order) holding it
        home = _companies(vendor).subquery()
        higher = [planned.account_id.not_in(_companies(v).with_only_columns(ExternalId.account_id))
                  for v in task_vendors[:rank]]  # fmt: skip
        tasks = (
            rows(literal(vendor.name), CREATE_TASK, {"company_id": home.c.external_id})
            .select_from(planned.source.join(home, home.c.account_id == planned.account_id))
            .where(planned.where, planned.kind == "crm_task", *higher)
        )  # a second record of one company: its key is a conflict
        created += insert_from_select_ignoring_conflicts(conn, outbox, OUTBOX_COLUMNS, tasks, ["dedupe_key"])
    for vendor in [c for c in all_connectors() if c.messages and has_messages]:
        recipient = _first_recipients(now).subquery()
        company = _companies(vendor).subquery()
        messages = rows(literal(vendor.name), SEND_MESSAGE, {"email": recipient.c.email,
                                                              "company_id": company.c.external_id})  # fmt: skip
        messages = messages.select_from(
            planned.source.join(recipient, and_(recipient.c.account_id == planned.account_id, recipient.c.rank == 1))
            .outerjoin(company, company.c.account_id == planned.account_id)
        ).where(planned.where, planned.kind != "crm_task")  # fmt: skip
        created += insert_from_select_ignoring_conflicts(conn, outbox, OUTBOX_COLUMNS, messages, ["dedupe_key"])
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_nestloop TO DEFAULT")
    return created


def release_due_actions(conn: Connection, now: datetime) -> int:
    """Turn planned actions into outbox rows (`insert_outbox_rows`) and mark them `released` or `no_target`.
    Returns the outbox rows created."""
    planned = planned_actions(conn, now)
    created = insert_outbox_rows(conn, planned, now)
    actions = Action.__table__
    conn.execute(update(actions).where(planned.where).values(status=release_status(planned, now)))
    return created
