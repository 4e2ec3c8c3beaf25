"""Programs: stateful sequences of dated steps with entry, exit, tiers, audiences and a control group.

The reference programs ship as one YAML file each in this folder (CSE_PROGRAMS_DIR names another).
"""

from pathlib import Path

DEFAULT_PROGRAMS_DIR = Path(__file__).parent


def program_files(directory: Path) -> dict[str, Path]:
    """The program files of a folder by program name (file stem), sorted."""
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.iterdir()) if p.suffix in (".yaml", ".yml") and p.is_file()}
