"""The card front ends' own tests (Node): the HubSpot app card (Vitest + Testing Library) and the Salesforce
Lightning component (sfdx-lwc-jest), run from here so the one test command covers them.

Without Node/npm (or when the packages cannot be installed) they skip loudly; with CI=true that fails them.
`.ci/run` installs the packages with `npm ci` first, from the committed package-lock.json files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import service_missing

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "hubspot-app-card": ROOT / "connectors/hubspot/app/src/app/cards",
    "salesforce-lwc": ROOT / "connectors/salesforce",
}


def _run(command: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=None)


@pytest.mark.parametrize("package", list(PACKAGES), ids=list(PACKAGES))
def test_js_package(package: str) -> None:
    folder = PACKAGES[package]
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        service_missing("Node.js (node and npm)", FileNotFoundError("not on PATH"))
    if not (folder / "node_modules").is_dir():
        installed = _run([npm, "ci", "--no-audit", "--no-fund"], folder, timeout=900)
        if installed.returncode != 0:
            service_missing(f"npm ci in {folder.relative_to(ROOT)}", RuntimeError(installed.stderr[-2000:]))
    result = _run([npm, "test", "--silent"], folder, timeout=600)
    assert result.returncode == 0, (
        f"npm test in {folder.relative_to(ROOT)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )


def test_js_fixture_follows_the_card_contract() -> None:
    """Both front-end tests render tests/fixtures/card.sample.json: it must be what the backend can answer."""
    schema = json.loads((ROOT / "app/cards/card.schema.json").read_text())
    sample = json.loads((ROOT / "tests/fixtures/card.sample.json").read_text())
    jsonschema.validate(sample, schema)
