"""Mapping files on disk: finding them, telling vendor mappings from import mappings, loading and validating a
file or a folder, and checking a mapping's source fields against a CRM's own field list."""

from __future__ import annotations

from pathlib import Path

from connectors.mapping.checks import suggest
from connectors.mapping.lines import MappingError, Problem, read_yaml
from connectors.mapping.loader import IMPORT_KIND, VENDOR_KIND, parse_mapping, registered_vendors
from connectors.mapping.model import Mapping


def _vendor_of_folder(path: Path) -> str | None:
    return path.parent.name if path.parent.name in registered_vendors() else None


def load_mapping(path: str | Path) -> Mapping:
    """Read one mapping file; a file under mappings/<vendor>/ must say that vendor."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError([Problem(str(path), None, "file", f"cannot read: {error}")]) from None
    return parse_mapping(text, str(path), path.stem, _vendor_of_folder(path))


def file_kind(path: Path) -> str:
    """Which schema a mapping file follows (mappings/README.md): a tabular import mapping
    (app/ml/import_mapping.py) lives under an `import/` folder or says `kind: import`; every other file is a vendor
    mapping."""
    if path.parent.name == IMPORT_KIND:
        return IMPORT_KIND
    try:
        root = read_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, MappingError):
        return VENDOR_KIND  # the vendor loader reports why the file cannot be read
    return IMPORT_KIND if isinstance(root, dict) and root.get("kind") == IMPORT_KIND else VENDOR_KIND


def mapping_files(path: str | Path, kind: str | None = None) -> list[Path]:
    """The mapping files at `path` (the file itself, or every *.yaml / *.yml below a folder), of `kind` if given."""
    path = Path(path)
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()) if path.is_dir() else [path]
    )
    return [f for f in files if kind is None or file_kind(f) == kind]


def load_mapping_dir(directory: str | Path) -> list[Mapping]:
    """Every mapping in a folder, validated; MappingError lists the problems of the invalid ones."""
    mappings, problems = validate_path(directory)
    if problems:
        raise MappingError(problems)
    return mappings


def validate_path(path: str | Path) -> tuple[list[Mapping], list[Problem]]:
    """Validate every vendor mapping file at `path` (import mappings are app/ml/import_mapping.py's); also refuses two
    files of one vendor sharing a name."""
    mappings, problems = [], []
    if not mapping_files(path):
        problems.append(Problem(str(path), None, "path", "no mapping files (*.yaml) found"))
    for file in mapping_files(path, VENDOR_KIND):
        try:
            mappings.append(load_mapping(file))
        except MappingError as error:
            problems.extend(error.problems)
    seen: dict[tuple[str, str], str] = {}
    for mapping in mappings:
        key = (mapping.vendor, mapping.name)
        if key in seen:
            problems.append(Problem(mapping.file, 1, "name", f"{mapping.vendor} already has a mapping {mapping.name!r} "
                                    f"({seen[key]}); names must be unique per vendor"))  # fmt: skip
        seen[key] = mapping.file
    return mappings, problems


def validate_against_fields(mapping: Mapping, available: set[str]) -> list[Problem]:
    """Check every source field the mapping reads against the CRM's own field list (describe / properties / ...).

    A dotted path passes when the CRM lists it or any prefix of it (`custom_attributes` covers
    `custom_attributes.plan`), since CRMs list nested objects by their top-level name.
    """
    problems = []
    for where, path, line in mapping.source_paths():
        parts = path.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        if not prefixes & available:
            hint = suggest(path, available)
            problems.append(
                Problem(mapping.file, line, where, f"{mapping.vendor} {mapping.object} has no field {path!r}{hint}")
            )
    return problems
