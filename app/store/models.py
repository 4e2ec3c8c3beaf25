"""Tables of the canonical model (DESIGN §3) plus the plumbing tables that make syncs and write-back durable."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    column,
    false,
    table,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for tables that grow without bound.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    segment: Mapped[str | None] = mapped_column(String(16), index=True)
    plan: Mapped[str | None] = mapped_column(String(64))
    arr: Mapped[float | None] = mapped_column(Float, index=True)
    seats_purchased: Mapped[int | None] = mapped_column(Integer)
    seats_active: Mapped[int | None] = mapped_column(Integer)
    api_limit: Mapped[int | None] = mapped_column(Integer)
    api_used: Mapped[int | None] = mapped_column(Integer)
    storage_limit_gb: Mapped[float | None] = mapped_column(Float)
    storage_used_gb: Mapped[float | None] = mapped_column(Float)
    customer_since: Mapped[date | None] = mapped_column(Date)
    renewal_date: Mapped[date | None] = mapped_column(Date, index=True)
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    churned_at: Mapped[date | None] = mapped_column(Date)
    roi_pct: Mapped[float | None] = mapped_column(Float)
    goal_attainment: Mapped[float | None] = mapped_column(Float)
    first_value_at: Mapped[date | None] = mapped_column(Date)
    first_activity_at: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # IANA name (e.g. Europe/Berlin): quiet periods are in the account's local time (CSE_DEFAULT_TIMEZONE when None).
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Who referred this company (the referrer's account key, domain or name, as a CRM field holds it).
    referred_by: Mapped[str | None] = mapped_column(String(255))


class ExternalId(Base):
    """One vendor record that resolved to an account; identity resolution reads and writes this table."""

    __tablename__ = "external_ids"
    __table_args__ = (UniqueConstraint("vendor", "object", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    vendor: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))


class RecordLink(Base):
    """Which account a vendor's contact, ticket, deal or conversation belongs to, so a webhook naming one finds it.

    Kept apart from ExternalId, which holds only the company records that identify an account.
    """

    __tablename__ = "record_links"
    __table_args__ = (UniqueConstraint("vendor", "object", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    vendor: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str | None] = mapped_column(String(64))
    is_champion: Mapped[bool] = mapped_column(Boolean, default=False)
    is_exec_sponsor: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    # Unsubscribed from email (Intercom's unsubscribed_from_emails): no program message goes to this contact.
    unsubscribed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ActivityEvent(Base):
    """A raw activity record, kept as pulled so rollups can be rebuilt; (source, external_id) dedupes re-reads."""

    __tablename__ = "activity_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_activity_events_account_time", "account_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(32))
    feature: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=1)
    value: Mapped[float | None] = mapped_column(Float)
    properties: Mapped[dict | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))


class Feature(Base):
    """A stable bit per product feature, so a day's feature use fits in one integer column of AccountDay."""

    __tablename__ = "features"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    bit: Mapped[int] = mapped_column(Integer, unique=True)
    mask: Mapped[int] = mapped_column(BigInteger)


