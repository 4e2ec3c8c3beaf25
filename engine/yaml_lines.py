"""Where a key sits in a YAML file, so a config refused after parsing can still be reported as `file:line`.

Validation (pydantic, the expression checker) sees plain data; the line numbers live in the composed node tree
(`yaml.compose`), which this walks along a validation error's location.
"""

from __future__ import annotations

import yaml


def line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the key (or list item) at ``loc`` in the composed YAML tree, or its nearest parent."""
    if root is None:
        return None
    node: yaml.Node = root
    line: int | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
