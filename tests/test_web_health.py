"""The health settings page's backtest (SQLite and PostgreSQL): a draft weighting that ranks past churners better
than the current one is shown as better, one that ranks them worse as worse, with AUCs that match what each
factor alone scores in `cse backtest-health` (a different path through the same history)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.ml.train import StoreOptions, backtest_health
from app.settings import Settings
from app.web import create_app
from engine.canonical import FACTORS
from engine.health_config import default_health_config
from tests.web_support import csrf_token, sign_in

AS_OF = date(2026, 11, 30)


def _post(client, weights: dict[str, float]) -> str:
    config = default_health_config()
    form = {f"weights.{f}": str(w) for f, w in weights.items()}
    form |= {f"bands.{k}": str(v) for k, v in config.model_dump(mode="json")["bands"].items()}
    form |= {"do": "preview", "csrf_token": csrf_token(client, "/admin/health")}
    response = client.post("/admin/health", data=form)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _shown(page: str) -> tuple[dict[str, float], str]:
    aucs = dict(re.findall(r'data-weights="(\w+)"><th scope="row">\w+</th><td class="num auc">([0-9.]+)</td>', page))
    verdict = re.search(r'id="backtest-verdict" data-verdict="(\w+)"', page).group(1)
    return {k: float(v) for k, v in aucs.items()}, verdict


def test_the_backtest_shows_a_better_and_a_worse_draft_as_such(store, tmp_path):
    book = generate_book(BookSpec(seed=3, active_accounts=200, days=220, as_of=AS_OF))
    load_book(store, book.accounts, book.contacts, book.events)
    reference = backtest_health(store, default_health_config(), StoreOptions())
    alone = {row.factor: row.auc for row in reference["factors"].itertuples() if row.measured}
    best, worst = max(alone, key=alone.get), min(alone, key=alone.get)
    assert alone[best] > reference["auc_current"] > alone[worst]  # the book gives both kinds of draft

    client = create_app(Settings(data_dir=tmp_path / "data", secret_key="k"), engine=store).test_client()
    sign_in(client, store, "admin")
    for factor, verdict in ((best, "better"), (worst, "worse")):
        aucs, shown = _shown(_post(client, {f.value: 1.0 if f.value == factor else 0.0 for f in FACTORS}))
        assert shown == verdict, factor
        assert aucs["current"] == pytest.approx(round(reference["auc_current"], 3), abs=0.0011)
        assert aucs["draft"] == pytest.approx(round(alone[factor], 3), abs=0.0011)