class AccountDay(Base):
    """Daily rollup of activity per account: what scoring reads, rebuilt from events for the days they touch."""

    __tablename__ = "account_days"
    __table_args__ = (
        Index("ix_account_days_day", "day"),
        Index(
            "ix_account_days_seat_changes",
            "day",
            sqlite_where=text("seat_delta != 0"),
            postgresql_where=text("seat_delta != 0"),
        ),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    logins: Mapped[int] = mapped_column(Integer, default=0)
    session_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    feature_uses: Mapped[int] = mapped_column(Integer, default=0)
    features_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    tickets_opened: Mapped[int] = mapped_column(Integer, default=0)
    tickets_closed: Mapped[int] = mapped_column(Integer, default=0)
    resolution_hours: Mapped[float] = mapped_column(Float, default=0.0)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    self_service: Mapped[int] = mapped_column(Integer, default=0)
    outreach: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    meetings: Mapped[int] = mapped_column(Integer, default=0)
    seat_delta: Mapped[float] = mapped_column(Float, default=0.0)
    plan_delta: Mapped[float] = mapped_column(Float, default=0.0)
    survey_sum: Mapped[float] = mapped_column(Float, default=0.0)
    survey_count: Mapped[int] = mapped_column(Integer, default=0)
    churn_signals: Mapped[int] = mapped_column(Integer, default=0)


class Score(Base):
    """One scoring of one account; history is kept so trends and model training can look back."""

    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_account_as_of", "account_id", "as_of"),
        Index("ix_scores_as_of", "as_of"),  # migration 0025: a run's rows, all of one day, go to its end
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key (migration 0024): a trigger on accounts deletes the rows of a deleted account.
    account_id: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(DateTime)
    health: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(16))
    band_computed: Mapped[str | None] = mapped_column(String(16))  # the engine's band where an override replaced it
    f_adoption: Mapped[float | None] = mapped_column(Float)
    f_engagement: Mapped[float | None] = mapped_column(Float)
    f_support: Mapped[float | None] = mapped_column(Float)
    f_outcomes: Mapped[float | None] = mapped_column(Float)
    f_relationship: Mapped[float | None] = mapped_column(Float)
    f_expansion: Mapped[float | None] = mapped_column(Float)
    coverage: Mapped[float | None] = mapped_column(Float)
    trend_7d: Mapped[float | None] = mapped_column(Float)
    trend_30d: Mapped[float | None] = mapped_column(Float)
    drivers: Mapped[list | None] = mapped_column(JSON)
    recommended_action: Mapped[str | None] = mapped_column(Text)
    churn_probability: Mapped[float | None] = mapped_column(Float)
    churn_horizon_days: Mapped[int | None] = mapped_column(Integer)
    days_to_churn: Mapped[float | None] = mapped_column(Float)  # survival model's median time to churn
    risk_drivers: Mapped[list | None] = mapped_column(JSON)
    expansion_score: Mapped[float | None] = mapped_column(Float)
    expansion_type: Mapped[str | None] = mapped_column(String(16))
    revenue_potential: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))
    # The one risk scale (engine/learning/risk.py): churn probability within the horizon x 100, from the model
    # (risk_source "model") or from calibrated health ("health"). Migration 0012.
    risk: Mapped[float | None] = mapped_column(Float)
    risk_source: Mapped[str | None] = mapped_column(String(8))
    # The early-warning model's flag (app/ml/early_warning.py): likely to churn within warning_horizon_days.
    # Migration 0013.
    early_warning: Mapped[bool | None] = mapped_column(Boolean)
    warning_horizon_days: Mapped[int | None] = mapped_column(Integer)


class CurrentScore(Base):
    """Each account's latest score (by as_of, then id) with what the web app filters, sorts and sums on: one row
    per account, upserted by scoring in the transaction that writes the score row (app/store/current_scores.py),
    so the dashboard and the accounts list never search the score history for the newest row. Migration 0013."""

    __tablename__ = "current_scores"
    # The accounts list walks these to sort by a score; with a band filter, the health one too (migration 0025).
    __table_args__ = (
        Index("ix_current_scores_health", "health"),
        Index("ix_current_scores_churn", "churn_probability"),
        Index("ix_current_scores_potential", "revenue_potential"),
    )

    # No foreign key (migration 0024): a trigger on accounts deletes the rows of a deleted account.
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score_id: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[date] = mapped_column(Date)
    health: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(16))
    risk: Mapped[float | None] = mapped_column(Float)
    churn_probability: Mapped[float | None] = mapped_column(Float)
    trend_7d: Mapped[float | None] = mapped_column(Float)
    trend_30d: Mapped[float | None] = mapped_column(Float)
    expansion_score: Mapped[float | None] = mapped_column(Float)
    expansion_type: Mapped[str | None] = mapped_column(String(16))
    revenue_potential: Mapped[float | None] = mapped_column(Float)


class BookDay(Base):
    """The book on one scoring day per segment, CSM and band ('' for none; key columns cannot be NULL; band ''
    is the unscored customers): what the dashboard's band summary, pipelines, funnel, workload and health trend
    add up. Recorded when a day's scoring completes (app/store/book_days.py). Migration 0013."""

    __tablename__ = "book_days"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    segment: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    band: Mapped[str] = mapped_column(String(16), primary_key=True)
    accounts: Mapped[int] = mapped_column(Integer)
    health_sum: Mapped[float] = mapped_column(Float)
    health_n: Mapped[int] = mapped_column(Integer)
    potential_sum: Mapped[float] = mapped_column(Float)
    arr_sum: Mapped[float] = mapped_column(Float)
    # The onboarding funnel: customers of the last 180 days, and those of them past each milestone.
    onboarding: Mapped[int] = mapped_column(Integer)
    instrumented: Mapped[int] = mapped_column(Integer)
    first_value: Mapped[int] = mapped_column(Integer)
    graduated: Mapped[int] = mapped_column(Integer)


