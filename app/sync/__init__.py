"""The sync: pull every vendor object through its mappings into the canonical store, incrementally and safely.

Modules: versions.py (which mapping is active), run.py (the run, cursors), identity.py (which account a record
is), records.py (contacts and events), log.py (the sync log).

Why it is shaped this way:
- Each page of an incremental pull is loaded, quarantined and checkpointed (SyncCursor) in one transaction, so a
  run killed at any point resumes from the last committed page: no gaps; and since accounts and contacts are
  upserts and events are keyed by `<vendor>:<mapping>:<record id>`, re-reading creates no duplicates. A full pull
  (the first one, or `--full`) may come in id order rather than change order (HubSpot's list API does), so it
  moves the cursor only once it has finished; a killed full pull is simply redone.
- The cursor is read back minus an overlap window (5 minutes by default) because vendor clocks and the replication
  behind their "modified since" filters lag; re-reading a few minutes is cheap, missing a record is not.
- Identity resolution joins one company across vendors: ExternalId (vendor, object, id) first, then the
  normalized domain; a new company becomes account `<vendor>-<id>`.
- Deletions: an account whose last vendor record is deleted gets status "deleted" (its history stays, scoring can
  skip it, a restored record revives it); a deleted contact is removed (contacts carry no history of their own);
  a deleted record's events are removed and the day rollups rebuilt.
- A null from one vendor never erases what another vendor said about the same account or contact.
- Mappings are data: the active mapping for (vendor, name) is the latest stored MappingVersion, else the default
  file mappings/<vendor>/<name>.yaml. Saving, diffing and rolling back versions lives in versions.py.
"""

from app.sync.log import ObjectLog, SyncLog
from app.sync.run import DEFAULT_OVERLAP, ProgressCallback, read_cursor, run_sync, sync_records
from app.sync.versions import (
    DEFAULT_MAPPINGS_DIR,
    MappingVersionInfo,
    active_mapping,
    active_mappings,
    default_mapping_files,
    mapping_history,
    mapping_names,
    mapping_versions,
    rollback_mapping,
    save_mapping_version,
)

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "DEFAULT_OVERLAP",
    "MappingVersionInfo",
    "ObjectLog",
    "ProgressCallback",
    "SyncLog",
    "active_mapping",
    "active_mappings",
    "default_mapping_files",
    "mapping_history",
    "mapping_names",
    "mapping_versions",
    "read_cursor",
    "rollback_mapping",
    "run_sync",
    "save_mapping_version",
    "sync_records",
]
