"""Planning writes into the outbox, in the caller's transaction, so scores and the writes they cause commit together.

Only what moved is written: a field update is planned when the band changes or a score moves by at least the
configured step since the last planned update, and an action's dedupe key makes reruns plan it once.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, Select, String, Text, and_, cast, func, or_, select, update

from app.programs.eligibility import recipients
from app.store.bulk import copy_rows, fetch_frame, in_ids, json_lines, staged_insert, temp_table, upsert
from app.store.models import Action, ExternalId, OutboxRow
from connectors.mapping.schema import PUSH_SCHEMA
from connectors.registry import all_connectors, connector

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
    rows = [
        row for chunk in in_ids(conn, ExternalId.account_id, account_ids) for row in conn.execute(query.where(chunk))
    ]
    return pd.DataFrame(rows, columns=columns)


def _driver_text(model_drivers, health_drivers: list) -> str:
    """What a CSM reads in the CRM: the churn model's drivers when there is a model, else the weak factors."""
    if isinstance(model_drivers, list) and model_drivers:
        return "; ".join(f"{d['label']} {d['relation']} (+{d['points']} pts)" for d in model_drivers)
    return ", ".join(d for d in health_drivers if d)


def _text_values(scored: pd.DataFrame, columns: list[str]) -> np.ndarray:
    present = [c for c in columns if c in scored]
    return scored[present].astype(object).where(scored[present].notna(), None).to_numpy()


def _field_values(scored: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One column per PUSHED_FIELDS entry: the value as the CRM should show it (NaN/None where there is none)."""
    health_drivers = _text_values(scored, ["driver_1", "driver_2", "driver_3"])
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
    values = _field_values(scored, as_of)
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


def _isoformat(values: pd.Series) -> pd.Series:
    """datetime.isoformat() of a whole column at once (None where missing)."""
    stamps = pd.to_datetime(values)
    text = pd.Series(np.datetime_as_string(stamps.to_numpy(dtype="datetime64[us]"), unit="us"), index=values.index)
    return text.str.removesuffix(".000000").astype(object).where(stamps.notna().to_numpy(), None)


def _with_fields(payloads: pd.Series, fields: pd.DataFrame) -> list[str]:
    """The JSON object texts `payloads` with `fields`' columns added as further keys (the later key wins when one
    is already there, as for a dict update), without decoding and re-encoding every payload."""
    out = []
    for payload, more in zip(payloads.to_numpy(dtype=object), json_lines(fields), strict=True):
        body = payload.rstrip()[:-1].rstrip()
        out.append(body + more[1:] if body.endswith("{") else body + "," + more[1:])
    return out


def _outbox_rows(due: pd.DataFrame, vendor: str, operation: str, extra: dict[str, pd.Series]) -> pd.DataFrame:
    """Outbox rows for `due` actions to one vendor: the action's payload plus its due date, dedupe key and target."""
    fields = pd.DataFrame({"due": due["due_text"], "dedupe_key": due["dedupe_key"], **extra}, index=due.index)
    return pd.DataFrame({
        "vendor": vendor, "operation": operation, "account_id": due["account_id"].to_numpy(),
        "dedupe_key": (due["dedupe_key"] + ":" + vendor).to_numpy(), "payload": _with_fields(due["payload"], fields),
        "status": "pending", "attempts": 0,
    })  # fmt: skip


OUTBOX_COLUMNS = ("vendor", "operation", "account_id", "dedupe_key", "payload", "status", "attempts", "created_at",
                  "updated_at")  # fmt: skip


def release_due_actions(conn: Connection, now: datetime) -> int:
    """Turn planned actions into outbox rows: tasks at once (the CRM task carries its due date), messages when due.

    Set-based: a task goes to the CRM of lowest rank that holds the company, a message to every messaging vendor
    (to the account's first eligible contact, app/programs/eligibility.py); an action with no target is marked
    `no_target`. Payloads travel as JSON text, extended without being decoded."""
    actions = Action.__table__
    query = select(actions.c.id, actions.c.account_id, actions.c.kind, actions.c.due, actions.c.dedupe_key,
                   cast(actions.c.payload, Text)).where(
        actions.c.status == "planned", or_(actions.c.kind == "crm_task", actions.c.due <= now)
    )  # fmt: skip
    due = fetch_frame(conn, query, ["id", "account_id", "kind", "due", "dedupe_key", "payload"])
    if due.empty:
        return 0
    due = due.astype({"id": "int64", "account_id": "int64"})
    due["due_text"] = _isoformat(due["due"])
    accounts = query.with_only_columns(actions.c.account_id)
    targets = company_targets(conn, accounts).astype({"account_id": "int64"})
    rank = {c.name: i for i, c in enumerate(all_connectors())}
    frames = []
    tasks = due[due["kind"] == "crm_task"]
    task_vendors = [c.name for c in all_connectors() if c.tasks]
    homes = targets[targets["vendor"].isin(task_vendors)].assign(rank=lambda t: t["vendor"].map(rank))
    homes = homes.sort_values(["account_id", "rank"]).drop_duplicates("account_id").set_index("account_id")
    tasks = tasks[tasks["account_id"].isin(homes.index)]
    for vendor, group in tasks.groupby(tasks["account_id"].map(homes["vendor"])):
        company = group["account_id"].map(homes["external_id"])
        frames.append(_outbox_rows(group, vendor, CREATE_TASK, {"company_id": company}))
    messages = due[due["kind"] != "crm_task"]
    emails = recipients(conn, now, accounts)["email"] if not messages.empty else pd.Series(dtype=object)
    messages = messages[messages["account_id"].isin(emails.index)]
    for vendor in [c.name for c in all_connectors() if c.messages]:
        companies = targets[targets["vendor"] == vendor].drop_duplicates("account_id").set_index("account_id")
        company = messages["account_id"].map(companies["external_id"]).astype(object)
        company = company.where(company.notna(), None)
        extra = {"email": messages["account_id"].map(emails), "company_id": company}
        frames.append(_outbox_rows(messages, vendor, SEND_MESSAGE, extra))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(OUTBOX_COLUMNS))
    stamp = datetime.now()
    rows["created_at"] = rows["updated_at"] = stamp
    staged_insert(conn, OutboxRow.__table__, rows, OUTBOX_COLUMNS, json_columns=["payload"], conflict=["dedupe_key"])
    has_messaging = any(c.messages for c in all_connectors())
    released = set(tasks["id"]) | (set(messages["id"]) if has_messaging else set())
    _mark(conn, due["id"], np.where(due["id"].isin(released), "released", "no_target"))
    return len(rows)


def _mark(conn: Connection, ids: pd.Series, statuses: np.ndarray) -> None:
    """Set each action's status in one statement, joined to a staging table (no IN list of 100,000 ids)."""
    stage = temp_table(conn, "_stage_action_status", [Column("id", BigInteger), Column("status", String(16))])
    copy_rows(conn, stage, ["id", "status"], list(zip(ids.astype(int).tolist(), statuses.tolist(), strict=True)))
    conn.execute(update(Action).where(Action.id == stage.c.id).values(status=stage.c.status))
    stage.drop(conn)