class BookDaySplit(Base):
    """The book of a day split further: `split` 'health' by health bucket ('0' for 0-9 … '9' for 90-100) or
    'expansion' by expansion type, with accounts and revenue potential. Migration 0013."""

    __tablename__ = "book_day_splits"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    segment: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    band: Mapped[str] = mapped_column(String(16), primary_key=True)
    split: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(16), primary_key=True)
    accounts: Mapped[int] = mapped_column(Integer)
    potential_sum: Mapped[float] = mapped_column(Float)


class BookDayMonth(Base):
    """Revenue retention of the twelve months up to a scoring day, per segment and CSM: ARR of the customers at
    the month's start, of those who churned in it, and seat changes priced per seat. Migration 0013."""

    __tablename__ = "book_day_months"

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    segment: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    opening_arr: Mapped[float] = mapped_column(Float)
    churned_arr: Mapped[float] = mapped_column(Float)
    seat_change: Mapped[float] = mapped_column(Float)


class Action(Base):
    __tablename__ = "actions"
    # The dashboard's open CRM tasks: a range of one kind's creation times, with the account read from the index.
    # The planned ones: what each release to the outbox reads (partial, so it holds only the work waiting).
    __table_args__ = (Index("ix_actions_kind_created", "kind", "created_at", "account_id"),
                      Index("ix_actions_planned", "kind", "due", sqlite_where=text("status = 'planned'"),
                            postgresql_where=text("status = 'planned'")))  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    playbook: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    due: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict | None] = mapped_column(JSON)
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # A program step's action (else null): its enrollment and the problem its step addresses. The action is the
    # record of the step sent, read through `program_history` (no index: read by account, and no write pays one).
    enrollment_id: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(String(48))


