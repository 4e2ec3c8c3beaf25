"""The `history:` part of an import mapping: which columns hold the product events and the subscription terms,
and how each event type maps to a canonical activity kind (engine.canonical.EventKind) and feature.

The same `EventTypeMap` turns an imported row and a live Segment `track` call into the same activity event, so a
model trained on the import reads live usage with the same meaning.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.canonical import EventKind

DEFAULT_CHUNK_ROWS = 500_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventType(_Strict):
    """What one event type becomes: a canonical kind and, optionally, the feature key it counts as."""

    kind: EventKind
    feature: str | None = None


class TypeNames(_Strict):
    """An event-type table naming the type ids of the log (e.g. event_type_id -> event_type_name)."""

    table: str
    id: str
    name: str


class EventsSpec(_Strict):
    """The product event log: one row per event, its type in a column."""

    table: str
    account: str
    time: str
    type: str
    user: str | None = None  # column with the acting user (distinct users per day)
    type_names: TypeNames | None = None
    types: dict[str, EventKind | EventType]  # event type (id, or name with type_names) -> kind / {kind, feature}
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, gt=0)

    @field_validator("types", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def event_types(self) -> dict[str, EventType]:
        return {k: v if isinstance(v, EventType) else EventType(kind=v) for k, v in self.types.items()}


class AddonSpec(_Strict):
    """How an add-on term is told from a base-plan term: a boolean column, or a column whose values name add-ons."""

    source: str = Field(alias="from")
    values: list[str] | None = None  # None: the column is a boolean flag


class SubscriptionsSpec(_Strict):
    """Subscription terms: one row per billed term (base plan or add-on)."""

    table: str
    account: str
    start: str
    end: str
    mrr: str
    id: str | None = None  # term id column (default: the row number in the file)
    plan: str | None = None
    seats: str | None = None
    billing_period: str | None = None
    discount: str | None = None
    addon: AddonSpec | None = None
    successor_grace_days: int = Field(default=0, ge=0)  # a base term starting this late still continues the plan


class HistorySpec(_Strict):
    """Product history imported into the store rather than into a flat training table."""

    events: EventsSpec | None = None
    subscriptions: SubscriptionsSpec | None = None
