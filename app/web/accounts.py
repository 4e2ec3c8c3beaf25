"""The accounts list (server-side filters, search, sort and pages) and the account page with its actions."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from app.cards.actions import ActionRefused, parse_action, perform
from app.cards.model import BAND_LABELS, build_card
from app.numbers import whole_number
from app.programs.catalog import offered_programs, program_titles, programs_dir_of
from app.store.models import Account, Action, ExternalId, OutboxRow, Score
from app.users import audit
from app.web import book, charts, context
from app.web.auth import current_user, requires
from engine.canonical import FACTOR_LABELS

accounts = Blueprint("accounts", __name__, url_prefix="/accounts", template_folder="templates")
PAGE_SIZE = 50
HISTORY_DAYS = 180
FACTORS = ("adoption", "engagement", "support", "outcomes", "relationship", "expansion")
LIST_COLUMNS = {"name": Account.name, "arr": Account.arr, "renewal": Account.renewal_date, "owner": Account.owner}
SCORE_SORTS = {"health": "health", "churn": "churn_probability", "potential": "revenue_potential"}
ROW_COLUMNS = (Account.id, Account.name, Account.segment, Account.owner, Account.arr, Account.renewal_date)
ROW_SCORES = ("health", "band", "churn_probability", "expansion_type", "revenue_potential")


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
    page = max(1, min(whole_number(request.args.get("page")) or 1, 10_000))
    with context.engine().connect() as conn:
        as_of = book.book_date(conn)
        choices = book.filter_choices(conn, as_of)
        page_of = partial(
            render_template, "accounts.html", flt=flt, choices=choices, q=q, sort=sort, descending=descending,
            link=_link, band_labels=BAND_LABELS,
        )  # fmt: skip
        if as_of is None:
            return page_of(rows=[], total=0, page=1, pages=1)
        latest = book.latest_scores()
        on_accounts, on_scores = _conditions(request.args, q, latest)
        score_sort = SCORE_SORTS.get(sort)
        column = latest.c[score_sort] if score_sort else LIST_COLUMNS.get(sort, Account.name)
        needs_scores = bool(flt.band or score_sort or on_scores)

        def listed(join: str | None, *columns):
            return book.book_rows(as_of, latest, flt, *columns, join=join).where(*on_accounts, *on_scores)

        size = listed("outer" if needs_scores else None, func.count(), func.count(column))
        every = listed("outer", *ROW_COLUMNS, *(latest.c[c] for c in ROW_SCORES))
        # Sorted by a score, the accounts with one are walked on its index from the current-score table.
        valued = listed("inner", *ROW_COLUMNS, *(latest.c[c] for c in ROW_SCORES)) if score_sort else every
        ties = latest.c.account_id if score_sort else Account.id
        total, rows = _page(conn, conn.execute(size).one(), (valued, every), column, ties, descending, page)
    return page_of(rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)))


def _conditions(args, q: str, latest) -> tuple[list, list]:
    """The list's own filters as WHERE terms: the search (on accounts) and the health range and expansion type
    (on scores)."""
    on_accounts = [or_(Account.name.ilike(f"%{q}%"), Account.key == q, Account.domain == q.lower())] if q else []
    low, high = _number(args, "health_min"), _number(args, "health_max")
    health, on_scores = latest.c.health, []
    if low is not None:
        on_scores.append(health >= low)
    if high is not None:
        on_scores.append(health < high if high < 100 else health <= high)
    if args.get("expansion"):
        on_scores.append(latest.c.expansion_type == args["expansion"])
    return on_accounts, on_scores


def _page(conn, sizes: tuple[int, int], queries: tuple, column, ties, descending: bool, page: int) -> tuple[int, list]:
    """The list's size and one page of it sorted by `column`, accounts without a value last, ties by id.

    Read as two parts, each in an index's order: the rows with a value (`queries[0]`, sorted by it: walked on the
    column's index until the page is full) and after them the rows without (`queries[1]`, by id). One ORDER BY …
    NULLS LAST would sort the whole book for every page on SQLite, whose indexes keep NULLs first.
    """
    (total, known), offset = sizes, (page - 1) * PAGE_SIZE
    rows = []
    if offset < known:
        order = (column.desc(), ties.desc()) if descending else (column.asc(), ties.asc())
        ordered = queries[0].where(column.is_not(None)).order_by(*order)
        rows = conn.execute(ordered.limit(PAGE_SIZE).offset(offset)).all()
    if len(rows) < PAGE_SIZE and known < total:
        missing = queries[1].where(column.is_(None)).order_by(Account.id).limit(PAGE_SIZE - len(rows))
        rows += conn.execute(missing.offset(max(0, offset - known))).all()
    return total, rows


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
        settings = context.settings()
        card = build_card(
            conn, account_id, offered_programs(settings, conn), titles=program_titles(programs_dir_of(settings))
        )
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
                Action.playbook.label("program"),
                Action.step,
                Action.kind,
                Action.status,
                Action.due,
                Action.external_id,
                Action.payload,
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
        factor_labels=FACTOR_LABELS,
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
            "days": whole_number(form.get("days")) or 0,
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
