"""Health settings: factor weights and band thresholds, validated by the engine's own config model, with a backtest
of current vs draft weights (how well each ranks accounts that later churned) before saving to CSE_HEALTH_CONFIG."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import yaml
from flask import flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from app.users import audit
from app.web import context
from app.web.admin import admin
from app.web.auth import current_user
from engine.canonical import FACTORS

if TYPE_CHECKING:  # the engine's config loads NumPy: only the health pages import it, not the web process
    from engine.health_config import HealthConfig

THRESHOLDS = ("healthy", "at_risk", "critical")


def _current() -> HealthConfig:
    from engine.health_config import load_health_config

    return load_health_config(context.settings().health_config)


def _draft(current: HealthConfig) -> tuple[dict[str, Any], HealthConfig | None, list[str]]:
    """The posted weights and thresholds on top of the current config, validated; problems in words."""
    from engine.health_config import HealthConfig

    data = current.model_dump(mode="json")
    problems = []
    for section, keys in (("weights", [f.value for f in FACTORS]), ("bands", THRESHOLDS)):
        for key in keys:
            raw = request.form.get(f"{section}.{key}", "")
            try:
                data[section][key] = float(raw)
            except ValueError:
                problems.append(f"{section}.{key}: expected a number, got {raw!r}")
    if problems:
        return data, None, problems
    try:
        return data, HealthConfig.model_validate(data), []
    except ValidationError as error:
        return data, None, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]


def _backtest(current: HealthConfig, draft: HealthConfig) -> dict[str, Any]:
    """AUC of −health at ranking later churners under the current and the draft weights, on the same history (built
    once: the form changes weights and bands, not how factors are computed), and which ranks them better. Nothing
    is fitted here, so any draft the config accepts is measured (pandas/sklearn load here, never at start-up)."""
    from app.ml.train import StoreOptions, rank_churners

    weights = {name: {f.value: w for f, w in config.weights.as_dict().items()}
               for name, config in (("current", current), ("draft", draft))}  # fmt: skip
    try:
        result = rank_churners(context.engine(), current, weights, StoreOptions())
    except ValueError as error:
        return {"error": str(error)}
    now, then = result["auc"]["draft"], result["auc"]["current"]
    verdict = (
        "unknown"
        if math.isnan(now) or math.isnan(then)
        else "better"
        if now > then
        else "worse"
        if now < then
        else "same"
    )
    return {**result, "verdict": verdict}


@admin.route("/health", methods=["GET", "POST"])
def health():
    from engine.health_config import HealthConfigError

    try:
        current = _current()
    except HealthConfigError as error:
        return render_template("health.html", error=str(error), current=None)
    draft, config, problems, backtest = current.model_dump(mode="json"), None, [], None
    if request.method == "POST":
        draft, config, problems = _draft(current)
        if config is not None and request.form.get("do") == "save":
            return _save(config)
        if config is not None:
            backtest = _backtest(current, config)
    return render_template(
        "health.html",
        current=current.model_dump(mode="json"),
        draft=draft,
        problems=problems,
        backtest=backtest,
        factors=[f.value for f in FACTORS],
        thresholds=THRESHOLDS,
        path=context.settings().health_config,
    )


def _save(config: HealthConfig):
    path = context.settings().health_config
    if path is None:
        flash("Set CSE_HEALTH_CONFIG to the file scoring reads; without it there is nowhere to save.", "error")
        return redirect(url_for("admin.health"))
    data = config.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    user = current_user()
    with context.engine().begin() as conn:
        audit(conn, user.username, "health.save", str(path), {"weights": data["weights"], "bands": data["bands"]})
    flash(f"Saved to {path}; the next scoring uses it.", "ok")
    return redirect(url_for("admin.health"))
