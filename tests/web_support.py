"""Signing a Flask test client in to the web app, as a user of a given role stored in the test's store."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from app.users import add_user

PASSWORD = "correct horse battery"


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def sign_in(client, store: Engine, role: str = "admin", username: str | None = None) -> str:
    """Add a user of `role` and sign the client in as them; returns the user name."""
    username = username or f"{role}-user"
    with store.begin() as conn:
        add_user(conn, username, PASSWORD, role)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return username
