"""Random keys kept in a file of their own (mode 0600), outside the data directory: the model signing key and the
web app's session key are both made this way on first use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_key_file(path: Path) -> None:
    """Write a fresh random key to `path` unless another process got there first (then theirs is used)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(handle, "w") as out:
        out.write(secrets.token_hex(32) + "\n")


def session_key(value: str | None, path: Path, data_dir: Path) -> bytes:
    """The web app's session-signing key: CSE_SECRET_KEY when set, else the key file (made on first start)."""
    if value:
        return value.encode()
    if path.resolve().is_relative_to(Path(data_dir).resolve()):
        raise RuntimeError(f"the session key file {path} is inside the data directory; keep it outside")
    if not path.exists():
        create_key_file(path)
    return path.read_bytes().strip()
