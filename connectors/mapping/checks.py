"""Collecting a mapping file's problems (every one, with file, line and field) instead of stopping at the first."""

from __future__ import annotations

import difflib
from typing import Any

from connectors.mapping.lines import LineDict, Problem


class Checker:
    """Collects problems for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int | None, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, where, message))

    def keys(self, node: LineDict, where: str) -> None:
        prefix = f"{where}." if where else ""
        for raw, line in node.duplicates:
            self.add(line, f"{prefix}{raw}", "duplicate key (YAML would silently keep the last one)")
        for raw, line in node.bad_keys:
            self.add(line, f"{prefix}{raw}", "a key must be a plain value")


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
