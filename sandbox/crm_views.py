"""Screenshots of what write-back leaves in a CRM: the fields on a company record and a task as created.

    python -m sandbox.crm_views --shoot docs/screenshots     # needs selenium, /usr/bin/chromium, chromedriver

Runs the demo's loop in this process on a small generated book (the Salesforce and HubSpot sandboxes seeded from
it, a sync to link them, a scoring run for today and its write-back), then reads the sandboxes' stored records for
the riskiest written-back account, renders them as plain HTML pages (one per vendor) and captures them in headless
Chromium with the card harness's `shoot`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import ExitStack
from datetime import date, datetime
from html import escape
from pathlib import Path

from app.book_loader import load_book
from app.demo.book import BookSpec, generate_book
from app.demo.crm_loop import crm_settings, deliver_everything, link_companies
from app.programs.definitions import load_programs
from app.programs.tick import Limits, run_tick
from app.rescoring import rescore
from app.store.db import make_engine, upgrade_schema
from connectors.registry import connector
from engine.health_config import load_health_config
from sandbox.card_harness.__main__ import shoot

STYLE = (
    "body{font-family:Arial,sans-serif;background:#f3f3f3;margin:0;padding:24px}"
    ".surface{width:720px;background:#fff;border:1px solid #dddbda;border-radius:4px;padding:14px 18px}"
    "h2{font-size:17px;margin:0 0 4px}p{color:#706e6b;font-size:12px;margin:0 0 10px}"
    "table{border-collapse:collapse;width:100%;font-size:13px}td{border-top:1px solid #eee;padding:6px 4px}"
    "td:first-child{color:#3e3e3c;width:38%;font-family:monospace}"
)


def _page(title: str, subtitle: str, rows: dict[str, object]) -> str:
    shown = {k: "–" if v is None else v for k, v in rows.items()}
    cells = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in shown.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"
            f"<div class='surface'><h2>{escape(title)}</h2><p>{escape(subtitle)}</p><table>{cells}</table></div>"
            "</body></html>")  # fmt: skip


def _salesforce_pages(org) -> dict[str, str]:
    scored = [a for a in org.live("Account") if a.get("CSE_Health_Score__c") is not None]
    account = min(scored, key=lambda a: a["CSE_Health_Score__c"])
    fields = {k: v for k, v in account.items() if k.startswith("CSE_") or k in ("Name", "Id")}
    tasks = [t for t in org.live("Task") if t.get("WhatId") == account["Id"] and t.get("CSE_Dedupe_Key__c")]
    task = {k: tasks[0].get(k) for k in ("Subject", "Status", "Priority", "ActivityDate", "OwnerId", "WhatId",
                                         "Description", "CSE_Dedupe_Key__c") if k in tasks[0]}  # fmt: skip
    return {
        "salesforce-fields": _page(f"Account: {account['Name']}", "Salesforce: the CSE_* fields written back", fields),
        "salesforce-task": _page(f"Task: {task.get('Subject')}", "Salesforce: a task as the programs made it", task),
    }


def _hubspot_pages(state) -> dict[str, str]:
    companies = [c for c in state.records["companies"].values() if c.properties.get("cse_health_score")]
    company = min(companies, key=lambda c: float(c.properties["cse_health_score"]))
    fields = {"name": company.properties.get("name")}
    fields |= {k: v for k, v in sorted(company.properties.items()) if k.startswith("cse_")}
    tasks = [t for t in state.records["tasks"].values() if (t.properties.get("hs_task_subject") or "")]
    task = {k: v for k, v in sorted(tasks[0].properties.items()) if k.startswith("hs_task") or k == "hs_timestamp"}
    return {
        "hubspot-fields": _page(f"Company: {fields['name']}", "HubSpot: the cse_* properties write-back set", fields),
        "hubspot-task": _page(
            f"Task: {task.get('hs_task_subject')}", "HubSpot: a task as the programs created it", task
        ),  # fmt: skip
    }


def build_pages(folder: Path, accounts: int = 120) -> dict[str, Path]:
    """Run the loop on a small book and write one HTML page per view; returns the pages by name."""
    today = date.today()
    book = generate_book(BookSpec(seed=7, active_accounts=accounts, days=60, as_of=today))
    database_url = f"sqlite:///{folder / 'views.db'}"
    engine = make_engine(database_url)
    upgrade_schema(engine)
    load_book(engine, book.accounts, book.contacts, book.events)
    with ExitStack() as stack:
        running = {v: stack.enter_context(connector(v).start_sandbox(book)) for v in ("salesforce", "hubspot")}
        env = {k: v for sandbox in running.values() for k, v in sandbox.settings_env().items()}
        env |= {"DATABASE_URL": database_url, "CSE_DATA_DIR": str(folder)}
        os.environ.update(env)  # the delivery jobs read their settings from the environment, as a worker does
        settings = crm_settings(env)
        link_companies(engine, settings, folder / "sync-logs")
        programs = load_programs(settings, engine)
        rescore(engine, today, load_health_config(), settings.writeback_score_step, programs=programs)
        with engine.begin() as conn:  # the programs' first steps: the CSM tasks the views show
            run_tick(conn, programs, datetime.now(), Limits(settings.messages_per_week, settings.task_budget_per_csm))
        deliver_everything(engine, settings)
        html = _salesforce_pages(running["salesforce"].org) | _hubspot_pages(running["hubspot"].state)
    pages = {}
    for name, text in html.items():
        pages[name] = folder / f"{name}.html"
        pages[name].write_text(text)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoot", type=Path, help="capture PNG screenshots into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        pages = build_pages(Path(scratch))
        for page in pages.values():
            print(f"  {page}")
        if args.shoot:
            shoot(pages, args.shoot)


if __name__ == "__main__":
    main()
