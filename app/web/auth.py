"""Sign-in, sign-out and the role checks every page goes through.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure when the request came over HTTPS) holding the
user's id and the time their password was set, so `cse users passwd` ends every session signed in with the old one.
Sign-in attempts are limited per address and user name (Flask-Limiter, in memory per process).
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from app.users import SignedIn, authenticate, signed_in
from app.web import context

auth = Blueprint("auth", __name__, template_folder="templates")


class SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request itself came over HTTPS (directly or, with
    CSE_PROXY_HOPS, through a proxy that said so)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def login_key() -> str:
    """What sign-in attempts are counted by: the client address and the user name tried."""
    return f"{request.remote_addr}|{request.form.get('username', '')[:64]}"


def current_user() -> SignedIn | None:
    if "user" not in g:
        g.user = None
        if "uid" in session:
            with context.engine().connect() as conn:
                g.user = signed_in(conn, session["uid"], session.get("pwd_at", ""))
    return g.user


def requires(*roles: str):
    """The view needs a signed-in user (with one of `roles` when given): others go to sign-in, or get 403."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return guarded

    return decorate


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no //host, no scheme): sign-in never redirects elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.index")


@auth.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        with context.engine().connect() as conn:
            user = authenticate(conn, request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()
            session.update(uid=user.id, pwd_at=user.password_changed_at.isoformat())
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong user name or password.", "error")
        return render_template("login.html"), 401
    return render_template("login.html")


@auth.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


@auth.app_context_processor
def _templates() -> dict:
    return {"current_user": current_user}
