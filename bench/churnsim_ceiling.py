"""The best churn ROC-AUC any model can reach on ChurnSim socialnet7, on the comparison's monthly time split.

    python -m bench.churnsim_ceiling OUT_DIR [--customers 3000] [--parts 20] [--months 7] [--seed 7] [--jobs 2]
        [--horizon 30] [--venv DIR]

ChurnSim decides churn at each customer's monthly renewal by one draw with probability p (its utility of the
events accumulated since the start, times a hidden per-customer satisfaction propensity). Ranking the comparison's
test rows by that p is the Bayes ceiling: no model reading the data can rank churners better in expectation. This
runs the same simulation as bench/fightchurn_data.py (same config, seeds and parts, so part k is exactly part k of
a `fightchurn_data` run with the same per-part share), through bench/churnsim_oracle.py, which records p for every
customer month end without touching the simulator's random draws. It exports the parts like `fightchurn_data`,
builds bench/churn_baseline.py's panel and hand-built baseline on that export, and scores each test row (account,
observation date) with the probability that the customer churns at a renewal within the horizon,
1 − Π(1 − p) over the renewals in (date, date + horizon] (0 when none falls there). Scores:

* `full_oracle`: ChurnSim's own p, hidden factor included; the Bayes ceiling.
* `observable_counts`: p from the same realised event counts with the hidden factor set to 1.
* `observable_rates`: p with the factor set to 1, from the customer's true behaviour rates (expected counts).
* `observable_bayes`: the expected p given what the event log and terms show: the hidden factor integrated over its
  population distribution (the propensities ChurnSim drew in this run), weighted by the likelihood that the
  customer survived its earlier renewals with it. A customer still there after low-utility months probably has a
  high propensity, which the plain `observable_*` scores ignore; this is the ceiling for models without the factor.

Every score uses the counts up to the renewal, i.e. up to 30 days after the observation date: an upper bound,
never a model. Each is printed with the test positives, a 95 % interval (Hanley & McNeil), and its paired difference
to the baseline on the same rows (bootstrap over accounts, bench/churn_baseline.py's `paired_difference`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.churn_baseline import auc_interval, baseline, paired_difference
from bench.fightchurn_data import (
    VENV,
    cut_date,
    ensure_venv,
    export_parts,
    part_dir,
    part_offsets,
    read_part,
    shares,
    simulate,
    throwaway_databases,
)

HOOK = Path(__file__).resolve().with_name("churnsim_oracle.py")
SCORES = ("full_oracle", "observable_counts", "observable_rates", "observable_bayes")
PRIOR_POINTS = 100


def read_oracle(out: Path, offsets: list[int]) -> tuple[pd.DataFrame, dict]:
    """The hook's rows of every part, account ids shifted like the export's; and the churn logistic's parameters."""
    frames, logistic = [], {}
    for k, offset in enumerate(offsets):
        folder = part_dir(out, k, len(offsets)) / "churnsim"
        frame = pd.read_csv(folder / "oracle.csv", parse_dates=["start_date", "decision_date"])
        frames.append(frame.assign(account_id=frame["customer"] + offset))
        logistic = json.loads((folder / "oracle.json").read_text())
    return pd.concat(frames, ignore_index=True), logistic


