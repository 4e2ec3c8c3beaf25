"""The web app in a real browser: Debian's chromium driven by Selenium through /usr/bin/chromedriver.

One module-wide world: a demo book loaded and scored by the `cse` CLI into SQLite, the same book's companies in a
HubSpot sandbox (so the mapping editor's preview pulls live records and a saved mapping changes what `cse sync`
stores), an admin and a CSM, and the web app served over loopback. Every page visited is checked for JavaScript
console errors. With CSE_SHOOT_SCREENSHOTS=1 the dashboard, an account page and the mapping editor are saved to
docs/screenshots/ (docs/web-app.md shows them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.demo.book import BookSpec, generate_book
from app.settings import Settings
from app.store.active import accounts_active_on
from app.store.db import make_engine
from app.store.models import Account, AuditEntry, BandOverride, ExternalId, Score, SyncSample
from app.users import add_user
from app.web import create_app
from engine.canonical import FACTOR_LABELS
from sandbox.hubspot import start_sandbox as start_hubspot
from sandbox.server import start_server
from tests.conftest import service_missing

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TODAY = date.today()
SPEC = dict(seed=21, accounts=40, days=60)
PASSWORDS = {"ada": "admin password 1", "carl": "csm password 12"}
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
HUBSPOT_PORTAL = "4455667"


def _cse(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()):
        service_missing("Debian's chromium and chromium-driver", FileNotFoundError(CHROMEDRIVER))
    root = tmp_path_factory.mktemp("web")
    book = generate_book(BookSpec(seed=SPEC["seed"], active_accounts=SPEC["accounts"], days=SPEC["days"], as_of=TODAY))
    hubspot = start_hubspot(book)
    env = {
        **os.environ,
        **hubspot.settings_env(),
        "CSE_DATA_DIR": str(root / "data"),
        "DATABASE_URL": f"sqlite:///{root / 'cse.db'}",
        "CSE_SECRET_KEY": "browser-test-session-key",
        "CSE_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "HUBSPOT_PORTAL_ID": HUBSPOT_PORTAL,
    }
    _cse(
        env,
        "demo",
        "--no-crms",
        "--json",
        "--seed",
        str(SPEC["seed"]),
        "--accounts",
        str(SPEC["accounts"]),
        "--days",
        str(SPEC["days"]),
        "--as-of",
        TODAY.isoformat(),
    )
    _cse(env, "sync", "--vendor", "hubspot", "--full", "--quiet")
    summary = json.loads(_cse(env, "score", "--json", "--as-of", TODAY.isoformat()))
    settings = Settings.from_env(env)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        add_user(conn, "ada", PASSWORDS["ada"], "admin")
        add_user(conn, "carl", PASSWORDS["carl"], "csm")
    server = start_server(create_app(settings, engine))
    yield {"env": env, "engine": engine, "base": server.base_url, "summary": summary, "root": root}
    server.stop()
    hubspot.stop()
    engine.dispose()


@pytest.fixture(scope="module")
def browser(world):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
        f"--user-data-dir={world['root'] / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def page(world, browser):
    """Open paths of the app; at the end of the test, no page may have logged a JavaScript error."""

    def open_(path: str) -> None:
        browser.get(world["base"] + path)

    browser.delete_all_cookies()
    browser.get_log("browser")  # drop what earlier tests left
    yield open_
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and not _refused_on_purpose(e)] == []


def _refused_on_purpose(entry: dict) -> bool:
    """The 400/401/403 answers the tests provoke (wrong password, no CSRF token, a CSM on an admin page) are
    logged by the browser as failed loads; a JavaScript error, a CSP violation or a missing file is not one."""
    return entry["source"] == "network" and any(f"status of {code}" in entry["message"] for code in (400, 401, 403))


def _wait(browser, condition, seconds: float = 20):
    return WebDriverWait(browser, seconds).until(condition)


def sign_in(browser, page, username: str, password: str | None = None) -> None:
    page("/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password or PASSWORDS[username])
    submit(browser, "form.login button")


def submit(browser, css: str) -> None:
    """Click a form's button and wait for the page it posts to (or redirects to) to replace this one."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, css).click()
    _wait(browser, _replaced(old))


def _replaced(old):
    """`ec.staleness_of`, also for the answer newer ChromeDriver gives for a node of a page that has gone
    ("Node with given id does not belong to the document"), which Selenium does not map to a stale element."""

    def gone(_browser) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    return gone


