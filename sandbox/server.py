"""Run a WSGI sandbox on a free loopback port in a background thread, and the handle every vendor sandbox returns.

Each vendor package exports `start_sandbox(book) -> RunningSandbox`: use it as a context manager (or call `stop()`),
point a connector at it with `settings_env()`, inspect or fault it through `.state` / `.faults`.

The server is cheroot's threaded HTTP/1.1 server, which keeps connections alive as the vendors' APIs do: the SDKs
reuse one connection per pooled session instead of opening a TCP connection per call. (werkzeug's development
server answered every request with `Connection: close` and held each handler thread in a 10 ms drain after the
response: the demo's write-back and link sync paid both on ~2,000 calls.)
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from cheroot.wsgi import Server

from sandbox.faults import Faults

StateT = TypeVar("StateT")

# Requests served at once: more than any client here sends side by side (Intercom's write-back sends 8); a request
# beyond them waits for a thread. Idle keep-alive connections hold no thread.
SERVER_THREADS = 16

log = logging.getLogger(__name__)


class LoopbackServer(Server):
    """cheroot's WSGI server, logging through `logging` (not to stderr) and keeping every idle connection alive."""

    keep_alive_conn_limit = None  # cheroot closes connections beyond 10 idle ones; the demo's clients hold more
    expiration_interval = 0.05  # the connection loop's select() timeout, which is also how long stop() may take

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level, "%s", msg, exc_info=traceback)


@dataclass
class RunningServer:
    base_url: str
    server: LoopbackServer
    thread: threading.Thread

    @property
    def app(self) -> Any:
        """The WSGI app being served."""
        return self.server.wsgi_app

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)


def start_server(app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `app` threaded on host:port (0 = any free port) until `stop()` is called.

    The server binds and starts its worker threads on a daemon thread, so they are daemon threads too (threads
    inherit it): a server nobody stopped does not keep the process from exiting, as with werkzeug's server.
    """
    server = LoopbackServer((host, port), app, numthreads=SERVER_THREADS)
    bound: Future[int] = Future()

    def run() -> None:
        try:
            server.prepare()
        except BaseException as error:  # noqa: BLE001 - raised by start_server, in the caller's thread
            bound.set_exception(error)
            return
        bound.set_result(server.bind_addr[1])
        server.serve()

    thread = threading.Thread(target=run, name="sandbox-server", daemon=True)
    thread.start()
    bound_port = bound.result()
    thread.name = f"sandbox-{bound_port}"
    return RunningServer(f"http://{host}:{bound_port}", server, thread)


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
