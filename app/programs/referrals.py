"""Referrals: recorded with their referrer, attributed when the referred company becomes an account.

A referral comes in two ways:

* **from the CRM**: a company whose `referred_by` field (a canonical account field any mapping can fill, e.g. a
  HubSpot property or a Salesforce custom field) names its referrer by account key, domain or name. It is recorded
  once, crediting the program that asked the referrer for referrals: the referrer's latest enrollment, entered
  before the referral, in a program with a referral step (a step key containing `referral`, e.g. advocacy's
  `referral_ask`); a control-group enrollment asked nothing, so it is not credited.
* **recorded by hand or by an integration** (`cse programs referral`, `record_referral`), naming the program.

`attribute_referrals` then matches every open referral to an active account by domain (else by name); the
referred account's ARR at that moment is the referral's revenue, attributed to the referrer and to the program, and
`cse programs report` shows it per program (`referral_revenue`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, and_, func, select, update

from app.programs.definitions import ActiveProgram
from app.store.bulk import dialect_insert
from app.store.models import Account, ProgramEnrollment, Referral

_SCHEME = re.compile(r"^[a-z]+://")


def normalize(text: str | None) -> str | None:
    """A name or domain compared loosely: lower case, no scheme, `www.` or trailing slash; None when blank."""
    if text is None:
        return None
    value = _SCHEME.sub("", str(text).strip().lower()).removeprefix("www.").rstrip("/")
    return value or None


def record_referral(
    conn: Connection, referrer_account_id: int, *, name: str | None = None, domain: str | None = None,
    program: str | None = None, source: str = "manual", now: datetime,
) -> bool:  # fmt: skip
    """Record one referral (once per referrer and referred company); True when it is new."""
    referred = normalize(domain) or normalize(name)
    if referred is None:
        raise ValueError("a referral names the referred company by name or domain")
    values = {
        "referrer_account_id": referrer_account_id, "referred_name": name, "referred_domain": normalize(domain),
        "program": program, "source": source, "recorded_at": now, "dedupe_key": f"{referrer_account_id}:{referred}",
    }  # fmt: skip
    statement = (
        dialect_insert(conn, Referral.__table__).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    return conn.execute(statement.returning(Referral.id)).first() is not None  # rowcount is unreliable here on PG


def _referrer_ids(conn: Connection, names: list[str]) -> dict[str, int]:
    """Referrer text (normalized) -> account id, matched on key, then domain, then name."""
    accounts = pd.DataFrame(conn.execute(select(Account.id, Account.key, Account.domain, Account.name)).all(),
                            columns=["id", "key", "domain", "name"])  # fmt: skip
    wanted = set(names)
    out: dict[str, int] = {}
    for column in ("name", "domain", "key"):  # later columns win: a key is the surest match
        keys = accounts[column].map(normalize)
        found = accounts.assign(match=keys)[keys.isin(wanted).to_numpy()]
        out.update(dict(zip(found["match"], found["id"].astype(int), strict=True)))
    return out


def find_account(conn: Connection, text: str) -> int | None:
    """The account a referrer text names (key, domain or name), if any."""
    wanted = normalize(text)
    return _referrer_ids(conn, [wanted]).get(wanted) if wanted else None


def _asking_programs(programs: Mapping[str, ActiveProgram]) -> list[str]:
    return sorted(n for n, a in programs.items() if any("referral" in s.key for s in a.program.steps))


def _crediting_program(conn: Connection, referrer: int, asking: list[str], before: datetime) -> str | None:
    if not asking:
        return None
    query = (
        select(ProgramEnrollment.program)
        .where(ProgramEnrollment.account_id == referrer, ProgramEnrollment.program.in_(asking),
               ProgramEnrollment.entered_at <= before, ProgramEnrollment.holdout.is_not(True))
        .order_by(ProgramEnrollment.entered_at.desc())
        .limit(1)
    )  # fmt: skip
    return conn.execute(query).scalar()


def referrals_from_accounts(conn: Connection, programs: Mapping[str, ActiveProgram], now: datetime) -> int:
    """Record a referral for every account whose CRM names its referrer (`referred_by`); returns how many are new."""
    referred = pd.DataFrame(
        conn.execute(select(Account.id, Account.name, Account.domain, Account.referred_by)
                     .where(Account.referred_by.is_not(None))).all(),
        columns=["id", "name", "domain", "referred_by"],
    )  # fmt: skip
    if referred.empty:
        return 0
    referred["by"] = referred["referred_by"].map(normalize)
    referrers = _referrer_ids(conn, referred["by"].dropna().unique().tolist())
    referred["referrer"] = referred["by"].map(referrers)
    referred = referred[referred["referrer"].notna() & (referred["referrer"] != referred["id"])]
    keys = (
        referred["referrer"].astype(int).astype(str)
        + ":"
        + referred["domain"].map(normalize).fillna(referred["name"].map(normalize))
    )
    known = set(conn.execute(select(Referral.dedupe_key).where(Referral.source == "crm")).scalars())
    asking = _asking_programs(programs)
    new = 0
    for row in referred[~keys.isin(known)].itertuples():  # only referrals not recorded yet: a few per tick
        referrer = int(row.referrer)
        program = _crediting_program(conn, referrer, asking, now)
        new += record_referral(conn, referrer, name=row.name, domain=row.domain, program=program, source="crm",
                               now=now)  # fmt: skip
    return new


def attribute_referrals(conn: Connection, now: datetime) -> int:
    """Open referrals whose company is now an active account: that account and its ARR are attributed."""
    open_rows = pd.DataFrame(
        conn.execute(select(Referral.id, Referral.referrer_account_id, Referral.referred_name,
                            Referral.referred_domain).where(Referral.referred_account_id.is_(None))).all(),
        columns=["id", "referrer", "name", "domain"],
    )  # fmt: skip
    if open_rows.empty:
        return 0
    accounts = pd.DataFrame(
        conn.execute(select(Account.id, Account.name, Account.domain, Account.arr).where(Account.status == "active"))
        .all(), columns=["account", "name", "domain", "arr"],
    )  # fmt: skip
    by_domain = accounts.assign(k=accounts["domain"].map(normalize)).dropna(subset=["k"]).drop_duplicates("k")
    by_name = accounts.assign(k=accounts["name"].map(normalize)).dropna(subset=["k"]).drop_duplicates("k")
    match = open_rows["domain"].map(normalize).map(by_domain.set_index("k")["account"])
    match = match.fillna(open_rows["name"].map(normalize).map(by_name.set_index("k")["account"]))
    found = open_rows.assign(account=match).dropna(subset=["account"])
    found = found[found["account"].astype(int) != found["referrer"]]
    arr = accounts.set_index("account")["arr"]
    done = 0
    for row in found.itertuples():  # the referrals that just converted: a few per tick
        done += conn.execute(
            update(Referral).where(and_(Referral.id == int(row.id), Referral.referred_account_id.is_(None)))
            .values(referred_account_id=int(row.account), attributed_at=now,
                    arr_attributed=float(arr.get(int(row.account)) or 0.0))
        ).rowcount  # fmt: skip
    return done


def sync_referrals(conn: Connection, programs: Mapping[str, ActiveProgram], now: datetime) -> dict[str, int]:
    """Both steps, as the program tick runs them: new referrals from the CRM field, then attribution."""
    return {"recorded": referrals_from_accounts(conn, programs, now), "attributed": attribute_referrals(conn, now)}


def referral_revenue(conn: Connection) -> dict[str, dict[str, float]]:
    """Per crediting program ("" for none): referrals recorded, converted into accounts, and their ARR."""
    query = select(
        Referral.program, func.count(), func.count(Referral.referred_account_id), func.sum(Referral.arr_attributed)
    ).group_by(Referral.program)
    return {
        program or "": {"referrals": int(n), "converted": int(converted), "revenue": round(float(arr or 0.0), 2)}
        for program, n, converted, arr in conn.execute(query)
    }


def referrer_revenue(conn: Connection) -> dict[int, float]:
    """Attributed referral ARR per referrer account."""
    query = select(Referral.referrer_account_id, func.sum(Referral.arr_attributed)).where(
        Referral.arr_attributed.is_not(None)
    )
    return {int(a): float(v) for a, v in conn.execute(query.group_by(Referral.referrer_account_id))}
