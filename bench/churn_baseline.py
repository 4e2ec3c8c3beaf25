"""cse against a plain gradient-boosting baseline on the simulated product, on a monthly time split.

    python -m bench.churn_baseline [--data DIR] [--accounts 2000] [--months 12] [--horizon 30]

cse side: only the CLI — `cse import` of the history mapping, then `cse evaluate --data bench --json` (a fresh
SQLite store and data dir). Baseline side, built by hand from the same three CSV files: observation dates every 30
days from 60 days into the data to its end minus the horizon (the same rule), accounts with a base term in force;
features = events per type over the last 30 days, the plan's MRR and seats, tenure; labels = the last base term
ends within the horizon with no successor (churn), total MRR rises within the horizon (upsell); sklearn's
HistGradientBoostingClassifier on the earlier dates, ROC-AUC on the later ones (the same 30 % of dates, training
dates a horizon before the first test date).

Each ROC-AUC is printed with its test positives and a 95 % interval (Hanley & McNeil's standard error): with a
few dozen churners in the test period the interval is ±0.1 or wider, and a difference inside the intervals is
noise, not a result (see docs/history.md). The churn models are also compared row by row: cse's test scores
(`cse evaluate --scores`) joined to the baseline's on (account, observation date), and the paired difference of
their ROC-AUCs with a 95 % interval from a bootstrap over accounts (both models scored on the same resampled
rows, so the noise they share cancels: narrower than the two separate intervals suggest).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from bench.saas_sim import MAPPING

OPEN = pd.Timestamp("2200-01-01")


def observation_dates(start: pd.Timestamp, end: pd.Timestamp, horizon: int) -> list[pd.Timestamp]:
    first, last = start + pd.Timedelta(days=60), end - pd.Timedelta(days=horizon)
    count = (last - first).days // 30
    return [last - pd.Timedelta(days=30 * k) for k in range(count, -1, -1)]


def baseline_panel(data: Path, horizon: int) -> pd.DataFrame:
    events = pd.read_csv(data / "events.csv", usecols=["account_id", "event_time", "event_type_id"])
    events["day"] = pd.to_datetime(events["event_time"]).dt.normalize()
    terms = pd.read_csv(data / "subscriptions.csv", parse_dates=["start_date", "end_date"])
    terms["end_date"] = terms["end_date"].fillna(OPEN)  # a term with no end is in force at the end of the data
    base = terms[terms["product"] != "addon_storage"]
    start, end = events["day"].min(), max(events["day"].max(), terms["start_date"].max())
    last_end = base.groupby("account_id")["end_date"].max()
    churn_day = last_end.where(last_end < end)
    rows = []
    for d in observation_dates(start, end, horizon):
        live = base[(base["start_date"] <= d) & (base["end_date"] > d)].sort_values("start_date").groupby("account_id")
        plan = live.tail(1).set_index("account_id")
        ids = plan.index
        recent = events[(events["day"] <= d) & (events["day"] > d - pd.Timedelta(days=30))]
        counts = recent.pivot_table(index="account_id", columns="event_type_id", values="day", aggfunc="count")
        counts = counts.reindex(ids).fillna(0).add_prefix("type_")
        mrr_now = terms[(terms["start_date"] <= d) & (terms["end_date"] > d)].groupby("account_id")["mrr"].sum()
        later = d + pd.Timedelta(days=horizon)
        mrr_later = (
            terms[(terms["start_date"] <= later) & (terms["end_date"] > later)].groupby("account_id")["mrr"].sum()
        )
        frame = counts.assign(
            mrr=plan["mrr"], seats=plan["quantity"],
            tenure=(d - base.groupby("account_id")["start_date"].min().reindex(ids)).dt.days,
            churned=((churn_day.reindex(ids) > d) & (churn_day.reindex(ids) <= later)).astype(int),
            upsold=(mrr_later.reindex(ids).fillna(0) > mrr_now.reindex(ids) + 1e-6).astype(int), as_of=d,
        )  # fmt: skip
        rows.append(frame.reset_index())
    return pd.concat(rows, ignore_index=True)


def split(dates: list[pd.Timestamp], horizon: int, test_share: float = 0.3) -> tuple[list, list]:
    k = max(1, math.ceil(test_share * len(dates)))
    test = dates[len(dates) - k :]
    return [d for d in dates if d <= test[0] - pd.Timedelta(days=horizon)], test


def auc_interval(auc: float | None, positives: int, negatives: int, z: float = 1.96) -> list[float] | None:
    """ROC-AUC ± z standard errors (Hanley & McNeil 1982), clipped to [0, 1]; None without both classes."""
    if auc is None or math.isnan(auc) or positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    spread = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    var = spread / (positives * negatives)
    se = math.sqrt(max(var, 0.0))
    return [round(max(0.0, auc - z * se), 3), round(min(1.0, auc + z * se), 3)]


def resolved(ours: list[float] | None, theirs: list[float] | None) -> bool | None:
    """Whether two ROC-AUCs differ beyond noise: their 95 % intervals do not overlap (conservative)."""
    if ours is None or theirs is None:
        return None
    return ours[0] > theirs[1] or theirs[0] > ours[1]


def baseline(data: Path, horizon: int) -> tuple[dict[str, dict], pd.DataFrame]:
    """ROC-AUC and test counts per label, and the churn model's test rows (account, as_of, churned, score)."""
    panel = baseline_panel(data, horizon)
    train_dates, test_dates = split(sorted(panel["as_of"].unique()), horizon)
    train, test = panel[panel["as_of"].isin(train_dates)], panel[panel["as_of"].isin(test_dates)]
    features = [c for c in panel.columns if c not in ("account_id", "as_of", "churned", "upsold")
                and train[c].notna().any()]  # socialnet7 has no seat counts  # fmt: skip
    out: dict[str, dict] = {}
    rows = test[["account_id", "as_of", "churned"]].assign(score=np.nan)
    for label in ("churned", "upsold"):
        positives = int(test[label].sum())
        out[label] = {"roc_auc": None, "positives": positives, "negatives": len(test) - positives}
        if train[label].nunique() < 2 or test[label].nunique() < 2:
            continue  # no positives to learn from or to rank (fightchurn's socialnet7 never upsells)
        model = HistGradientBoostingClassifier(random_state=0).fit(train[features], train[label])
        score = model.predict_proba(test[features])[:, 1]
        out[label]["roc_auc"] = float(roc_auc_score(test[label], score))
        if label == "churned":
            rows["score"] = score
    return out, rows


