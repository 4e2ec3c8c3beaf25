"""The programs admin page without a browser (SQLite and PostgreSQL): a program switched off in the web app is
audited and enrolls no one at the next scoring or tick, and on again it does; a draft is checked by the loader
`cse programs validate` uses, with the file's line and field; only admins may switch, and never without CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.programs.definitions import load_programs
from app.programs.tick import Limits, enroll, run_tick
from app.settings import Settings
from app.store.models import AuditEntry, ProgramEnrollment
from app.web import create_app
from app.web.admin_programs import problem_parts
from tests.programs_support import T0, book, scored
from tests.web_support import csrf_token, sign_in

WINBACK = """program: winback
title: Win back
entry: risk >= 40
holdout: 0
steps:
  - key: call
    day: 0
    channel: crm_task
    text: {default: {title: "Call {name}", body: "ARR {arr}"}}
"""
LIMITS = Limits(messages_per_week=2, task_budget_per_csm=1000)


@pytest.fixture
def settings(tmp_path) -> Settings:
    folder = tmp_path / "programs"
    folder.mkdir()
    (folder / "winback.yaml").write_text(WINBACK, encoding="utf-8")
    return Settings(data_dir=tmp_path / "data", secret_key="a-test-session-key", programs_dir=folder)


@pytest.fixture
def client(store, settings):
    return create_app(settings, engine=store).test_client()


def _entered(store) -> int:
    with store.connect() as conn:
        return len(conn.execute(select(ProgramEnrollment.id).where(ProgramEnrollment.program == "winback")).all())


def _score_and_tick(store, settings, ids, at) -> None:
    """What the scheduler does: the scoring's enrollment pass, then a tick, with the deployment's programs."""
    programs = load_programs(settings, store)
    with store.begin() as conn:
        enroll(conn, programs, scored(ids, [80.0] * len(ids)), at)
    with store.begin() as conn:
        run_tick(conn, programs, at, LIMITS)


def _switch(client, verb: str):
    token = csrf_token(client, "/admin/programs")
    return client.post(f"/admin/programs/winback/{verb}", data={"csrf_token": token})


def test_a_switched_off_program_enrolls_no_one_until_switched_on(client, store, settings):
    ids = book(store, 3)
    sign_in(client, store, "admin", "ada")
    assert _switch(client, "disable").status_code == 302
    assert "winback" not in load_programs(settings, store)
    page = client.get("/admin/programs").get_data(as_text=True)
    assert "<strong>off</strong>" in page and "off by ada" in page

    _score_and_tick(store, settings, ids, T0)
    assert _entered(store) == 0

    assert _switch(client, "enable").status_code == 302
    _score_and_tick(store, settings, ids, T0 + timedelta(hours=1))
    assert _entered(store) == 3
    with store.connect() as conn:
        logged = conn.execute(select(AuditEntry.username, AuditEntry.action, AuditEntry.target, AuditEntry.at)).all()
    assert [(u, a, t) for u, a, t, _ in logged] == [("ada", "program.disable", "winback"),
                                                    ("ada", "program.enable", "winback")]  # fmt: skip
    assert all(at is not None for *_, at in logged)


def test_switching_needs_an_admin_and_a_csrf_token(client, store):
    sign_in(client, store, "csm", "carl")
    assert client.get("/admin/programs").status_code == 403
    token = csrf_token(client, "/")
    assert client.post("/admin/programs/winback/disable", data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in(client, store, "admin", "ada")
    refused = client.post("/admin/programs/winback/disable")
    assert refused.status_code == 400 and b"CSRF" in refused.data
    with store.connect() as conn:
        assert conn.execute(select(AuditEntry.id)).all() == []


def test_a_draft_is_validated_with_file_line_and_field(client, store):
    sign_in(client, store, "admin", "ada")
    broken = WINBACK.replace("    day: 0", "    day: soon")
    page = client.post(
        "/admin/programs/winback",
        data={"content": broken, "do": "validate", "csrf_token": csrf_token(client, "/admin/programs/winback")},
    ).get_data(as_text=True)
    line = broken.splitlines().index("    day: soon") + 1
    assert f'data-line="{line}" data-field="steps.0.day"' in page
    good = client.post(
        "/admin/programs/winback",
        data={"content": WINBACK, "do": "validate", "csrf_token": csrf_token(client, "/admin/programs/winback")},
    ).get_data(as_text=True)
    assert "Valid." in good and 'class="problem"' not in good


def test_problem_lines_split_into_file_line_and_field():
    assert problem_parts("winback.yaml:7: steps.0.day: Input should be a valid number") == {
        "file": "winback.yaml", "line": 7, "field": "steps.0.day", "message": "Input should be a valid number",
    }  # fmt: skip
    assert problem_parts("winback.yaml: not valid YAML: mapping values are not allowed here")["line"] is None
