"""YAML read with the line of every key, and problems located by file, line and field.

Every mapping-like file an admin edits (vendor mappings here, tabular import mappings in app/ml/import_mapping.py) is
read through this module, so each kind refuses a bad file the same way: `file:line: field: message`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One reason a mapping is refused, printed as `file:line: field: message`."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class MappingError(ValueError):
    """A mapping was refused; `problems` lists every reason with its file, line and field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class LineDict(dict):
    """A YAML mapping that remembers the line of each key and the raw text of scalar keys."""

    line: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.raw: dict[Any, str] = {}
        self.duplicates: list[tuple[str, int]] = []
        self.bad_keys: list[tuple[str, int]] = []


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        raw = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key)
        try:
            hash(key)
        except TypeError:
            result.bad_keys.append((raw, line))
            continue
        if key in result:
            result.duplicates.append((raw, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
        result.raw[key] = raw
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, file: str) -> Any:
    """Parse YAML safely, every mapping a LineDict; a syntax error is a MappingError with its line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        raise MappingError([Problem(file, line, "yaml", f"{error.problem or error}")]) from None
    except yaml.YAMLError as error:
        raise MappingError([Problem(file, None, "yaml", str(error))]) from None


def line_of(root: Any, loc: Iterable[Any]) -> int | None:
    """The line of the deepest key of `loc` (keys and list indexes, as in a pydantic error) found under `root`."""
    node, line = root, getattr(root, "line", None)
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line, node = node.lines.get(part, line), node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            line = getattr(node, "line", None) or line
        else:
            break
    return line
