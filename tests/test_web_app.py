"""The web app without a browser: users and roles, sessions, CSRF, sign-in rate limit, audit, and the dashboard's
SQL figures against the scoring run's own summary (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.rescoring import rescore
from app.settings import Settings
from app.store.models import AuditEntry, BandOverride, Score
from app.users import UserError, add_user, authenticate, set_password
from app.web import book, create_app
from engine.health_config import default_health_config
from tests.web_support import PASSWORD, csrf_token, sign_in

AS_OF = date(2026, 11, 30)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key="a-test-session-key", login_attempts_per_minute=3)


@pytest.fixture
def client(store, settings):
    return create_app(settings, engine=store).test_client()


def test_passwords_are_hashed_and_checked(store):
    with store.begin() as conn:
        add_user(conn, "ada", PASSWORD, "admin")
        stored = conn.execute(select(AuditEntry)).all()
    with store.connect() as conn:
        assert authenticate(conn, "ada", PASSWORD).role == "admin"
        assert authenticate(conn, "ada", PASSWORD + "x") is None
        assert authenticate(conn, "nobody", PASSWORD) is None
        hashed = conn.exec_driver_sql("SELECT password_hash FROM users").scalar()
    assert PASSWORD not in hashed and stored == []
    with store.begin() as conn, pytest.raises(UserError):
        add_user(conn, "eve", PASSWORD, "root")
    with store.begin() as conn, pytest.raises(UserError):
        add_user(conn, "eve", "short", "viewer")


def test_signing_in_needs_the_password_and_a_csrf_token(client, store):
    with store.begin() as conn:
        add_user(conn, "ada", PASSWORD, "admin")
    assert client.get("/").status_code == 302
    no_token = client.post("/login", data={"username": "ada", "password": PASSWORD})
    assert no_token.status_code == 400 and b"CSRF" in no_token.data
    wrong = client.post("/login", data={"username": "ada", "password": "nope", "csrf_token": csrf_token(client)})
    assert wrong.status_code == 401
    right = client.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert right.status_code == 302
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/").status_code == 200


def test_the_session_cookie_is_secure_over_https(client, store):
    with store.begin() as conn:
        add_user(conn, "ada", PASSWORD, "admin")
    page = client.get("/login", base_url="https://cse.example.com").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD, "csrf_token": token},
        base_url="https://cse.example.com",
        headers={"Referer": "https://cse.example.com/login"},
    )
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_sign_in_attempts_are_limited_per_address_and_user(client, store):
    with store.begin() as conn:
        add_user(conn, "ada", PASSWORD, "admin")
    token = csrf_token(client)
    answers = [
        client.post("/login", data={"username": "ada", "password": "guess", "csrf_token": token}).status_code
        for _ in range(4)
    ]
    assert answers == [401, 401, 401, 429]
    other_user = client.post("/login", data={"username": "bob", "password": "guess", "csrf_token": token})
    assert other_user.status_code == 401


def test_a_password_change_ends_open_sessions(client, store):
    sign_in(client, store, "viewer")
    assert client.get("/accounts").status_code == 200
    with store.begin() as conn:
        set_password(conn, "viewer-user", "another long password")
    assert client.get("/accounts").status_code == 302


@pytest.mark.parametrize("role", ["csm", "viewer"])
def test_only_admins_open_admin_pages(client, store, role):
    sign_in(client, store, role)
    for path in ("/admin/mappings", "/admin/health", "/admin/operations", "/admin/events", "/admin/audit"):
        assert client.get(path).status_code == 403, path
    assert client.get("/").status_code == 200


def test_viewers_cannot_act_on_accounts(client, store):
    sign_in(client, store, "viewer")
    response = client.post("/accounts/1/action", data={"type": "clear_override", "csrf_token": csrf_token(client, "/")})
    assert response.status_code == 403


@pytest.fixture
def scored(store):
    """A small demo book loaded and scored, with the scoring run's summary (what `cse score --json` prints)."""
    generated = generate_book(BookSpec(seed=3, active_accounts=120, days=60, as_of=AS_OF))
    load_book(store, generated.accounts, generated.contacts, generated.events)
    result = rescore(store, AS_OF, default_health_config(), 2.0)
    return result.totals.summary()


def test_the_dashboard_band_summary_is_the_scoring_summary(store, scored):
    with store.connect() as conn:
        as_of = book.book_date(conn)
        figures = book.book_figures(conn, as_of, book.BookFilter())
        at_risk = book.book_figures(conn, as_of, book.BookFilter(band="at_risk"))["summary"]
    assert as_of == AS_OF and figures["summary"] == scored
    assert sum(w["accounts"] for w in figures["workload"]) == scored["accounts"]
    assert sum(figures["distribution"]) == scored["accounts"] - scored["unscored"]
    assert at_risk["accounts"] == scored["bands"]["at_risk"]["count"]


def test_an_override_from_the_account_page_is_audited_and_scored(client, store, scored):
    sign_in(client, store, "csm")
    with store.connect() as conn:
        account_id = conn.scalar(select(Score.account_id).where(Score.band != "healthy").limit(1))
    token = csrf_token(client, f"/accounts/{account_id}")
    form = {"type": "override", "band": "healthy", "reason": "Renewal signed", "days": "7", "csrf_token": token}
    assert client.post(f"/accounts/{account_id}/action", data=form).status_code == 302
    page = client.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert "Overridden to <strong>Healthy</strong>" in page and "Renewal signed" in page
    with store.connect() as conn:
        assert conn.scalar(select(BandOverride.author)) == "csm-user"
        assert conn.scalar(select(AuditEntry.action)) == "account.override"


def test_cse_users_add_passwd_list(tmp_path):
    env = {
        "CSE_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cse.db'}",
        "PATH": "/usr/bin:/bin",
        "CSE_NEW_PASSWORD": "first long password",
    }

    def cse(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app", "users", *args], env={**env, **extra}, capture_output=True, text=True
        )

    assert cse("add", "ada", "--role", "admin").returncode == 0
    assert cse("add", "ada", "--role", "admin").returncode == 1
    assert cse("add", "bob", "--role", "boss").returncode == 1
    assert cse("passwd", "ada", CSE_NEW_PASSWORD="second long password").returncode == 0
    listed = cse("list").stdout
    assert "ada\tadmin" in listed and "bob" not in listed


def test_the_session_key_file_is_made_once_outside_the_data_dir(tmp_path, store):
    settings = Settings(data_dir=tmp_path / "data", secret_key_file=tmp_path / "keys" / "web.key")
    first = create_app(settings, engine=store).secret_key
    assert create_app(settings, engine=store).secret_key == first and len(first) >= 32
    assert (tmp_path / "keys" / "web.key").stat().st_mode & 0o077 == 0
    with pytest.raises(RuntimeError, match="inside the data directory"):
        create_app(replace(settings, secret_key_file=tmp_path / "data" / "web.key"), engine=store)
