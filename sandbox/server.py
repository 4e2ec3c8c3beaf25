"""Run a WSGI sandbox on a free loopback port in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


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
