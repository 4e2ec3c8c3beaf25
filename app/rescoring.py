"""A rescoring run: scores, the field writes they cause and the program enrollments they start, in one transaction.

Committing scores and outbox rows together is what makes write-back durable: there is no moment at which a
score exists whose CRM write is not queued, or the other way round. The book is read and scored in chunks
(app.scoring_chunks), all inside that one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine

from app.band_totals import BandTotals
from app.ml.artifacts import Artifact
from app.programs.definitions import ActiveProgram
from app.scoring_chunks import DEFAULT_CHUNK_ACCOUNTS, score_in_chunks
from app.store.scope import AccountScope
from app.writeback.outbox import release_due_actions
from engine.health_config import HealthConfig
from engine.learning.risk import HealthRiskCalibration


def plans_write_back(as_of: date, dry_run: bool = False, today: date | None = None) -> bool:
    """Whether a run for `as_of` may write to the CRMs or contact customers: only a real run for today.

    A past day would overwrite today's scores in the CRMs and a future one would message customers about a day
    that has not come; both only store their scores (a backfill, a forecast), like a dry run does.
    """
    return not dry_run and as_of == (today or date.today())


@dataclass
class RescoreResult:
    totals: BandTotals
    field_writes: int
    new_actions: int
    released: int

    @property
    def accounts(self) -> int:
        return self.totals.accounts


def rescore(
    engine: Engine,
    as_of: date,
    config: HealthConfig,
    score_step: float,
    account_ids: AccountScope = None,
    now: datetime | None = None,
    artifact: Artifact | None = None,
    chunk_size: int = DEFAULT_CHUNK_ACCOUNTS,
    write_back: bool = True,
    calibration: HealthRiskCalibration | None = None,
    programs: dict[str, ActiveProgram] | None = None,
) -> RescoreResult:
    """Score, store and (with `write_back`) plan the CRM writes, enter, exit or escalate the accounts in the
    programs and release the actions due to the outbox; see `plans_write_back`."""
    with engine.begin() as conn:
        run = score_in_chunks(
            conn,
            as_of,
            config,
            score_step,
            account_ids,
            artifact,
            chunk_size,
            calibration,
            write_back=write_back,
            programs=programs,
        )
        if not run.totals.accounts or not write_back:
            return RescoreResult(run.totals, 0, 0, 0)
        released = release_due_actions(conn, now or datetime.combine(as_of, datetime.max.time()))
    return RescoreResult(run.totals, run.field_writes, run.new_actions, released)
