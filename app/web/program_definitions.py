"""The programs as the web pages read them: each program's active version, parsed once per text and process (a
page view re-reads the files and stored versions, cheap, but does not re-validate an unchanged text, which is not),
one program at a time, so one that no longer loads does not hide the others."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from app.web import context

if TYPE_CHECKING:  # the program loader reads the engine's columns (pandas): imported by the calls, not start-up
    from app.sync.versions import MappingVersionInfo
    from engine.programs.definition import Program


@dataclass(frozen=True)
class Definition:
    name: str
    active: MappingVersionInfo  # the active version (0 = the file)
    program: Program | None  # None when it does not load
    problems: tuple[str, ...]


def file_name(name: str) -> str:
    return f"{name}.yaml"


@lru_cache(maxsize=256)
def parse(text: str, name: str) -> tuple[Program | None, tuple[str, ...]]:
    """A program text checked as `cse programs validate` checks a file (and named like its file)."""
    from engine.programs.definition import ProgramError, parse_program

    try:
        program = parse_program(text, file_name(name))
    except ProgramError as error:
        return None, tuple(error.problems)
    if program.program != name:
        return None, (f"{file_name(name)}: program: {program.program!r} must match the file name {name!r}",)
    return program, ()


def definitions(conn: Connection) -> dict[str, Definition]:
    """Every program's active version, parsed, whether it runs or is switched off."""
    from app.programs.definitions import program_names, program_versions, programs_dir_of

    directory = programs_dir_of(context.settings())
    out = {}
    for name in program_names(conn, directory):
        active = program_versions(conn, name, directory)[-1]
        out[name] = Definition(name, active, *parse(active.content, name))
    return out
