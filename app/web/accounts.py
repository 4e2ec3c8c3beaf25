"""The accounts list (server-side filters, search, sort and pages) and the account page with its actions."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from app.cards.actions import ActionRefused, parse_action, perform
from app.cards.model import BAND_LABELS, build_card
from app.programs.catalog import offered_programs
from app.store.models import Account, Action, ExternalId, OutboxRow, Score
from app.users import audit
from app.web import book, charts, context
from app.web.auth import current_user, requires

accounts = Blueprint("accounts", __name__, url_prefix="/accounts", template_folder="templates")
PAGE_SIZE = 50
HISTORY_DAYS = 180
FACTORS = ("adoption", "engagement", "support", "outcomes", "relationship", "expansion")
LIST_COLUMNS = {"name": Account.name, "arr": Account.arr, "renewal": Account.renewal_date, "owner": Account.owner}


def _number(args, name: str) -> float | None:
    try:
        return float(args[name]) if args.get(name) else None
    except ValueError:
        return None


@accounts.get("")
@requires()
def index():
    flt = book.BookFilter.of(request.args)
    q = (request.args.get("q") or "").strip()[:100]
    sort = request.args.get("sort", "name")
    descending = request.args.get("dir") == "desc"
    page = max(1, min(int(request.args["page"]) if request.args.get("page", "").isdigit() else 1, 10_000))
    with context.engine().connect() as conn:
        as_of = book.book_date(conn)
        choices = book.filter_choices(conn)
        if as_of is None:
            return render_template(
                "accounts.html",
                rows=[],
                total=0,
                flt=flt,
                choices=choices,
                q=q,
                sort=sort,
                descending=descending,
                page=1,
                pages=1,
                link=_link,
            )
        latest = book.latest_scores()
        sortable = {
            **LIST_COLUMNS,
            "health": latest.c.health,
            "churn": latest.c.churn_probability,
            "potential": latest.c.revenue_potential,
        }
        column = sortable.get(sort, Account.name)
        query = book.book_rows(
            as_of,
            latest,
            flt,
            Account.id,
            Account.name,
            Account.segment,
            Account.owner,
            Account.arr,
            Account.renewal_date,
            latest.c.health,
            latest.c.band,
            latest.c.churn_probability,
            latest.c.expansion_type,
            latest.c.revenue_potential,
        )
        if q:
            query = query.where(or_(Account.name.ilike(f"%{q}%"), Account.key == q, Account.domain == q.lower()))
        low, high = _number(request.args, "health_min"), _number(request.args, "health_max")
        if low is not None:
            query = query.where(latest.c.health >= low)
        if high is not None:
            query = query.where(latest.c.health < high if high < 100 else latest.c.health <= high)
        if request.args.get("expansion"):
            query = query.where(latest.c.expansion_type == request.args["expansion"])
        total = conn.scalar(select(func.count()).select_from(query.subquery()))
        order = column.desc() if descending else column.asc()
        rows = conn.execute(
            query.order_by(order.nulls_last(), Account.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
        ).all()
    return render_template(
        "accounts.html",
        rows=rows,
        total=total,
        flt=flt,
        choices=choices,
        q=q,
        sort=sort,
        descending=descending,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        link=_link,
        band_labels=BAND_LABELS,
    )


def _link(**changes) -> str:
    """This list's URL with some arguments changed (None drops one): sort links and pages keep the filters."""
    args = {k: v for k, v in {**request.args.to_dict(), **changes}.items() if v not in (None, "")}
    return url_for("accounts.index", **args)


def _history(conn, account_id: int, until) -> list:
    columns = [Score.as_of, Score.health, *(getattr(Score, f"f_{f}") for f in FACTORS)]
    query = select(*columns).where(Score.account_id == account_id)
    if until is not None:
        query = query.where(Score.as_of > until - timedelta(days=HISTORY_DAYS))
    return conn.execute(query.order_by(Score.as_of, Score.id)).all()


def _writes(conn, account_id: int) -> list:
    query = (
        select(
            OutboxRow.id,
            OutboxRow.vendor,
            OutboxRow.operation,
            OutboxRow.status,
            OutboxRow.attempts,
            OutboxRow.last_error,
            OutboxRow.external_id,
            OutboxRow.updated_at,
            OutboxRow.payload,
        )
        .where(OutboxRow.account_id == account_id)
        .order_by(OutboxRow.id.desc())
        .limit(100)
    )
    return conn.execute(query).all()


@accounts.get("/<int:account_id>")
@requires()
def page(account_id: int):
    with context.engine().connect() as conn:
        card = build_card(conn, account_id, offered_programs(context.settings(), conn))
        if card is None:
            abort(404)
        score = conn.execute(
            select(Score.drivers, Score.risk_drivers, Score.model_version)
            .where(Score.account_id == account_id)
            .order_by(Score.as_of.desc(), Score.id.desc())
            .limit(1)
        ).first()
        history = _history(
            conn, account_id, conn.scalar(select(func.max(Score.as_of)).where(Score.account_id == account_id))
        )
        writes = _writes(conn, account_id)
        tasks = conn.execute(
            select(
                Action.playbook, Action.step, Action.kind, Action.status, Action.due, Action.external_id, Action.payload
            )
            .where(Action.account_id == account_id)
            .order_by(Action.id.desc())
            .limit(100)
        ).all()
        records = conn.execute(
            select(ExternalId.vendor, ExternalId.object, ExternalId.external_id)
            .where(ExternalId.account_id == account_id)
            .order_by(ExternalId.vendor)
        ).all()
    factor_charts = {
        f: charts.line([(h.as_of.isoformat(), getattr(h, f"f_{f}")) for h in history], width=220, height=90)
        for f in FACTORS
    }
    health_chart = charts.line([(h.as_of.isoformat(), h.health) for h in history])
    return render_template(
        "account.html",
        card=card,
        score=score,
        history=history,
        health_chart=health_chart,
        factor_charts=factor_charts,
        writes=writes,
        tasks=tasks,
        records=records,
        band_labels=BAND_LABELS,
        bands=list(BAND_LABELS),
        touchpoint_kinds=("meeting", "call", "email"),
    )


@accounts.post("/<int:account_id>/action")
@requires("admin", "csm")
def act(account_id: int):
    """A note (touchpoint), a band override with reason and expiry, or the end of one: the card's own actions."""
    form = request.form
    kind = form.get("type")
    data: dict = {"type": kind}
    if kind == "override":
        data |= {
            "band": form.get("band"),
            "reason": form.get("reason", ""),
            "days": int(form["days"]) if form.get("days", "").isdigit() else 0,
        }
    elif kind == "touchpoint":
        data |= {"kind": form.get("kind"), "note": form.get("note", "")}
    user = current_user()
    try:
        with context.engine().connect() as conn:
            action = parse_action(data, offered_programs(context.settings(), conn))
    except ActionRefused as error:
        flash(f"Not saved: {error}", "error")
        return redirect(url_for("accounts.page", account_id=account_id))
    with context.engine().begin() as conn:
        if conn.scalar(select(Account.id).where(Account.id == account_id)) is None:
            abort(404)
        message = perform(conn, account_id, action, user.username, "web")
        audit(conn, user.username, f"account.{kind}", str(account_id), data)
    flash(message, "ok")
    return redirect(url_for("accounts.page", account_id=account_id))
