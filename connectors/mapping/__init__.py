"""Field mappings (DESIGN §4, mappings/README.md): load and validate YAML mappings, apply them to vendor records.

Pure functions over files, text and records: storing versions and running syncs belong to app/sync/.
"""

from connectors.mapping.apply import MappedBatch, Quarantined, apply_mapping, cursor_values, is_deleted, record_id
from connectors.mapping.loader import (
    Condition,
    FieldSpec,
    Mapping,
    MappingError,
    Problem,
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
    "get_path",
    "is_deleted",
    "load_mapping",
    "load_mapping_dir",
    "mapping_files",
    "parse_mapping",
    "record_id",
    "validate_against_fields",
    "validate_path",
]
