"""Field mappings (DESIGN §4, mappings/README.md): load and validate YAML mappings, apply them to vendor records.

Pure functions over files, text and records: storing versions and running syncs belong to app/sync/.
"""

from connectors.mapping.apply import MappedBatch, Quarantined, apply_mapping, cursor_values, is_deleted, record_id
from connectors.mapping.files import (
    file_kind,
    load_mapping,
    load_mapping_dir,
    mapping_files,
    validate_against_fields,
    validate_path,
)
from connectors.mapping.lines import MappingError, Problem, line_of, read_yaml
from connectors.mapping.loader import IMPORT_KIND, VENDOR_KIND, parse_mapping
from connectors.mapping.model import Condition, FieldSpec, Mapping, get_path
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
