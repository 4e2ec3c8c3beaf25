"""Intercom sandbox: the REST API we use (2.11 shapes) over an in-memory workspace seeded from a book.

    with start_sandbox(book) as intercom:       # a RunningSandbox seeded from a canonical Book
        env = intercom.settings_env()           # INTERCOM_BASE_URL / INTERCOM_ACCESS_TOKEN
        intercom.workspace.find_contact(email=...)

`create_app(IntercomState(workspace=Workspace.from_book(book)))` is the bare WSGI app for hosting it elsewhere.
"""

from __future__ import annotations

from typing import Any

from sandbox.intercom.app import IntercomState, RateLimiter, create_app, error_body
from sandbox.intercom.values import DEFAULT_TOKEN, ApiError, epoch
from sandbox.intercom.workspace import Workspace
from sandbox.server import RunningSandbox, start_server

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "IntercomSandbox",
    "IntercomState",
    "RateLimiter",
    "Workspace",
    "create_app",
    "epoch",
    "error_body",
    "start_sandbox",
]


class IntercomSandbox(RunningSandbox[IntercomState]):
    """A running Intercom app; `workspace` holds its records, `state` also the rate limiter and request log."""

    @property
    def workspace(self) -> Workspace:
        return self.state.workspace

    def settings_env(self) -> dict[str, str]:
        return {"INTERCOM_BASE_URL": self.base_url, "INTERCOM_ACCESS_TOKEN": min(self.workspace.tokens)}


def start_sandbox(
    book: Any | None = None, *, host: str = "127.0.0.1", port: int = 0, **workspace_options: Any
) -> IntercomSandbox:
    """Serve a sandbox seeded from `book` (anything with accounts / contacts / events frames) on a loopback port."""
    workspace = Workspace.from_book(book, **workspace_options) if book is not None else Workspace(**workspace_options)
    state = IntercomState(workspace=workspace)
    return IntercomSandbox(state, start_server(create_app(state), host, port))
