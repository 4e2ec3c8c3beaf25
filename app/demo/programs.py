"""The demo's programs: run the reference programs on the demo book and simulate what they achieve.

The simulation is the demo's ground truth: over a few weekly ticks, an enrollment reaches its program's success
exit with a known probability, higher by a known effect when it is contacted than in the control group. The report
then has to recover that effect within its interval — which is what `cse demo --json` shows under `programs`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select, update

from app.programs.definitions import ActiveProgram
from app.programs.milestones import onboarding_summary
from app.programs.report import CHURN_WINDOW_DAYS, churn_reach, csm_task_load, programs_report
from app.programs.tick import Limits, exit_enrollments, run_tick
from app.store.models import Account, ProgramEnrollment

# program -> (exit reason, weekly chance in the control group, added weekly chance when contacted)
SIMULATED_EFFECTS: dict[str, tuple[str, float, float]] = {
    "retention": ("recovered", 0.05, 0.04),
    "onboarding": ("graduated", 0.04, 0.03),
    "onboarding_reengage": ("recovered", 0.15, 0.10),
    "onboarding_training": ("recovered", 0.10, 0.08),
    "onboarding_setup_stalled": ("recovered", 0.10, 0.10),
    "expansion": ("converted", 0.02, 0.02),
    "detractor_recovery": ("recovered", 0.05, 0.05),
    "interventions": ("recovered", 0.10, 0.05),
}
EXPANSION_GROWTH = 0.2  # ARR gained by an account that converts in the simulation
SIMULATED_WEEKS = 4


def _simulate_week(engine: Engine, now: datetime, rng: np.random.Generator) -> None:
    """One week's outcomes: each active enrollment of a simulated program exits with its chance."""
    table = ProgramEnrollment.__table__
    with engine.begin() as conn:
        rows = pd.DataFrame(conn.execute(
            select(table.c.id, table.c.program, table.c.holdout, table.c.arr_at_entry)
            .where(table.c.status.in_(("active", "completed")), table.c.program.in_(list(SIMULATED_EFFECTS)))
        ).all(), columns=["id", "program", "holdout", "arr_at_entry"])  # fmt: skip
        if rows.empty:
            return
        base = rows["program"].map(lambda p: SIMULATED_EFFECTS[p][1])
        lift = rows["program"].map(lambda p: SIMULATED_EFFECTS[p][2])
        chance = base + lift * (~rows["holdout"].fillna(False).astype(bool))
        hit = rows[rng.random(len(rows)) < chance.to_numpy()]
        for program, group in hit.groupby("program"):
            reason = SIMULATED_EFFECTS[program][0]
            exit_enrollments(conn, group["id"], reason, now)
            if reason == "converted":
                conn.execute(update(table).where(table.c.id.in_(group["id"].astype(int).tolist()))
                             .values(arr_at_end=table.c.arr_at_entry * (1 + EXPANSION_GROWTH)))  # fmt: skip


def run_demo_programs(
    engine: Engine,
    programs: dict[str, ActiveProgram],
    day: date,
    limits: Limits,
    seed: int,
    latent_churn: pd.Series | None = None,
) -> tuple[dict, dict]:
    """Tick the programs over the simulated weeks from `day` and report: (`programs`, `onboarding`) for the demo.

    With `latent_churn` (the book's simulated churn date per account key), `programs` also holds `churn_reach`: of
    the accounts that churn within 90 days of `day`, the share a program step reached; and `csm_tasks`: the CRM
    tasks per CSM and week the programs created, against the weekly budget."""  # fmt: skip
    rng = np.random.default_rng(seed)
    for week in range(SIMULATED_WEEKS + 1):
        now = datetime.combine(day + timedelta(days=7 * week), datetime.max.time())
        with engine.begin() as conn:
            run_tick(conn, programs, now, limits)
        if week < SIMULATED_WEEKS:
            _simulate_week(engine, now, rng)
    with engine.connect() as conn:
        report = programs_report(conn, programs)
        onboarding = onboarding_summary(conn, day)
        start = datetime.combine(day, datetime.min.time())
        load = csm_task_load(conn, start, limits.task_budget_per_csm)
        reach = churn_reach(conn, churning_soon(conn, latent_churn, day)) if latent_churn is not None else None
    summary = {
        name: {key: figures[key] for key in ("entered", "active", "completed", "control", "success_rate")}
        | {"uplift": {k: figures["uplift"][k] for k in ("uplift", "low", "high", "significant")},
           "simulated_uplift": _simulated(name)}
        for name, figures in report.items()
    }  # fmt: skip
    summary["csm_tasks"] = load
    if reach is not None:
        summary["churn_reach"] = reach
    return summary, onboarding


def churning_soon(conn: Connection, latent_churn: pd.Series, day: date) -> pd.Series:
    """Account id -> churn date of the accounts active on `day` that the book churns within CHURN_WINDOW_DAYS."""
    dates = pd.to_datetime(latent_churn)
    soon = dates[(dates > pd.Timestamp(day)) & (dates <= pd.Timestamp(day + timedelta(days=CHURN_WINDOW_DAYS)))]
    ids = dict(conn.execute(select(Account.key, Account.id).where(Account.status == "active")).all())
    keyed = soon[soon.index.isin(list(ids))]
    return pd.Series(keyed.to_numpy(), index=keyed.index.map(ids), dtype=object)


def _simulated(program: str) -> float | None:
    """The uplift the simulation builds in (success within the simulated weeks), for comparison with the report."""
    if program not in SIMULATED_EFFECTS:
        return None
    _, base, lift = SIMULATED_EFFECTS[program]
    return round((1 - (1 - base - lift) ** SIMULATED_WEEKS) - (1 - (1 - base) ** SIMULATED_WEEKS), 3)