class OutboxRow(Base):
    """A pending write to a vendor, committed with the scores that caused it so nothing is lost between them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_vendor", "status", "vendor", "operation"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(64))
    available_at: Mapped[datetime | None] = mapped_column(DateTime)  # retry backoff: not dispatched before this
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class SyncCursor(Base):
    __tablename__ = "sync_cursors"

    vendor: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MappingVersion(Base):
    __tablename__ = "mapping_versions"
    __table_args__ = (Index("ix_mapping_versions_object", "vendor", "object"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("vendor", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)  # received, processing, processed, failed, ignored, …
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)  # the event's own part of its request; never a refused body
    kind: Mapped[str | None] = mapped_column(String(64))
    object: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    refs: Mapped[dict | None] = mapped_column(JSON)
    duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    account_ids: Mapped[list | None] = mapped_column(JSON)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A refused request is logged by these alone: where it came from, how big it was and what it hashed to.
    source: Mapped[str | None] = mapped_column(String(64))
    body_bytes: Mapped[int | None] = mapped_column(Integer)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    # Processing: failed pulls come back after next_attempt_at, up to CSE_WEBHOOK_MAX_ATTEMPTS, then `failed`;
    # `claim` names the run holding the event, so only that run can settle it.
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    claim: Mapped[str | None] = mapped_column(String(32))


class QuarantinedRecord(Base):
    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ScoreRun(Base):
    """A sharded scoring run: completed (band summary, due actions released, write-back dispatched) exactly once."""

    __tablename__ = "score_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # scoring, done, failed
    shards: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    summary: Mapped[dict | None] = mapped_column(JSON)


class ScoreShard(Base):
    """One shard of a run: an account id range, scored by one job; its writes commit with its `done`."""

    __tablename__ = "score_shards"

    run_id: Mapped[str] = mapped_column(ForeignKey("score_runs.id", ondelete="CASCADE"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[str | None] = mapped_column(String(64))
    totals: Mapped[dict | None] = mapped_column(JSON)
    field_writes: Mapped[int] = mapped_column(Integer, default=0)
    new_actions: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class BandOverride(Base):
    """A CSM's snooze/override of an account's health band: honoured by scoring until it expires or is cleared."""

    __tablename__ = "band_overrides"
    __table_args__ = (Index("ix_band_overrides_account_expiry", "account_id", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    band: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime)


# The dashboard's program outcomes group by the key and sum the ARR (migration 0023_firstrun: the ARR is no key
# column, so a run's entries of one key are added in heap order, not at random places within the index).
OUTCOME_KEY = ("program", "status", "exit_reason", "holdout", "entered_at")
OUTCOME_SUMS = ("arr_at_entry", "arr_at_end")


class ProgramEnrollment(Base):
    """A request to enroll an account in a success program, stored for the program engine to pick up."""

    __tablename__ = "program_enrollments"
    __table_args__ = (
        Index("ix_program_enrollments_account", "account_id", "status"),
        Index("ux_program_enrollments_active", "program", "account_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
        # Covers the dashboard's program outcomes (counts and ARR sums per program, status, exit, group) on PostgreSQL.
        Index("ix_program_enrollments_outcomes", *OUTCOME_KEY, postgresql_include=list(OUTCOME_SUMS)),
        # No index holds next_due_at, which every tick's move changes: a move stays a heap-only update on
        # PostgreSQL, in the half of each page kept free (migration 0019). The tick finds the due enrollments among
        # a program's active ones (ux_program_enrollments_active; on SQLite ix_program_enrollments_outcomes).
        {"postgresql_with": {"fillfactor": 50}},
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key (migration 0024): a trigger on accounts deletes the rows of a deleted account.
    account_id: Mapped[int] = mapped_column(Integer)
    program: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="requested")  # requested → (program engine) active …
    requested_by: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime)
    # The program engine's state (app/programs): requested → active → completed (steps done) / exited (reason).
    version: Mapped[int | None] = mapped_column(Integer)  # the program version the account entered under
    audience: Mapped[str | None] = mapped_column(String(48))
    tier: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)  # position of the next step within the tier
    holdout: Mapped[bool | None] = mapped_column(Boolean)  # control group: followed, never contacted
    entered_at: Mapped[datetime | None] = mapped_column(DateTime)
    tier_entered_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_step_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    arr_at_entry: Mapped[float | None] = mapped_column(Float)
    arr_at_end: Mapped[float | None] = mapped_column(Float)


class ProgramEvent(Base):
    """The stored part of an enrollment's history: escalated, step_held (control), step_covered, step_suppressed,
    exited; one row per enrollment and dedupe key, so a step is recorded once however often a tick reruns. The unique
    index leads with the enrollment, so it is also the one its history is read by (migration 0020). A sent step and
    the entry are not stored here (migration 0022): readers read `program_history`, which derives them."""

    __tablename__ = "program_events"
    __table_args__ = (Index("ix_program_events_account_at", "account_id", "at"),
                      Index("ux_program_events_once", "enrollment_id", "dedupe_key", unique=True))  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Removed with the enrollment, as the enrollment is with its account: no foreign key of its own on account_id
    # (on PostgreSQL a trigger per row written; migration 0019).
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("program_enrollments.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(Integer)
    program: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(48))
    channel: Mapped[str | None] = mapped_column(String(16))
    problem: Mapped[str | None] = mapped_column(String(48))
    at: Mapped[datetime] = mapped_column(DateTime)
    # Within the enrollment: `step:<step>`, `exited:<reason>`, `escalated:tier<n>`.
    dedupe_key: Mapped[str] = mapped_column(String(128))


# An enrollment's whole history (a view, migration 0022): the events stored in program_events, a `step_sent` row per
# action a program step wrote (the action is the record of the step sent: account, channel, step, problem, time) and
# an `entered` row per enrollment that entered (at its `entered_at`). Deriving the two most frequent events saves a
# row, its index entries and a foreign key check per step sent and per entry. The derived rows carry the action's or
# the enrollment's own id, so `id` is unique per source only; (enrollment_id, kind, dedupe_key) is unique (a step
# covered or suppressed, then sent after a newer version moved it, has an event and an action under one key).
program_history = table(
    "program_history",
    *(column(name, kind) for name, kind in (
        ("id", BigInteger()), ("enrollment_id", BigInteger()), ("account_id", Integer()), ("program", String()),
        ("kind", String()), ("step", String()), ("channel", String()), ("problem", String()), ("at", DateTime()),
        ("dedupe_key", String()),
    )),
)  # fmt: skip


class ProgramMilestone(Base):
    """The day an account first met an onboarding milestone (kept: a milestone once met stays met)."""

    __tablename__ = "program_milestones"

    # No foreign key (migration 0024): a trigger on accounts deletes the rows of a deleted account.
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    milestone: Mapped[str] = mapped_column(String(48), primary_key=True)
    met_on: Mapped[date] = mapped_column(Date)


class SurveyAnswer(Base):
    """One NPS (0-10) or CSAT (1-5) answer, per contact and account, as captured back from the vendor
    (app/programs/surveys.py); (vendor, external_id) dedupes a re-read."""

    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("vendor", "external_id"),
                      Index("ix_survey_answers_account_at", "account_id", "answered_at"))  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8))  # nps, csat
    score: Mapped[float] = mapped_column(Float)
    answered_at: Mapped[datetime] = mapped_column(DateTime)
    vendor: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(128))  # the survey message it answers, if any
    remark: Mapped[str | None] = mapped_column(Text)


class Referral(Base):
    """A referral with its referrer; once the referred company is an account, its ARR is attributed to the referrer
    (app/programs/referrals.py)."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    referrer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    referred_name: Mapped[str | None] = mapped_column(String(255))
    referred_domain: Mapped[str | None] = mapped_column(String(255))
    program: Mapped[str | None] = mapped_column(String(64))  # the program that asked for it (e.g. advocacy)
    source: Mapped[str] = mapped_column(String(16))  # crm (a referred-by field), program, manual
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    referred_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    attributed_at: Mapped[datetime | None] = mapped_column(DateTime)
    arr_attributed: Mapped[float | None] = mapped_column(Float)


