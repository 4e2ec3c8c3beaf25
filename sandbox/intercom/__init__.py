"""Intercom sandbox: the REST API we use (2.11 shapes) over an in-memory workspace seeded from a book.

    state = IntercomState(workspace=Workspace.from_book(book))
    with serving(create_app(state)) as server:           # sandbox.server.serving
        client = Intercom(token=DEFAULT_TOKEN, base_url=server.base_url)

`start_intercom_sandbox(book)` does both and returns (RunningServer, IntercomState).
"""

from __future__ import annotations

from typing import Any

from sandbox.intercom.app import IntercomState, RateLimiter, create_app, error_body
from sandbox.intercom.values import DEFAULT_TOKEN, ApiError, epoch
from sandbox.intercom.workspace import Workspace
from sandbox.server import RunningServer, start_server

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "IntercomState",
    "RateLimiter",
    "Workspace",
    "create_app",
    "epoch",
    "error_body",
    "start_intercom_sandbox",
]


def start_intercom_sandbox(
    book: Any | None = None, *, host: str = "127.0.0.1", port: int = 0, **workspace_options: Any
) -> tuple[RunningServer, IntercomState]:
    """Serve a sandbox seeded from `book` (anything with accounts / contacts / events frames) on a loopback port."""
    workspace = Workspace.from_book(book, **workspace_options) if book is not None else Workspace(**workspace_options)
    state = IntercomState(workspace=workspace)
    return start_server(create_app(state), host, port), state
