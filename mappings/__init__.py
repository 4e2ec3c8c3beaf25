"""The default mappings cse ships: vendor mappings in `<vendor>/`, tabular import mappings in `import/` (README.md).

This folder is a package so that an installed wheel carries the files as package data and code finds them through
the package wherever it is installed, never through a path relative to a source checkout. A deployment points
`CSE_MAPPINGS_DIR` at its own folder of the same layout instead.
"""

from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent
