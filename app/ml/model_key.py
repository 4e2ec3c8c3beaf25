"""The key that signs model artifacts, kept outside the data directory.

Model files are pickles: unpickling one runs whatever code it names. Anyone who can write to the data directory
could plant one, so a checksum stored next to it proves nothing; an HMAC whose key lives elsewhere does. The key
is `CSE_MODEL_KEY` when set (give every host that trains or scores the same value), else the file
`CSE_MODEL_KEY_FILE` (default `$XDG_CONFIG_HOME/cse/model.key`, i.e. `~/.config/cse/model.key`), which
`cse train` creates with a random key on first use (mode 0600). Loading never creates a key: without one, no
model is trusted. A key file inside the data directory is refused, since it would sit next to what it guards.
"""

from __future__ import annotations

from pathlib import Path

from app.keyfile import create_key_file
from app.settings import Settings

MIN_KEY_BYTES = 16


class ModelKeyError(RuntimeError):
    """No usable signing key: artifacts can be neither signed nor trusted."""


def model_key(settings: Settings, data_dir: Path, create: bool = False) -> bytes:
    """The HMAC key for model artifacts; `create` makes the key file when none exists (training does, loading not)."""
    if settings.model_key:
        key = settings.model_key.encode()
        if len(key) < MIN_KEY_BYTES:
            raise ModelKeyError(f"CSE_MODEL_KEY is too short; use at least {MIN_KEY_BYTES} random characters")
        return key
    path = settings.model_key_file
    if path.resolve().is_relative_to(Path(data_dir).resolve()):
        raise ModelKeyError(f"the model key file {path} is inside the data directory; keep it outside")
    if not path.exists():
        if not create:
            raise ModelKeyError(
                f"no model signing key (CSE_MODEL_KEY unset, {path} missing): no model can be trusted; "
                "set CSE_MODEL_KEY to the key the models were trained with, or retrain with `cse train`"
            )
        create_key_file(path)
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ModelKeyError(f"the model key file {path} holds fewer than {MIN_KEY_BYTES} bytes")
    return key
