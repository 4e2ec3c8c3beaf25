"""Programs: stateful sequences of dated steps with entry, exit, tiers, audiences and a control group.

The reference programs ship as one YAML file each in this folder (CSE_PROGRAMS_DIR names another).
"""

from pathlib import Path

DEFAULT_PROGRAMS_DIR = Path(__file__).parent
