"""The success dashboard: the book by band, health distribution and trend, GRR/NRR, pipelines, onboarding and CSM
workload, each figure linking to the accounts behind it."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from app.cards.model import BAND_LABELS
from app.web import book, charts, context, program_outcomes
from app.web.auth import requires

dashboard = Blueprint("dashboard", __name__, template_folder="templates")


@dashboard.get("/")
@requires()
def index():
    flt = book.BookFilter.of(request.args)
    with context.engine().connect() as conn:
        as_of = book.book_date(conn)
        choices = book.filter_choices(conn, as_of)
        if as_of is None:
            return render_template("dashboard.html", as_of=None, flt=flt, choices=choices)
        figures = book.book_figures(conn, as_of, flt)
        trend = book.health_trend(conn, as_of, flt)
        retention = book.retention_by_month(conn, as_of, flt)
        outcomes = program_outcomes.dashboard_outcomes(conn)
    summary, distribution, funnel, workload = (figures[k] for k in ("summary", "distribution", "funnel", "workload"))
    pipelines = {"churn": figures["churn"], "expansion": figures["expansion"]}

    def accounts_link(**changes: str | None) -> str:
        return url_for("accounts.index", **flt.query(**changes))

    band_chart = charts.bars(
        [(BAND_LABELS[b], summary["bands"][b]["count"], accounts_link(band=b)) for b in book.BAND_NAMES]
    )
    distribution_chart = charts.bars(
        [
            (f"{10 * i}", n, accounts_link(health_min=str(10 * i), health_max=str(10 * i + 10)))
            for i, n in enumerate(distribution)
        ]
    )
    trend_chart = charts.line([(d["as_of"].isoformat(), d["avg_health"]) for d in trend])
    retention_chart = charts.line(
        [(m["month"], None if m["nrr"] is None else 100 * m["nrr"]) for m in retention], low=50, high=150
    )
    funnel_chart = charts.hbars([(f["milestone"], f["accounts"], None) for f in funnel])
    return render_template(
        "dashboard.html",
        as_of=as_of,
        flt=flt,
        choices=choices,
        summary=summary,
        band_labels=BAND_LABELS,
        band_chart=band_chart,
        distribution_chart=distribution_chart,
        trend=trend,
        trend_chart=trend_chart,
        retention=retention,
        retention_chart=retention_chart,
        pipelines=pipelines,
        funnel=funnel,
        funnel_chart=funnel_chart,
        workload=workload,
        outcomes=outcomes,
        accounts_link=accounts_link,
    )