def paired_difference(ours: pd.DataFrame, theirs: pd.DataFrame, draws: int = 1000, seed: int = 0) -> dict | None:
    """cse minus baseline churn ROC-AUC on the test rows both scored, with a 95 % bootstrap interval over accounts.

    `ours` is cse's --scores file (account, as_of, churned, churn_probability), `theirs` the baseline's rows.
    """
    theirs = theirs.assign(account=theirs["account_id"].astype(str), as_of=pd.to_datetime(theirs["as_of"]).dt.date)
    ours = ours.assign(account=ours["account"].astype(str), as_of=pd.to_datetime(ours["as_of"]).dt.date)
    both = ours.merge(theirs, on=["account", "as_of"], suffixes=("", "_baseline")).dropna(subset=["score"])
    if both.empty or both["churned"].nunique() < 2:
        return None
    mismatched = int((both["churned"] != both["churned_baseline"]).sum())
    y, a, b = both["churned"].to_numpy(), both["churn_probability"].to_numpy(), both["score"].to_numpy()
    codes, accounts = pd.factorize(both["account"])
    members = pd.Series(np.arange(len(both))).groupby(codes).apply(np.asarray).to_list()
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(draws):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(accounts), len(accounts))])
        if 0 < y[rows].sum() < len(rows):
            differences.append(roc_auc_score(y[rows], a[rows]) - roc_auc_score(y[rows], b[rows]))
    low, high = np.quantile(differences, [0.025, 0.975])
    return {"rows": len(both), "positives": int(y.sum()), "label_mismatches": mismatched,
            "cse_minus_baseline": round(float(roc_auc_score(y, a) - roc_auc_score(y, b)), 3),
            "95ci": [round(float(low), 3), round(float(high), 3)]}  # fmt: skip


def _side(metrics: dict) -> tuple[float | None, list[float] | None, int]:
    """ROC-AUC (None when not measured), its 95 % interval and the test positives of one model's test metrics."""
    auc = metrics.get("roc_auc")
    auc = None if auc is None or (isinstance(auc, float) and math.isnan(auc)) else float(auc)
    positives = int(metrics.get("positives") or 0)
    negatives = int(metrics.get("negatives", (metrics.get("rows") or 0) - positives))
    return auc, auc_interval(auc, positives, negatives), positives


def cse(data: Path, horizon: int) -> tuple[dict, pd.DataFrame]:
    """`cse evaluate --json` of the import, and its test rows' churn scores."""
    (data / "bench.yaml").write_text(MAPPING)
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "CSE_DATA_DIR": work, "DATABASE_URL": f"sqlite:///{work}/cse.db",
               "CSE_MODEL_KEY": "bench-churn-baseline-key-0123"}  # fmt: skip
        cse_bin = [str(Path(sys.executable).parent / "cse")]
        subprocess.run([*cse_bin, "import", str(data / "bench.yaml")], env=env, check=True, capture_output=True)
        scores = Path(work) / "scores.csv"
        done = subprocess.run([*cse_bin, "evaluate", "--data", "bench", "--horizon", str(horizon), "--json",
                               "--scores", str(scores)], env=env, check=True, capture_output=True,
                              text=True)  # fmt: skip
        return json.loads(done.stdout), pd.read_csv(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "cse-bench-churn")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--horizon", type=int, default=30)
    args = parser.parse_args()
    if not (args.data / "events.csv").exists():
        from bench.saas_sim import simulate, write

        write(args.data, simulate(args.accounts, args.months))
    ours, our_rows = cse(args.data, args.horizon)
    theirs, their_rows = baseline(args.data, args.horizon)
    lead = ours.get("lead_time") or {}
    result: dict = {"horizon_days": args.horizon, "cse": {}, "baseline_hgb": {}, "resolved": {}}
    for target, label in (("churn", "churned"), ("upsell", "upsold")):
        mine, base = _side(ours.get(target) or {}), _side(theirs[label])
        result["cse"].update({f"{target}_roc_auc": mine[0], f"{target}_roc_auc_95ci": mine[1]})
        result["baseline_hgb"].update({f"{target}_roc_auc": base[0], f"{target}_roc_auc_95ci": base[1]})
        result[f"{target}_test_positives"] = base[2]
        result["resolved"][target] = resolved(mine[1], base[1])
    result["cse"].update({"lead_time_median_days": lead.get("median_days"), "flagged_share": lead.get("flagged_share"),
                          "churn_model": (ours.get("churn") or {}).get("model")})  # fmt: skip
    result["churn_paired_difference"] = paired_difference(our_rows, their_rows)
    print(json.dumps(result, indent=2))
    print(f"reproduce: python -m bench.churn_baseline --data {args.data} --horizon {args.horizon}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
