"""Run a WSGI sandbox on a free loopback port in a background thread, and the handle every vendor sandbox returns.

Each vendor package exports `start_sandbox(book) -> RunningSandbox`: use it as a context manager (or call `stop()`),
point a connector at it with `settings_env()`, inspect or fault it through `.state` / `.faults`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox.faults import Faults

StateT = TypeVar("StateT")


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request: the tests and the demo make thousands of calls."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@dataclass
class RunningServer:
    base_url: str
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_server(app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `app` threaded on host:port (0 = any free port) until `stop()` is called."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox-{server.server_port}", daemon=True
    )
    thread.start()
    return RunningServer(f"http://{host}:{server.server_port}", server, thread)


@contextmanager
def serving(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    running = start_server(app, host, port)
    try:
        yield running
    finally:
        running.stop()


@dataclass
class RunningSandbox(ABC, Generic[StateT]):
    """A vendor sandbox being served: its in-memory state, the loopback server, and what seeding created.

    The same shape for every vendor, so a test, a bench or the demo starts any of them the same way; a vendor
    subclass only says which settings point its connector here and names its state the vendor's way.
    """

    state: StateT
    server: RunningServer
    seeded: Any = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def faults(self) -> Faults:
        """The sandbox's fault switches (rate limits, server errors, expired sessions, partial batch failures)."""
        return self.state.faults  # type: ignore[attr-defined]

    @abstractmethod
    def settings_env(self) -> dict[str, str]:
        """Environment a `cse` process needs for its connector to talk to this sandbox instead of the vendor."""

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
