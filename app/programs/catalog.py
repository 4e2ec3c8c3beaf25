"""Which programs a deployment defines, by name, without loading the scoring stack: the web process offers them
on every account card, so this module reads only file names and the store (no pandas, no validation; the program
titles the card shows are read from the files once per file change).

A program exists when its file is in the programs folder (CSE_PROGRAMS_DIR, else the packaged reference programs)
or a version of it was stored by an admin (app/programs/definitions.py keeps those versions).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import Connection, select

from app.store.models import MappingVersion
from engine.programs import DEFAULT_PROGRAMS_DIR, program_files

KIND = "programs"  # MappingVersion.vendor of stored program versions


def programs_dir_of(settings) -> Path:
    """The deployment's programs folder (CSE_PROGRAMS_DIR), else the packaged reference programs."""
    return Path(settings.programs_dir) if settings.programs_dir else DEFAULT_PROGRAMS_DIR


def program_names(conn: Connection | None, directory: Path) -> list[str]:
    """Every program defined: its file in `directory` or a version stored in the store."""
    stored = set()
    if conn is not None:
        stored = set(conn.execute(select(MappingVersion.object).where(MappingVersion.vendor == KIND)).scalars())
    return sorted(set(program_files(directory)) | stored)


def offered_programs(settings, conn: Connection) -> tuple[str, ...]:
    """The programs a card offers for enrollment: every defined program, or those of CSE_CARD_PROGRAMS (in its
    order) that are defined — a name without a program would only collect requests nothing ever honours."""
    defined = program_names(conn, programs_dir_of(settings))
    if not settings.card_programs:
        return tuple(defined)
    return tuple(name for name in settings.card_programs if name in defined)


@lru_cache(maxsize=64)
def _title(path: str, mtime: float) -> str | None:
    """The `title:` of one program file (read again only when the file changes)."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    title = loaded.get("title") if isinstance(loaded, dict) else None
    return title if isinstance(title, str) and title.strip() else None


def program_titles(directory: Path) -> dict[str, str]:
    """Each program file's title by program name, as an account card names the programs an account is in (a version
    stored with `cse programs save` that renames a program shows under its file's title until the file follows)."""
    titles = {name: _title(str(path), path.stat().st_mtime) for name, path in program_files(directory).items()}
    return {name: title for name, title in titles.items() if title}