class SubscriptionTerm(Base):
    """One billed term of an account's subscription (base plan or add-on), imported from billing history.

    Churn, upsell and downsell are derived from these rows as of a date (app/store/terms.py), never typed in:
    a term that starts after the date changes nothing at it.
    """

    __tablename__ = "subscription_terms"
    __table_args__ = (
        UniqueConstraint("source", "term_key"),
        Index("ix_subscription_terms_account_start", "account_id", "start_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    term_key: Mapped[str] = mapped_column(String(128))
    plan: Mapped[str | None] = mapped_column(String(64))
    is_addon: Mapped[bool] = mapped_column(Boolean, default=False)
    mrr: Mapped[float] = mapped_column(Float, default=0.0)
    seats: Mapped[float | None] = mapped_column(Float)
    billing_period: Mapped[str | None] = mapped_column(String(16))
    discount: Mapped[float | None] = mapped_column(Float)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class UsageDay(Base):
    """One account's usage on one day from an imported product log: the AccountDay counts its events add up to,
    its distinct active users, and its count per event type ("post:3,like:12").

    Imports keep these sums instead of raw event rows (12 M events are under a million of these): the daily
    rollups (refresh_rollups adds them to what activity events give) and the history panel's per-event-type
    windows need nothing finer. An import replaces its own rows (`source` = its name), so re-reading a file never
    adds to them. A generated book (`cse demo`, app.book_loader) keeps its product usage here too, under
    `app.store.load.BOOK_SOURCE`, with session minutes and without per-type counts (`types` empty).
    """

    __tablename__ = "usage_days"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    logins: Mapped[int] = mapped_column(Integer, default=0)
    session_minutes: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # 0 for an import
    feature_uses: Mapped[int] = mapped_column(Integer, default=0)
    features_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    tickets_opened: Mapped[int] = mapped_column(Integer, default=0)
    tickets_closed: Mapped[int] = mapped_column(Integer, default=0)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    self_service: Mapped[int] = mapped_column(Integer, default=0)
    outreach: Mapped[int] = mapped_column(Integer, default=0)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    meetings: Mapped[int] = mapped_column(Integer, default=0)
    survey_count: Mapped[int] = mapped_column(Integer, default=0)
    churn_signals: Mapped[int] = mapped_column(Integer, default=0)
    active_users: Mapped[int] = mapped_column(Integer, default=0)
    types: Mapped[str] = mapped_column(Text, default="")


class User(Base):
    """Someone who signs in to the web app; `role` is admin (edits configuration), csm or viewer."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """One change made through the web app or `cse users`: who, when, what and on which object."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict | None] = mapped_column(JSON)


class ProgramSwitch(Base):
    """A program an admin switched off (or back on) in the web app; a program without a row is on. An off program
    enrolls no one and sends nothing; its enrollments wait where they are until it is switched on again."""

    __tablename__ = "program_switches"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class SyncSample(Base):
    """The first raw records (as the vendor sent them) of an object's last sync: what the mapping editor previews a
    draft on without calling the vendor. Replaced by every sync of the object."""

    __tablename__ = "sync_samples"

    vendor: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(32), primary_key=True)
    records: Mapped[list] = mapped_column(JSON)
    taken_at: Mapped[datetime] = mapped_column(DateTime)
