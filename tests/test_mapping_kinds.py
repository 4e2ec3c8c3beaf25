"""`cse mappings validate`: every shipped file passes, each kind of file (vendor, import) is checked by its own schema
and refused with file, line and field."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.ml.import_mapping import ImportMappingError, load_mapping
from connectors.mapping import IMPORT_KIND, VENDOR_KIND, file_kind, mapping_files
from mappings import DEFAULT_DIR

ROOT = Path(__file__).resolve().parents[1]


def validate(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    """The `cse` command line in this process (the shipped-tree test runs it in a process of its own)."""
    result = CliRunner().invoke(cli, ["mappings", "validate", *args], env={"CSE_MAPPINGS_DIR": None} | (env or {}))
    return result.exit_code, result.stdout


def line_with(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the shipped mappings an admin can break."""
    skip = shutil.ignore_patterns("*.py", "__pycache__")
    return Path(shutil.copytree(DEFAULT_DIR, tmp_path / "mappings", ignore=skip))


def test_the_shipped_tree_validates_clean(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "CSE_MAPPINGS_DIR"} | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "app", "mappings", "validate"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    vendor = len(mapping_files(DEFAULT_DIR, VENDOR_KIND))
    assert vendor > 10 and f"{vendor} mapping(s) valid, 3 import mapping(s) valid" in result.stdout


def test_each_shipped_file_has_one_kind():
    imports = mapping_files(DEFAULT_DIR, IMPORT_KIND)
    assert sorted(p.stem for p in imports) == ["pysurvival", "ravenstack", "telco"]
    assert all(p.parent.name == IMPORT_KIND and "kind: import" in p.read_text() for p in imports)
    assert not set(imports) & set(mapping_files(DEFAULT_DIR, VENDOR_KIND))


def test_a_broken_vendor_mapping_is_refused_with_file_line_and_field(tree: Path):
    broken = tree / "hubspot" / "companies.yaml"
    broken.write_text(broken.read_text().replace("type: integer", "type: integr", 1))
    code, output = validate(env={"CSE_MAPPINGS_DIR": str(tree)})
    assert code == 1
    line = line_with(broken, "type: integr")
    assert output == f"{broken}:{line}: fields.seats_purchased.type: unknown type 'integr'; did you mean 'integer'?\n"


@pytest.mark.parametrize(
    ("change", "needle", "field"),
    [
        (("  tenure: number", "  tenure: numbr"), "tenure: numbr", "columns.tenure"),
        (("base: customers", "base: nowhere"), "base: nowhere", "base: table 'nowhere' is not listed under tables"),
        (("label: {from: Churn", "label: {form: Churn"), "label:", "label.form: Extra inputs are not permitted"),
        (("name: telco", "name: telco\n  bad: indent"), "bad: indent", "yaml"),
    ],
)
def test_a_broken_import_mapping_is_refused_with_file_line_and_field(tree: Path, change, needle: str, field: str):
    broken = tree / "import" / "telco.yaml"
    broken.write_text(broken.read_text().replace(*change, 1))
    for args in ((str(tree),), (str(broken),)):
        code, output = validate(*args)
        assert code == 1 and f"{broken}:{line_with(broken, needle)}: {field}" in output, output


def test_a_file_saying_kind_import_is_an_import_mapping_wherever_it_lies(tree: Path, tmp_path: Path):
    moved = tmp_path / "churn.yaml"
    shutil.copy(tree / "import" / "telco.yaml", moved)
    assert file_kind(moved) == IMPORT_KIND and file_kind(tree / "hubspot" / "companies.yaml") == VENDOR_KIND
    moved.write_text(moved.read_text().replace("label: {from: Churn", "label: {column: Churn"))
    with pytest.raises(ImportMappingError) as caught:
        load_mapping(moved)
    label = line_with(moved, "label:")
    assert {(label, "label.from"), (label, "label.column")} <= {(p.line, p.field) for p in caught.value.problems}


def test_an_import_mapping_of_another_kind_is_refused(tree: Path):
    path = tree / "import" / "telco.yaml"
    path.write_text(path.read_text().replace("kind: import", "kind: pull"))
    code, output = validate(str(path))
    assert code == 1 and f"{path}:{line_with(path, 'kind: pull')}: kind:" in output
