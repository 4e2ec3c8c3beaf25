"""Benchmark churn model training and scoring on a synthetic panel; prints times, throughput and peak memory.

    python -m bench.models                                # 100,000 accounts x 12 monthly observation dates
    python -m bench.models --accounts 20000 --dates 12 --threads 2
    python -m bench.models --candidates hgb               # the boosted model: explanations per second (issue 15)

Targets (issue 6): training (candidate selection, calibration and refit of the churn model) on 100,000 accounts x
12 monthly observation dates in under 2 minutes on 2 cores; scoring at >= 200,000 accounts/s. Issue 15: risk
drivers of the boosted model at >= 50,000 accounts/s (tree-path attribution; occlusion, the method before, is
timed on a sample in the same run for the ratio).

The features are synthetic but shaped like engine.learning.features (same columns, NaN where an account has no
usage feed, one categorical): what is measured is the cost of the pipelines, which does not depend on where the
numbers came from. Each account carries a latent risk that drives its features and its churn, so the candidates
have signal to compare. Peak memory is the process's peak resident set size (ru_maxrss) after each phase.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from engine.learning.explain import _occlusion, top_drivers
from engine.learning.features import FEATURES, categorical_features, numeric_features
from engine.learning.models import FeatureSpec, TrainConfig, prepare_frame, train_classifier
from engine.learning.predict import ModelBundle, predict_churn

HORIZON_DAYS = 30
FIRST_DATE = date(2025, 11, 1)


def synthetic_panel(accounts: int, dates: int, seed: int = 0) -> pd.DataFrame:
    """`accounts` x `dates` rows (monthly observation dates) with every model feature and a churn label."""
    rng = np.random.default_rng(seed)
    numeric = numeric_features()
    risk = rng.normal(0.0, 1.0, accounts)  # the account's latent churn propensity
    loadings = rng.normal(0.0, 0.6, len(numeric))  # how each feature reflects it
    scale = np.abs(rng.normal(1.0, 0.5, len(numeric))) + 0.1
    frames = []
    for k in range(dates):
        drift = risk + rng.normal(0.0, 0.5, accounts)
        values = drift[:, None] * loadings[None, :] + rng.normal(0.0, 1.0, (accounts, len(numeric)))
        values = (values * scale[None, :]).astype("float64")
        values[rng.random((accounts, len(numeric))) < 0.03] = np.nan  # no feed / no data
        frame = pd.DataFrame(values, columns=numeric)
        frame["segment"] = rng.choice(np.array(["smb", "mid_market", "enterprise"], dtype=object), accounts,
                                      p=[0.8, 0.17, 0.03])  # fmt: skip
        logit = -3.3 + 1.3 * drift + 0.3 * (frame["segment"] == "smb").to_numpy()
        frame["churned"] = (rng.random(accounts) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
        frame["as_of"] = pd.Timestamp(FIRST_DATE + timedelta(days=30 * k))
        frame["account_id"] = np.arange(accounts)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def explanation_rates(model, latest: pd.DataFrame, previous_sample: int = 20_000) -> dict[str, float | None]:
    """Risk drivers per second (contributions and the top three) by wall and by CPU time (on a loaded machine the
    CPU figure is the fair one), and for a boosted model the occlusion method's rate on a sample (it is ~30x
    slower), so the ratio is measured in the same run."""
    started, cpu = time.perf_counter(), time.process_time()
    top_drivers(model, latest)
    rates: dict[str, float | None] = {
        "wall": len(latest) / (time.perf_counter() - started),
        "cpu": len(latest) / (time.process_time() - cpu),
        "previous_cpu": None,
    }
    if model.name == "hgb":
        sample = latest.head(previous_sample)
        cpu = time.process_time()
        contrib = _occlusion(model, prepare_frame(sample, model.spec), sample.index)
        top_drivers(model, sample, contrib=contrib)
        rates["previous_cpu"] = len(sample) / (time.process_time() - cpu)
    return rates


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--dates", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads for fitting")
    parser.add_argument("--score-repeats", type=int, default=5)
    parser.add_argument("--candidates", default="logreg,hgb", help="comma-separated (hgb alone: the slow case)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    spec = FeatureSpec(tuple(numeric_features()), tuple(categorical_features()),
                       {k: v.label for k, v in FEATURES.items()})  # fmt: skip
    started = time.perf_counter()
    panel = synthetic_panel(args.accounts, args.dates)
    generate_s = time.perf_counter() - started
    print(f"panel: {len(panel):,} rows x {len(spec.columns)} features, churn rate {panel['churned'].mean():.3f} "
          f"(generated in {generate_s:.1f} s)", file=sys.stderr)  # fmt: skip

    started = time.perf_counter()
    candidates = tuple(args.candidates.split(","))
    config = TrainConfig(seed=0, gap_days=HORIZON_DAYS, threads=args.threads, candidates=candidates)
    model = train_classifier(panel, panel["churned"], spec, config, dates=panel["as_of"])
    train_s = time.perf_counter() - started
    train_peak = peak_rss_mb()
    print(f"training: {train_s:.1f} s (chosen {model.name}; validation ROC-AUC "
          f"{model.validation['roc_auc']:.3f}); peak RSS {train_peak:.0f} MB", file=sys.stderr)  # fmt: skip

    bundle = ModelBundle(churn=model, horizon_days=HORIZON_DAYS)
    latest = panel[panel["as_of"] == panel["as_of"].max()].reset_index(drop=True)
    predict_churn(bundle, latest.head(1000))  # warm-up
    timings = []
    for _ in range(args.score_repeats):
        started = time.perf_counter()
        predict_churn(bundle, latest, explain=False)
        timings.append(time.perf_counter() - started)
    score_rate = len(latest) / min(timings)
    started = time.perf_counter()
    predict_churn(bundle, latest, explain=True)
    explain_rate = len(latest) / (time.perf_counter() - started)
    explained = explanation_rates(bundle.churn, latest)
    explain_only, explain_cpu, previous_rate = explained["wall"], explained["cpu"], explained["previous_cpu"]
    result = {
        "accounts": args.accounts,
        "observation_dates": args.dates,
        "rows": len(panel),
        "features": len(spec.columns),
        "threads": args.threads,
        "chosen_model": model.name,
        "candidates": {k: round(v["roc_auc"], 4) for k, v in model.candidates.items()},
        "train_seconds": round(train_s, 1),
        "train_target_seconds": 120,
        "score_accounts_per_s": round(score_rate),
        "score_target_accounts_per_s": 200_000,
        "score_with_drivers_accounts_per_s": round(explain_rate),
        "explanations_accounts_per_s": round(explain_only),
        "explanations_accounts_per_cpu_s": round(explain_cpu),
        "explanations_target_accounts_per_s": 50_000 if model.name == "hgb" else None,
        "explanations_previous_method_accounts_per_cpu_s": round(previous_rate) if previous_rate else None,
        "peak_rss_mb_after_training": round(train_peak),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"training {args.accounts:,} accounts x {args.dates} dates: {train_s:.1f} s (target < 120 s, "
            f"{args.threads} thread(s), chosen {model.name})"
        )
        print(
            f"scoring: {score_rate:,.0f} accounts/s (target >= 200,000); with risk drivers: "
            f"{explain_rate:,.0f} accounts/s"
        )
        line = (f"explanations ({model.name}): {explain_only:,.0f} accounts/s wall, {explain_cpu:,.0f} per CPU "
                f"second")  # fmt: skip
        if previous_rate:
            line += (f" (target >= 50,000); occlusion, the previous method, on the same model: {previous_rate:,.0f}"
                     f" per CPU second, ratio {explain_cpu / previous_rate:.1f}x")  # fmt: skip
        print(line)
        peak, after_training = result["peak_rss_mb"], result["peak_rss_mb_after_training"]
        print(f"peak memory (RSS): {peak:,} MB (after training {after_training:,} MB)")
    return result


if __name__ == "__main__":
    main()
