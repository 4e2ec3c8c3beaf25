"""The evaluation report as one self-contained HTML file (inline SVG charts, inline CSS, no scripts or CDN).

Why hand-written SVG: the report must open offline on any machine, years later, without a plotting library in
the service's dependencies; four simple charts (ROC, calibration, lift, lead time) do not need one.
"""

from __future__ import annotations

import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORTS_DIR = "reports"
WIDTH, HEIGHT, PAD = 360, 260, 44
BLUE, GREY, RED = "#2563eb", "#9ca3af", "#dc2626"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def _axes(x_label: str, y_label: str, x_max: float, y_max: float, ticks: int = 5, x_ticks: bool = True) -> list[str]:
    parts = [
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 10}" y2="{HEIGHT - PAD}" stroke="#111"/>',
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#111"/>',
        f'<text x="{(WIDTH + PAD) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="12" y="{(HEIGHT - PAD) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(HEIGHT - PAD) / 2})">{html.escape(y_label)}</text>',
    ]
    for i in range(ticks + 1):
        fx, fy = i / ticks, i / ticks
        x, y = _sx(fx * x_max, x_max), _sy(fy * y_max, y_max)
        if x_ticks:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{_tick(fx * x_max)}</text>')
        parts.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end">{_tick(fy * y_max)}</text>')
    return parts


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _sx(x: float, x_max: float) -> float:
    return PAD + (WIDTH - 10 - PAD) * (x / x_max if x_max else 0.0)


def _sy(y: float, y_max: float) -> float:
    return HEIGHT - PAD - (HEIGHT - PAD - 10) * (y / y_max if y_max else 0.0)


def _svg(title: str, parts: list[str]) -> str:
    body = "".join(parts)
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-size="10" font-family="sans-serif" role="img" '
        f'aria-label="{html.escape(title)}">{body}</svg><figcaption>{html.escape(title)}</figcaption></figure>'
    )


def _polyline(xs: np.ndarray, ys: np.ndarray, x_max: float, y_max: float, color: str, dash: str = "") -> str:
    points = " ".join(f"{_sx(x, x_max):.1f},{_sy(y, y_max):.1f}" for x, y in zip(xs, ys, strict=True))
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{extra} points="{points}"/>'


def roc_svg(roc: pd.DataFrame, auc: float) -> str:
    """ROC curve against the diagonal of a random ranking."""
    parts = _axes("false positive rate", "true positive rate", 1.0, 1.0)
    parts.append(_polyline(np.array([0, 1]), np.array([0, 1]), 1, 1, GREY, "4 3"))
    parts.append(_polyline(roc["fpr"].to_numpy(), roc["tpr"].to_numpy(), 1, 1, BLUE))
    return _svg(f"ROC curve (AUC {_fmt(auc)})", parts)


def calibration_svg(table: pd.DataFrame) -> str:
    """Reliability diagram: observed churn rate against mean predicted probability per decile."""
    top = float(max(table["mean_predicted"].max(), table["observed_rate"].max(), 0.05)) if len(table) else 1.0
    top = min(1.0, math.ceil(top * 10) / 10)
    parts = _axes("mean predicted probability", "observed churn rate", top, top)
    parts.append(_polyline(np.array([0, top]), np.array([0, top]), top, top, GREY, "4 3"))
    if len(table):
        xs, ys = table["mean_predicted"].to_numpy(), table["observed_rate"].to_numpy()
        parts.append(_polyline(xs, ys, top, top, BLUE))
        parts += [f'<circle cx="{_sx(x, top):.1f}" cy="{_sy(y, top):.1f}" r="3" fill="{BLUE}"/>' for x, y in zip(
            xs, ys, strict=True)]  # fmt: skip
    return _svg("Calibration by decile of predicted probability", parts)


def bars_svg(title: str, labels: list[str], values: list[float], x_label: str, y_label: str, ref: float | None) -> str:
    """A bar chart with an optional dashed reference line (e.g. the base rate)."""
    top = max([*values, ref or 0.0, 1e-9]) * 1.1
    n = max(len(values), 1)
    parts = _axes(x_label, y_label, n, top, ticks=4, x_ticks=False)
    width = (WIDTH - 10 - PAD) / n
    every = max(1, math.ceil(n / 10))  # at most ~10 category labels, so they never overlap
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD + i * width
        y = _sy(value, top)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" height="{HEIGHT - PAD - y:.1f}" '
            f'fill="{BLUE}"><title>{html.escape(label)}: {value:.3g}</title></rect>'
        )
        if i % every == 0:
            anchor = f'x="{x + width / 2:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle"'
            parts.append(f"<text {anchor}>{html.escape(label)}</text>")
    if ref is not None:
        y = _sy(ref, top)
        parts.append(
            f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="{RED}" stroke-dasharray="4 3"/>'
        )
    return _svg(title, parts)


def lead_time_svg(days: list[int]) -> str:
    """Histogram (weekly bins) of how many days before churning each churner was first flagged."""
    if not days:
        return _svg("Lead time: no churner was flagged", _axes("days before churn", "churners", 1, 1))
    edges = list(range(0, max(days) + 8, 7))
    counts, _ = np.histogram(days, bins=edges)
    labels = [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return bars_svg(
        "Days before churn each churner was first flagged", labels, counts.tolist(), "days", "churners", None
    )


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(v, digits)}</td>" for v in row) + "</tr>" for row in frame.itertuples(
        index=False))  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _kv(pairs: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in pairs.items())
    return f"<table class='kv'>{rows}</table>"


CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#111;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:right}th{background:#f3f4f6}table.kv th{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0}figcaption{font-size:.8rem;color:#444;text-align:center}.note{color:#555;font-size:.85rem}
"""


def render_html(report: dict[str, Any]) -> str:
    """The evaluation report (app.ml.train.evaluate_store's result) as a standalone HTML page."""
    m = report["metrics"]
    lead = report["lead_time"]
    lift = report["lift"]
    sections = [
        f"<h1>Churn model evaluation — time split, {report['horizon_days']}-day horizon</h1>",
        f"<p class='note'>Trained on observation dates {report['train_window']['first_observation']} to "
        f"{report['train_window']['last_observation']} (labels known until {report['train_window']['labels_until']}),"
        f" tested on {report['test_window']['first_observation']} to {report['test_window']['last_observation']}. "
        f"Every feature is computed from data on or before its observation date. Generated "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}.</p>",
        "<h2>Test-period metrics</h2>",
        _kv(
            {
                "chosen model": report["model"],
                "ROC-AUC": m["roc_auc"],
                "PR-AUC": m["pr_auc"],
                "Brier score": m["brier"],
                "top-decile lift": m["top_decile_lift"],
                "base rate": m["base_rate"],
                "test rows (account × date)": m["rows"],
                "churned within horizon": m["positives"],
                "health score ROC-AUC (−health)": report.get("health_auc"),
                "survival concordance (C-index)": report.get("survival", {}).get("concordance"),
                "expansion model ROC-AUC": report.get("expansion", {}).get("roc_auc"),
            }
        ),
        "<h2>Candidates on the validation period (inside the training window)</h2>",
        _table(
            pd.DataFrame(
                [
                    {"candidate": k, **{x: v[x] for x in ("roc_auc", "pr_auc", "brier", "top_decile_lift")}}
                    for k, v in report["candidates"].items()
                ]  # fmt: skip
            )
        ),
        "<div class='charts'>",
        roc_svg(report["roc"], m["roc_auc"]),
        calibration_svg(report["calibration"]),
        bars_svg(
            "Churn rate by score decile (red: base rate)",
            [str(d) for d in lift["decile"]],
            lift["churn_rate"].tolist(),
            "decile (1 = highest scores)",
            "churn rate",
            m["base_rate"],
        ),
        lead_time_svg(lead.get("days", [])),
        "</div>",
        "<h2>Calibration table</h2>",
        _table(report["calibration"], 4),
        "<h2>Lift by decile</h2>",
        _table(lift),
        "<h2>Lead time</h2>",
        f"<p class='note'>An account counts as flagged when its probability reaches {_fmt(lead['threshold'])} (the "
        "top decile of the validation period); the lead is measured from the start of the last unbroken run of "
        "flags before the churn date, at the weekly resolution of the observation dates.</p>",
        _kv(
            {
                k: lead[k]
                for k in ("churners", "flagged", "flagged_share", "median_days", "mean_days", "p25_days", "p75_days")
            }
        ),  # fmt: skip
        "<h2>What drives the model (mean |log-odds contribution|, test sample)</h2>",
        _table(report["importance"]),
        "<h2>Highest-risk accounts on the last test date</h2>",
        _top_accounts(report.get("top_accounts", [])),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Churn model evaluation</title>"
        f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>"
    )


def _top_accounts(rows: list[dict[str, Any]]) -> str:
    items = []
    for row in rows:
        drivers = "; ".join(
            f"{html.escape(d['label'])} = {_fmt(d['value'])} "
            f"(typical {_fmt(d['typical'])}, +{d['effect']:.2f} log-odds)"
            for d in row["drivers"]
        )
        items.append(
            f"<tr><td>{row['account_id']}</td><td>{_fmt(row['churn_probability'])}</td>"
            f"<td>{'yes' if row['churned_within_horizon'] else 'no'}</td>"
            f"<td style='text-align:left'>{drivers}</td></tr>"
        )
    return (
        "<table><thead><tr><th>account</th><th>probability</th><th>churned</th><th>top risk drivers</th></tr></thead>"
        f"<tbody>{''.join(items)}</tbody></table>"
    )


def json_ready(report: dict[str, Any]) -> dict[str, Any]:
    """The report with tables as lists of records and non-finite floats as None (for --json)."""

    def convert(value: Any) -> Any:
        if isinstance(value, pd.DataFrame):
            return [convert(r) for r in value.to_dict("records")]
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, (np.integer,)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return None if not math.isfinite(value) else float(value)
        if isinstance(value, np.bool_):
            return bool(value)
        return value

    return convert(report)


def write_report(report: dict[str, Any], data_dir: Path) -> Path:
    """Write report HTML and JSON under data_dir/reports/; returns the HTML path."""
    folder = Path(data_dir) / REPORTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"churn-evaluation-{stamp}.html"
    path.write_text(render_html(report))
    path.with_suffix(".json").write_text(json.dumps(json_ready(report), indent=2))
    return path
