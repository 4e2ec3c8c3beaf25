"""Referral attribution: a referral is recorded with its referrer (by hand for a program, or from the CRM's
referred-by field on the referred company); when the referred company becomes an active account its ARR is
attributed to the referrer and to the program that asked, and `cse programs report` shows it per program."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert, select
from typer.testing import CliRunner

from app.cli import cli
from app.programs.definitions import active_programs
from app.programs.referrals import attribute_referrals, record_referral, referrer_revenue, sync_referrals
from app.programs.report import programs_report
from app.store.load import load_accounts
from app.store.models import ProgramEnrollment, Referral
from engine.programs import DEFAULT_PROGRAMS_DIR
from tests.factories import accounts_frame
from tests.programs_support import T0, book

PROGRAMS = active_programs(None, DEFAULT_PROGRAMS_DIR)


def new_account(store, key: str, name: str, domain: str, arr: float, **fields) -> int:
    frame = accounts_frame(1).assign(key=key, name=name, domain=domain, arr=arr, **fields)
    with store.begin() as conn:
        return load_accounts(conn, frame)[key]


def in_advocacy(store, account_id: int, holdout: bool) -> None:
    with store.begin() as conn:
        conn.execute(insert(ProgramEnrollment).values(
            account_id=account_id, program="advocacy", status="active", requested_by="program engine",
            source="engine", requested_at=T0 - timedelta(days=20), entered_at=T0 - timedelta(days=20),
            holdout=holdout, step=2, tier=0,
        ))  # fmt: skip


def test_a_programs_referral_is_attributed_when_the_company_becomes_an_account(store):
    referrer, other = book(store, 2)
    with store.begin() as conn:
        assert record_referral(conn, referrer, name="Newco Ltd", domain="https://www.newco.example/",
                               program="advocacy", now=T0)  # fmt: skip
        assert not record_referral(conn, referrer, name="Newco", domain="newco.example", program="advocacy", now=T0)
        assert attribute_referrals(conn, T0) == 0  # not a customer yet
    with store.connect() as conn:
        report = programs_report(conn, PROGRAMS)["advocacy"]["referral_revenue"]
    assert report == {"referrals": 1, "converted": 0, "revenue": 0.0}

    newco = new_account(store, "N1", "Newco Ltd", "newco.example", 48_000.0)
    with store.begin() as conn:
        assert attribute_referrals(conn, T0 + timedelta(days=30)) == 1
        assert attribute_referrals(conn, T0 + timedelta(days=31)) == 0  # attributed once
        row = conn.execute(select(Referral.referred_account_id, Referral.arr_attributed)).one()
        assert tuple(row) == (newco, 48_000.0)
        assert referrer_revenue(conn) == {referrer: 48_000.0}
    with store.connect() as conn:
        assert programs_report(conn, PROGRAMS)["advocacy"]["referral_revenue"] == {
            "referrals": 1, "converted": 1, "revenue": 48_000.0}  # fmt: skip


def test_a_crm_referred_by_field_credits_the_referrer_and_the_program_that_asked(store):
    asked, not_asked, control = book(store, 3)  # keys A0000..A0002, domains company0..2.example
    in_advocacy(store, asked, holdout=False)
    in_advocacy(store, control, holdout=True)  # the control group was never asked: not credited
    by_domain = new_account(store, "R1", "Referred One", "one.example", 30_000.0, referred_by="company0.example")
    by_key = new_account(store, "R2", "Referred Two", "two.example", 12_000.0, referred_by="A0001")
    new_account(store, "R3", "Referred Three", "three.example", 9_000.0, referred_by="Company 2")
    new_account(store, "R4", "Gone Four", "four.example", 7_000.0, referred_by="A0001", status="churned")
    new_account(store, "R5", "Nobody Five", "five.example", 5_000.0, referred_by="unknown.example")
    with store.begin() as conn:
        assert sync_referrals(conn, PROGRAMS, T0) == {"recorded": 4, "attributed": 3}
        assert sync_referrals(conn, PROGRAMS, T0 + timedelta(days=1)) == {"recorded": 0, "attributed": 0}
        credited = dict(conn.execute(select(Referral.referred_account_id, Referral.program)
                                     .where(Referral.referred_account_id.is_not(None))).all())  # fmt: skip
        assert referrer_revenue(conn) == {asked: 30_000.0, not_asked: 12_000.0, control: 9_000.0}
    assert credited[by_domain] == "advocacy" and credited[by_key] is None
    with store.connect() as conn:
        report = programs_report(conn, PROGRAMS)
    assert report["advocacy"]["referral_revenue"] == {"referrals": 1, "converted": 1, "revenue": 30_000.0}


def test_cse_programs_report_prints_referral_revenue_per_program(store, monkeypatch, tmp_path):
    referrer, _ = book(store, 2)
    new_account(store, "N1", "Newco", "newco.example", 24_000.0)
    monkeypatch.setenv("DATABASE_URL", store.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CSE_DATA_DIR", str(tmp_path))
    recorded = CliRunner().invoke(cli, ["programs", "referral", "--referrer", "company0.example", "--company",
                                        "Newco", "--domain", "newco.example", "--program", "advocacy"])  # fmt: skip
    assert recorded.exit_code == 0, recorded.output
    assert "1 attributed" in recorded.stdout
    text = CliRunner().invoke(cli, ["programs", "report"])
    assert text.exit_code == 0, text.output
    assert "referrals 1, became customers 1, referral revenue 24,000" in text.stdout
    body = json.loads(CliRunner().invoke(cli, ["programs", "report", "--json"]).stdout)
    assert body["programs"]["advocacy"]["referral_revenue"]["revenue"] == 24_000.0
    unknown = CliRunner().invoke(cli, ["programs", "referral", "--referrer", "nobody", "--company", "X"])
    assert unknown.exit_code == 1