def shoot(browser, name: str) -> None:
    if os.environ.get("CSE_SHOOT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1280, min(max(height, 800), 4000))
        browser.save_screenshot(str(SCREENSHOTS / f"web-{name}.png"))
        browser.set_window_size(1280, 1100)


def test_sign_in_and_a_wrong_password_is_refused(browser, page):
    sign_in(browser, page, "ada", "not the password")
    assert "Wrong user name or password" in browser.find_element(By.CSS_SELECTOR, ".flash.error").text
    assert browser.get_cookie("cse_session") is None or "uid" not in browser.page_source
    page("/")
    assert "/login" in browser.current_url  # still signed out
    sign_in(browser, page, "ada")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Success dashboard")
    cookie = browser.get_cookie("cse_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"


def test_a_form_without_its_csrf_token_is_refused(browser, page):
    sign_in(browser, page, "ada")
    page("/accounts/1")
    browser.execute_script("document.querySelector('#note-form input[name=csrf_token]').remove()")
    browser.find_element(By.ID, "n-note").send_keys("Called the champion")
    submit(browser, "#note-form button")
    assert "CSRF token is missing" in browser.page_source
    page("/accounts/1")
    assert "Called the champion" not in browser.page_source


def test_a_csm_cannot_open_admin_pages(browser, page):
    sign_in(browser, page, "carl")
    for path in ("/admin/mappings", "/admin/health", "/admin/operations", "/admin/events"):
        page(path)
        assert "403" in browser.title or "Forbidden" in browser.page_source, path
    page("/")
    assert "Mappings" not in browser.find_element(By.CSS_SELECTOR, "header nav").text
    page("/accounts")
    assert browser.find_elements(By.CSS_SELECTOR, "#accounts tbody th a")


def test_dashboard_band_counts_equal_cse_score(world, browser, page):
    sign_in(browser, page, "ada")
    rows = browser.find_elements(By.CSS_SELECTOR, "#bands tbody tr")
    shown = {row.get_attribute("data-band"): int(row.find_element(By.CSS_SELECTOR, ".count").text) for row in rows}
    assert shown == {band: b["count"] for band, b in world["summary"]["bands"].items()}
    assert int(browser.find_element(By.ID, "total").text) == world["summary"]["accounts"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) >= 5
    shoot(browser, "dashboard")
    band = max(shown, key=shown.get)
    submit(browser, f'#bands tr[data-band="{band}"] th a')
    assert int(browser.find_element(By.ID, "total").text.replace(",", "")) == shown[band]


CHART_TEXT = """
return [...document.querySelectorAll('svg.chart text')].map(t => {
  const svg = t.ownerSVGElement, box = svg.viewBox.baseVal, b = t.getBBox();
  const scale = svg.getBoundingClientRect().width / box.width;
  const inside = b.x >= box.x - 0.5 && b.x + b.width <= box.x + box.width + 0.5
    && b.y >= box.y - 0.5 && b.y + b.height <= box.y + box.height + 0.5;
  return {text: t.textContent, inside: inside, px: scale * parseFloat(getComputedStyle(t).fontSize)};
});
"""


@pytest.mark.parametrize("width", [1280, 390])
def test_chart_text_is_inside_its_chart_and_readable_at_desktop_and_phone_width(world, browser, page, width):
    """Every label of every chart lies within its chart (no "026-11-04"), and is drawn at 9-16 px on a 1280 px
    screen and on a phone (a chart stretched over the page's full width drew its labels at 28 px)."""
    account_id, _ = _account_with_drivers(world["engine"])
    sign_in(browser, page, "ada")
    browser.set_window_size(width, 1100)
    try:
        for path in ("/", f"/accounts/{account_id}"):
            page(path)
            texts = browser.execute_script(CHART_TEXT)
            assert len(texts) > 20, path
            assert [t["text"] for t in texts if not t["inside"]] == [], path
            assert [(t["text"], round(t["px"], 1)) for t in texts if not 9 <= t["px"] <= 16] == [], path
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width, path
    finally:
        browser.set_window_size(1280, 1100)


def _account_with_drivers(engine) -> tuple[int, list[str]]:
    with engine.connect() as conn:
        latest = conn.execute(
            select(Score.account_id, Score.drivers).where(Score.as_of == TODAY).order_by(Score.account_id)
        ).all()
    return next((a, d) for a, d in latest if d)


def test_the_account_page_shows_the_stored_drivers(world, browser, page):
    account_id, drivers = _account_with_drivers(world["engine"])
    sign_in(browser, page, "carl")
    page(f"/accounts/{account_id}")
    listed = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#health-drivers li")]
    assert listed == [FACTOR_LABELS[d] for d in drivers]  # the factors' names, not their keys
    captions = [c.text.rsplit(" ", 1)[0] for c in browser.find_elements(By.CSS_SELECTOR, ".factors figcaption")]
    assert captions == list(FACTOR_LABELS.values())
    assert len(browser.find_elements(By.CSS_SELECTOR, ".factors svg.chart")) == 6
    with world["engine"].connect() as conn:
        company = conn.scalar(
            select(ExternalId.external_id).where(ExternalId.account_id == account_id, ExternalId.vendor == "hubspot")
        )
    link = browser.find_element(By.CSS_SELECTOR, '#crm-records li[data-vendor="hubspot"] a')
    assert link.get_attribute("href") == f"https://app.hubspot.com/contacts/{HUBSPOT_PORTAL}/company/{company}"
    shoot(browser, "account")


def _hubspot_accounts(engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Account.key, Account.name, Account.plan)
            .join(ExternalId, ExternalId.account_id == Account.id)
            .where(ExternalId.vendor == "hubspot")
        ).all()
    return {key: (name, plan) for key, name, plan in rows}


MARKED = "Stored Sample Company"


def _stored_sample(engine, rename: str | None = None) -> list[dict]:
    """The raw companies the last sync stored; with `rename`, the first renamed there (only there, not in HubSpot):
    a preview that shows the name read the stored records, a live pull cannot. Returns them as they were."""
    where = (SyncSample.vendor == "hubspot", SyncSample.object == "companies")
    with engine.begin() as conn:
        records = conn.scalar(select(SyncSample.records).where(*where))
        assert records, "the sync stored no raw records"
        if rename is not None:
            changed = json.loads(json.dumps(records))
            changed[0].get("properties", changed[0])["name"] = rename
            conn.execute(update(SyncSample).where(*where).values(records=changed))
    return records


def _restore_sample(engine, records: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(update(SyncSample).where(SyncSample.vendor == "hubspot").values(records=records))


def _type_into_editor(browser, text: str) -> None:
    """Put `text` in the editor as typing would: the last character really typed, so `input` fires."""
    editor = browser.find_element(By.ID, "content")
    browser.execute_script("arguments[0].value = arguments[1];", editor, text[:-1])
    editor.send_keys(text[-1])


def test_mapping_edit_validates_previews_saves_and_rolls_back(world, browser, page):
    engine, env = world["engine"], world["env"]
    before = _hubspot_accounts(engine)
    assert before and all(plan != name for name, plan in before.values())
    stored = _stored_sample(engine, rename=MARKED)
    sign_in(browser, page, "ada")
    page("/admin/mappings/hubspot/companies")
    original = browser.find_element(By.ID, "content").get_attribute("value")
    lines = original.splitlines()
    plan_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith("plan:"))
    broken = lines.copy()
    broken[plan_line] = "  plan:             {from: plan, type: strng}"
    _type_into_editor(browser, "\n".join(broken) + "\n")
    problem = _wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#problems li.problem")))
    assert problem.get_attribute("data-line") == str(plan_line + 1) and "plan" in problem.text

    edited = lines.copy()
    edited[plan_line] = "  plan:             {from: name, type: string}"
    _type_into_editor(browser, "\n".join(edited) + "\n")
    _wait(browser, ec.text_to_be_present_in_element((By.ID, "problems"), "Valid."))
    browser.find_element(By.ID, "preview-button").click()
    draft = _wait(browser, ec.presence_of_element_located((By.ID, "preview-draft-result")))
    header = [th.text for th in draft.find_elements(By.CSS_SELECTOR, "th")]
    cells = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in draft.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    assert cells and all(row[header.index("plan")] == row[header.index("name")] for row in cells)
    assert MARKED in [row[header.index("name")] for row in cells]  # the stored record, not a fresh pull
    assert "the last sync of companies" in browser.find_element(By.ID, "preview-sample").text
    browser.find_element(By.ID, "preview-live-button").click()
    _wait(browser, ec.text_to_be_present_in_element((By.ID, "preview-sample"), "a live pull of companies"))
    live = browser.find_element(By.ID, "preview-draft-result").text
    assert MARKED not in live and live.strip()
    _restore_sample(engine, stored)
    browser.find_element(By.ID, "preview-button").click()
    _wait(browser, ec.text_to_be_present_in_element((By.ID, "preview-sample"), "the last sync of companies"))
    changed = browser.find_elements(By.CSS_SELECTOR, "#preview-draft-result th.changed")
    assert [th.text for th in changed] == ["plan"]  # the column the edit changes, shown first and marked
    browser.find_element(By.ID, "diff-button").click()
    _wait(browser, ec.text_to_be_present_in_element((By.ID, "diff"), "+  plan:             {from: name"))
    browser.execute_script("document.getElementById('content').scrollTop = 0; document.activeElement.blur()")
    shoot(browser, "mapping-editor")
    submit(browser, "#save-button")
    assert "as version 1" in browser.find_element(By.CSS_SELECTOR, ".flash").text

    _cse(env, "sync", "--vendor", "hubspot", "--full", "--quiet")
    after = _hubspot_accounts(engine)
    assert all(plan == name for name, plan in after.values())

    page("/admin/mappings/hubspot/companies")
    submit(browser, "button[aria-label='Roll back to version 0']")
    assert "Version 0" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    _cse(env, "sync", "--vendor", "hubspot", "--full", "--quiet")
    assert _hubspot_accounts(engine) == before
    page("/admin/audit")
    audit = browser.find_element(By.ID, "audit").text
    assert "mapping.save" in audit and "mapping.rollback" in audit and "ada" in audit


def test_dashboard_program_outcomes_equal_cse_programs_report_and_link_to_the_enrollments(world, browser, page):
    report = json.loads(_cse(world["env"], "programs", "report", "--json"))["programs"]
    sign_in(browser, page, "carl")
    figures = ("entered", "active", "completed", "control")
    shown = {
        row.get_attribute("data-program"): {f: int(row.find_element(By.CSS_SELECTOR, f".{f} a").text) for f in figures}
        for row in browser.find_elements(By.CSS_SELECTOR, "#program-outcomes tbody tr")
    }
    assert shown == {name: {f: p[f] for f in figures} for name, p in report.items() if p["entered"]}
    for name in shown:
        row, p = browser.find_element(By.CSS_SELECTOR, f'#program-outcomes tr[data-program="{name}"]'), report[name]
        text = {c: row.find_element(By.CSS_SELECTOR, f".{c}").text for c in ("success", "protected", "expansion")}
        rate = "—" if p["success_rate"] is None else f"{100 * p['success_rate']:.1f}%"
        assert text == {"success": rate, "protected": f"${p['revenue_protected']:,.0f}",
                        "expansion": f"${p['expansion_won']:,.0f}"}, name  # fmt: skip
        exits = row.find_element(By.CSS_SELECTOR, ".exited").text
        assert exits == (", ".join(f"{r} {n:,}" for r, n in p["exited"].items()) or "0"), name
    name = max(shown, key=lambda n: shown[n]["entered"])
    for figure in ("entered", "active"):
        submit(browser, f'#program-outcomes tr[data-program="{name}"] .{figure} a')
        assert len(browser.find_elements(By.CSS_SELECTOR, "#enrollments tbody tr[data-account]")) == shown[name][figure]
        page("/")
    measured = next(n for n, p in report.items() if p["success_rate"] is not None and p["uplift"]["treated_n"])
    submit(browser, f'#program-outcomes tr[data-program="{measured}"] .success a')
    treated = report[measured]["uplift"]["treated_n"]
    won = len(browser.find_elements(By.CSS_SELECTOR, "#enrollments tbody tr[data-account]"))
    assert won == round(report[measured]["success_rate"] * treated)


ADVOCACY_DRAFT = """program: advocacy
title: Advocacy (draft)
entry: band == "critical"
holdout: 0
audiences:
  big: arr >= 10000
steps:
  - key: ask
    day: 0
    channel: crm_task
    text:
      default: {title: "Ask {name} for a review", body: "b"}
      big: {title: "Ask {name} for a case study", body: "b"}
"""


def _critical_today(engine) -> tuple[int, int]:
    """Active accounts whose latest score on or before today is critical, and how many of them have ARR >= 10,000."""
    with engine.connect() as conn:
        newest = select(func.max(Score.id)).where(Score.as_of <= TODAY).group_by(Score.account_id).scalar_subquery()
        rows = conn.execute(
            select(Account.arr).join(Score, Score.account_id == Account.id)
            .where(Score.id.in_(newest), Score.band == "critical", accounts_active_on(TODAY))
        ).scalars().all()  # fmt: skip
    return len(rows), sum(1 for arr in rows if arr is not None and arr >= 10_000)


def test_programs_admin_lists_validates_switches_and_previews_the_audience(world, browser, page):
    engine = world["engine"]
    sign_in(browser, page, "ada")
    page("/admin/programs")
    row = browser.find_element(By.CSS_SELECTOR, '#programs tr[data-program="retention"]')
    assert "v0 (file)" in row.text and row.find_element(By.CSS_SELECTOR, ".status").text == "on"
    submit(browser, "button[aria-label='Switch off retention']")
    assert "retention is off" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    status = browser.find_element(By.CSS_SELECTOR, '#programs tr[data-program="retention"] .status').text
    assert status.startswith("off") and "off by ada" in status
    with engine.connect() as conn:
        logged = conn.execute(
            select(AuditEntry.username).where(AuditEntry.action == "program.disable", AuditEntry.target == "retention")
        ).all()
    assert [u for (u,) in logged] == ["ada"]  # that it then enrolls no one: tests/test_web_programs.py

    page("/admin/programs/advocacy")
    lines = ADVOCACY_DRAFT.splitlines()
    broken = [line.replace("day: 0", "day: soon") for line in lines]
    _type_into_editor(browser, "\n".join(broken) + "\n")
    submit(browser, "#validate-button")
    problem = browser.find_element(By.CSS_SELECTOR, "#problems li.problem")
    assert problem.get_attribute("data-line") == str(broken.index("    day: soon") + 1)
    assert problem.get_attribute("data-field") == "steps.0.day"
    _type_into_editor(browser, ADVOCACY_DRAFT)
    submit(browser, "#audience-button")
    assert browser.find_element(By.ID, "problems").text == "Valid."
    critical, big = _critical_today(engine)
    assert int(browser.find_element(By.ID, "audience-matched").text) == critical
    variants = {r.get_attribute("data-variant"): int(r.find_element(By.TAG_NAME, "td").text)
                for r in browser.find_elements(By.CSS_SELECTOR, "#audience-variants tbody tr")}  # fmt: skip
    assert variants == {"big": big, "default": critical - big}

    page("/admin/programs")
    submit(browser, "button[aria-label='Switch on retention']")
    assert browser.find_element(By.CSS_SELECTOR, '#programs tr[data-program="retention"] .status').text.startswith("on")


def test_an_override_survives_rescoring_and_expires(world, browser, page):
    engine, env = world["engine"], world["env"]
    with engine.connect() as conn:
        account_id, computed = conn.execute(
            select(Score.account_id, Score.band)
            .where(Score.as_of == TODAY, Score.band != "healthy")
            .order_by(Score.account_id)
            .limit(1)
        ).one()
    sign_in(browser, page, "carl")
    page(f"/accounts/{account_id}")
    browser.find_element(By.ID, "o-band").send_keys("Healthy")
    browser.find_element(By.ID, "o-reason").send_keys("Exec sponsor renewed verbally")
    days = browser.find_element(By.ID, "o-days")
    days.clear()
    days.send_keys("1")
    submit(browser, "#override-form button")
    assert "Band set to Healthy until" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert "Exec sponsor renewed verbally" in browser.find_element(By.ID, "override").text

    _cse(env, "score", "--json", "--as-of", TODAY.isoformat())
    page(f"/accounts/{account_id}")
    assert browser.find_element(By.ID, "band").text == "Healthy"
    assert "Overridden to Healthy" in browser.find_element(By.ID, "override").text
    with engine.connect() as conn:
        band, engine_band = conn.execute(
            select(Score.band, Score.band_computed)
            .where(Score.account_id == account_id, Score.as_of == TODAY)
            .order_by(Score.id.desc())
            .limit(1)
        ).one()
        expires = conn.scalar(select(BandOverride.expires_at).where(BandOverride.account_id == account_id))
    assert band == "healthy" and engine_band == computed

    after_expiry = expires.date() + timedelta(days=1)
    _cse(env, "score", "--json", "--as-of", after_expiry.isoformat())
    with engine.connect() as conn:
        band, engine_band = conn.execute(
            select(Score.band, Score.band_computed).where(Score.account_id == account_id, Score.as_of == after_expiry)
        ).one()
    assert band != "healthy" or engine_band is None
    assert engine_band is None  # no override in force that day: the engine's band is the band


def test_every_page_renders_without_console_errors(world, browser, page):
    sign_in(browser, page, "ada")
    for path in (
        "/",
        "/?segment=smb",
        "/accounts?sort=health&dir=desc",
        "/accounts?q=a&page=1",
        "/accounts/2",
        "/admin/mappings",
        "/admin/mappings/hubspot/companies",
        "/admin/health",
        "/admin/programs",
        "/admin/programs/retention",
        "/programs/onboarding/accounts",
        "/admin/operations",
        "/admin/events",
        "/admin/audit",
    ):
        page(path)
        assert browser.find_element(By.TAG_NAME, "h1").text, path
        labelled = browser.execute_script(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !(e.id && document.querySelector('label[for=\"' + e.id + '\"]'))).length"
        )
        assert labelled == 0, path
    browser.set_window_size(390, 844)  # a phone
    page("/accounts/2")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    browser.set_window_size(1280, 1100)
    assert width <= 400
