"""The web process (gunicorn workers) answers webhooks and cards without the scoring stack: importing pandas or
scikit-learn there would double every worker's memory and start-up time."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_web_app_imports_no_scoring_stack(tmp_path) -> None:
    probe = (
        "import json, sys; import app; app.create_app(); "
        "print(json.dumps(sorted(m for m in ('pandas', 'sklearn', 'numpy') if m in sys.modules)))"
    )
    env = {"CSE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