def churn_probability(utility: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """ChurnSim's churn transition: 1 − logistic(scale × utility − offset), exponent clipped as it does."""
    return 1.0 - 1.0 / (1.0 + np.exp(np.clip(-scale * utility + offset, -40.0, 40.0)))


def observable_bayes(records: pd.DataFrame, scale: float, offset: float, points: int = PRIOR_POINTS) -> pd.Series:
    """E[p | the customer survived its earlier renewals], the hidden propensity integrated out (module doc).

    The prior is the run's own propensities (one per customer), summarised by `points` quantiles; ChurnSim
    multiplies a positive utility by the propensity and divides a negative one by it.
    """
    records = records.sort_values(["account_id", "decision_date"])
    prior = np.quantile(records.drop_duplicates("account_id")["satisfaction"], (np.arange(points) + 0.5) / points)
    utility = records["u_counts"].to_numpy()[:, None]
    p = churn_probability(utility * np.where(utility > 0, prior, 1.0 / prior), scale, offset)
    survive = pd.DataFrame(np.log1p(-np.minimum(p, 1 - 1e-12)), index=records.index)
    earlier = survive.groupby(records["account_id"]).cumsum().to_numpy() - survive.to_numpy()
    weight = np.exp(earlier - earlier.max(axis=1, keepdims=True))
    return pd.Series((weight * p).sum(axis=1) / weight.sum(axis=1), index=records.index)


def window_scores(rows: pd.DataFrame, records: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Each (account_id, as_of) row's chance of churning at a renewal in (as_of, as_of + horizon] per score, and
    whether ChurnSim did churn there (`oracle_churned`, to check the labels agree)."""
    decisions = rows[["account_id", "as_of"]].merge(records, on="account_id")
    inside = (decisions["decision_date"] > decisions["as_of"]) & (
        decisions["decision_date"] <= decisions["as_of"] + pd.Timedelta(days=horizon)
    )
    decisions = decisions[inside]
    survive = np.log1p(-decisions[list(SCORES)].clip(upper=1 - 1e-12))
    grouped = survive.assign(churned=decisions["churned"]).groupby([decisions["account_id"], decisions["as_of"]])
    window = (1 - np.exp(grouped[list(SCORES)].sum())).assign(oracle_churned=grouped["churned"].max())
    scored = rows.merge(window.reset_index(), on=["account_id", "as_of"], how="left")
    return scored.fillna({**dict.fromkeys(SCORES, 0.0), "oracle_churned": 0})


def ceilings(scored: pd.DataFrame) -> dict:
    """ROC-AUC, test positives and 95 % interval of the baseline and each score, and each score minus baseline."""
    positives = int(scored["churned"].sum())
    negatives = len(scored) - positives
    result: dict = {"test_rows": len(scored), "test_positives": positives,
                    "label_mismatches": int((scored["churned"] != scored["oracle_churned"]).sum())}  # fmt: skip
    for name in ("score", *SCORES):
        if scored[name].isna().any():  # the baseline had no training churners to learn from
            result["baseline_hgb"] = None
            continue
        auc = float(roc_auc_score(scored["churned"], scored[name]))
        entry = {"roc_auc": round(auc, 3), "95ci": auc_interval(auc, positives, negatives)}
        if name != "score" and result["baseline_hgb"] is not None:
            ours = scored.rename(columns={"account_id": "account", name: "churn_probability"})
            paired = paired_difference(ours[["account", "as_of", "churned", "churn_probability"]],
                                       scored[["account_id", "as_of", "churned", "score"]])  # fmt: skip
            entry["minus_baseline"] = {"difference": paired["cse_minus_baseline"], "95ci": paired["95ci"]}
        result["baseline_hgb" if name == "score" else name] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--parts", type=int, default=20)
    parser.add_argument("--months", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--venv", type=Path, default=VENV, help="fightchurn's environment (created if missing)")
    args = parser.parse_args()
    python = ensure_venv(args.venv)
    out = args.out.resolve()
    with throwaway_databases(args.parts) as databases:
        simulate(python, databases, out, args.customers, args.months, args.seed, args.jobs, entry=(str(HOOK),))
        parts = [read_part(database) for database in databases]
    print(export_parts(parts, out, cut_date(args.months)))
    records, logistic = read_oracle(out, part_offsets([(events, terms) for events, _, terms in parts]))
    del parts
    recomputed = churn_probability(records["u_full"].to_numpy(), logistic["scale"], logistic["offset"])
    if not np.allclose(recomputed, records["p_full"], atol=1e-9):
        raise SystemExit("churn_probability does not reproduce ChurnSim's recorded p: the logistic has changed")
    records["observable_bayes"] = observable_bayes(records, logistic["scale"], logistic["offset"])
    records = records.rename(columns={"p_full": "full_oracle", "p_counts": "observable_counts",
                                      "p_rates": "observable_rates"})  # fmt: skip
    records.to_csv(out / "oracle.csv", index=False)  # every customer month end, merged ids: for further analysis
    _, rows = baseline(out, args.horizon)
    rows["as_of"] = pd.to_datetime(rows["as_of"])
    result = {"customer_months": len(records), "customers": sum(shares(args.customers, args.parts)),
              **ceilings(window_scores(rows, records, args.horizon))}  # fmt: skip
    print(json.dumps(result, indent=2))
    print(f"reproduce: python -m bench.churnsim_ceiling {args.out} --customers {args.customers} --parts {args.parts} "
          f"--months {args.months} --seed {args.seed} --jobs {args.jobs} --horizon {args.horizon}")  # fmt: skip


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
