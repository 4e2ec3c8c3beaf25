"""Product history in the store: event logs and subscription terms imported in bulk (import.py), the event-type
mapping shared with the live Segment intake (mapping.py), and what the terms say as of a date (terms.py)."""
