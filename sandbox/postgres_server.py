"""A throwaway PostgreSQL cluster on a free loopback port, for the fault suite: stopped, started and frozen at will.

The shared PostgreSQL on 5432 is never touched; this cluster lives in a temporary directory and goes with it.
initdb refuses to run as root, so as root the cluster belongs to the `postgres` user (run through runuser).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sandbox.redis_server import free_port


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise FileNotFoundError("initdb is not installed (/usr/lib/postgresql/*/bin)")
    return Path(initdb).parent


class ThrowawayPostgres:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port, self.bin = directory, port, _binaries()
        self.data = directory / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        if self.as_user:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.directory / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, background workers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> list[int]:
        frozen = self.processes()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        return frozen

    @staticmethod
    def thaw(frozen: list[int]) -> None:
        for pid in frozen:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """initdb a cluster in a temporary directory, start it, yield it; stopped and deleted on exit."""
    directory = Path(tempfile.mkdtemp(prefix="cse-pg-"))
    server = ThrowawayPostgres(directory, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            for pid in server.processes():
                os.kill(pid, signal.SIGCONT)
            server.stop()
        except (OSError, subprocess.CalledProcessError, ValueError):
            pass
        shutil.rmtree(directory, ignore_errors=True)
