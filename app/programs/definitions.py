"""Which program definitions are active: the latest stored version of each, else its file in the programs folder.

Versions are kept exactly as mapping versions are (app/sync/versions.py, kind "programs"): every accepted edit
with its author and time, the shipped file as version 0, a rollback stored as a new version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from app.programs.catalog import KIND, program_names, programs_dir_of
from app.programs.contacts import quiet_rules_of
from app.programs.switches import switched_off
from app.sync.versions import MappingVersionInfo, mapping_history, store_version
from engine.programs import program_files
from engine.programs.definition import Program, ProgramError, parse_program
from engine.programs.quiet import QuietRules

__all__ = ["ActiveProgram", "active_programs", "load_programs", "program_names", "program_versions",
           "programs_dir_of", "save_program_version"]  # fmt: skip


@dataclass(frozen=True)
class ActiveProgram:
    program: Program
    version: int  # 0 = the file, 1.. = stored versions
    where: str


def program_versions(conn: Connection | None, name: str, directory: Path) -> list[MappingVersionInfo]:
    """Every version of one program: its file as version 0 (when there is one), then the stored ones."""
    out = []
    path = program_files(directory).get(name)
    if path is not None:
        out.append(MappingVersionInfo(KIND, name, 0, "file", None, path.read_text(encoding="utf-8"), "default"))
    return out + (mapping_history(conn, KIND, name) if conn is not None else [])


def _where(info: MappingVersionInfo, directory: Path) -> str:
    if info.origin == "default":
        return str(program_files(directory)[info.name])
    return f"<stored program {info.name} v{info.version}>"


def active_programs(conn: Connection | None, directory: Path) -> dict[str, ActiveProgram]:
    """Every program's active version, parsed; ProgramError lists the problems of all that fail."""
    out, problems = {}, []
    for name in program_names(conn, directory):
        latest = program_versions(conn, name, directory)[-1]
        where = _where(latest, directory)
        try:
            program = parse_program(latest.content, where)
        except ProgramError as error:
            problems += error.problems
            continue
        if program.program != name:
            problems.append(f"{where}: program: {program.program!r} must match the file name {name!r}")
            continue
        out[name] = ActiveProgram(program, latest.version, where)
    if problems:
        raise ProgramError(problems)
    return out


def save_program_version(conn: Connection, name: str, content: str, author: str) -> MappingVersionInfo:
    """Validate and store a new version of a program (it becomes the active one)."""
    program = parse_program(content, f"<new version of program {name}>")
    if program.program != name:
        raise ProgramError([f"<new version of program {name}>: program: {program.program!r} must be {name!r}"])
    return store_version(conn, KIND, name, content, author)


def load_programs(settings, engine) -> dict[str, ActiveProgram]:
    """The programs a deployment runs: its programs folder and the versions stored in its store, less those an
    admin switched off (app/programs/switches.py)."""
    with engine.connect() as conn:
        off = switched_off(conn)
        programs = {name: p for name, p in active_programs(conn, programs_dir_of(settings)).items() if name not in off}
    refuse_closed_quiet_periods(programs, quiet_rules_of(settings))
    return programs


def refuse_closed_quiet_periods(programs: dict[str, ActiveProgram], global_rules: QuietRules) -> None:
    """A program whose own quiet periods, added to the global ones, leave no moment to send is refused here with
    its name, rather than failing every tick once one of its messages falls due."""
    for name, active in programs.items():
        quiet = active.program.quiet
        problem = quiet and quiet.rules(global_rules).never_open()
        if problem:
            raise ProgramError([f"{active.where}: quiet: with the global CSE_QUIET_* periods, {problem}, "
                                f"so program {name!r} could never send a message"])  # fmt: skip
