"""A rescoring run: scores, the field writes they cause and the playbook actions they fire, in one transaction.

Committing scores and outbox rows together is what makes write-back durable: there is no moment at which a
score exists whose CRM write is not queued, or the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Engine

from app.ml.artifacts import Artifact
from app.scoring import score_and_store
from app.writeback.outbox import plan_field_writes, release_due_actions, store_actions
from engine.health_config import HealthConfig
from engine.playbooks import Playbooks, plan_actions


@dataclass
class RescoreResult:
    scored: pd.DataFrame
    field_writes: int
    new_actions: int
    released: int


def rescore(
    engine: Engine,
    as_of: date,
    config: HealthConfig,
    playbooks: Playbooks,
    score_step: float,
    account_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    artifact: Artifact | None = None,
) -> RescoreResult:
    with engine.begin() as conn:
        scored = score_and_store(conn, as_of, config, account_ids, artifact)
        if scored.empty:
            return RescoreResult(scored, 0, 0, 0)
        writes = plan_field_writes(conn, scored, as_of, score_step)
        actions = store_actions(conn, plan_actions(scored, as_of, playbooks))
        released = release_due_actions(conn, now or datetime.combine(as_of, datetime.max.time()))
    return RescoreResult(scored, writes, actions, released)
