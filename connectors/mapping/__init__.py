"""Field mappings (DESIGN §4, mappings/README.md): load and validate YAML mappings, apply them to vendor records.

Pure functions over files, text and records: storing versions and running syncs belong to app/sync/.
"""

from connectors.mapping.apply import MappedBatch, Quarantined, apply_mapping, cursor_values, is_deleted, record_id
from connectors.mapping.lines import line_of, read_yaml
from connectors.mapping.loader import (
    IMPORT_KIND,
    VENDOR_KIND,
    Condition,
    FieldSpec,
    Mapping,
    MappingError,
    Problem,
    file_kind,
    get_path,
    load_mapping,
    load_mapping_dir,
    mapping_files,
    parse_mapping,
    validate_against_fields,
    validate_path,
)
from connectors.mapping.schema import ENTITY_SCHEMAS, PUSH_SCHEMA, CanonicalField

__all__ = [
    "IMPORT_KIND",
    "VENDOR_KIND",
    "ENTITY_SCHEMAS",
    "PUSH_SCHEMA",
    "CanonicalField",
    "Condition",
    "FieldSpec",
    "MappedBatch",
    "Mapping",
    "MappingError",
    "Problem",
    "Quarantined",
    "apply_mapping",
    "cursor_values",
    "file_kind",
    "get_path",
    "is_deleted",
    "line_of",
    "load_mapping",
    "load_mapping_dir",
    "mapping_files",
    "parse_mapping",
    "read_yaml",
    "record_id",
    "validate_against_fields",
    "validate_path",
]
