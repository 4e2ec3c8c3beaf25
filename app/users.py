"""Users of the web app (hashed passwords, roles) and the audit log every change made through it goes to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, insert, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.store.models import AuditEntry, User

ROLES = ("admin", "csm", "viewer")  # admin edits configuration; csm works accounts; viewer reads
MIN_PASSWORD = 10


@cache
def _dummy_hash() -> str:
    """Compared against when the user does not exist, so a wrong name costs as long as a wrong password; made on
    first use, not at import, which every `cse` command and web process pays."""
    return generate_password_hash("no such user, no such password")


class UserError(ValueError):
    """A user cannot be added or changed as asked (unknown role, short password, taken or unknown name)."""


@dataclass(frozen=True)
class SignedIn:
    id: int
    username: str
    role: str
    password_changed_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_act(self) -> bool:
        """CSMs and admins may add notes and override bands; viewers only read."""
        return self.role in ("admin", "csm")


def _checked(role: str, password: str) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


def add_user(conn: Connection, username: str, password: str, role: str, now: datetime | None = None) -> None:
    _checked(role, password)
    if not username or len(username) > 64 or not username.isprintable():
        raise UserError("the user name must be 1 to 64 printable characters")
    if conn.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} exists already")
    now = now or datetime.now()
    conn.execute(
        insert(User).values(
            username=username,
            password_hash=generate_password_hash(password),
            role=role,
            created_at=now,
            password_changed_at=now,
        )
    )


def set_password(conn: Connection, username: str, password: str, now: datetime | None = None) -> None:
    """A new password; sessions signed in with the old one end (they carry the time it was set)."""
    _checked(ROLES[0], password)
    changed = conn.execute(
        update(User)
        .where(User.username == username)
        .values(password_hash=generate_password_hash(password), password_changed_at=now or datetime.now())
    ).rowcount
    if not changed:
        raise UserError(f"no user {username!r}")


def list_users(conn: Connection) -> list[dict]:
    rows = conn.execute(select(User.username, User.role, User.created_at).order_by(User.username))
    return [row._asdict() for row in rows]


def authenticate(conn: Connection, username: str, password: str) -> SignedIn | None:
    row = conn.execute(
        select(User.id, User.password_hash, User.password_changed_at, User.role).where(User.username == username)
    ).first()
    if row is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(row.password_hash, password):
        return None
    return SignedIn(row.id, username, row.role, row.password_changed_at)


def signed_in(conn: Connection, user_id: int, password_changed_at: str) -> SignedIn | None:
    """The user a session names, if the password has not changed since it was signed in."""
    row = conn.execute(
        select(User.id, User.username, User.role, User.password_changed_at).where(User.id == user_id)
    ).first()
    if row is None or row.password_changed_at.isoformat() != password_changed_at:
        return None
    return SignedIn(*row)


def audit(
    conn: Connection,
    username: str,
    action: str,
    target: str | None = None,
    detail: dict | None = None,
    now: datetime | None = None,
) -> None:
    """Record one change with who made it and when, in the transaction that made it."""
    conn.execute(
        insert(AuditEntry).values(
            at=now or datetime.now(), username=username, action=action, target=target, detail=detail
        )
    )


def audit_log(conn: Connection, limit: int = 200) -> list[dict]:
    query = select(AuditEntry.at, AuditEntry.username, AuditEntry.action, AuditEntry.target, AuditEntry.detail)
    return [row._asdict() for row in conn.execute(query.order_by(AuditEntry.id.desc()).limit(limit))]
