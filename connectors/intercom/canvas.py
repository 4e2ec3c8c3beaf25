"""Our Intercom inbox app (Canvas Kit): verify and read initialize/submit requests, answer the card as a canvas.

Intercom signs each request with `X-Body-Signature` = hex HMAC-SHA256 of the raw body under the app's client secret.
The canvas is shown to teammates in the inbox, but its words stay neutral (no risk vocabulary): a conversation can
be screen-shared, and canvases can be inserted into replies. For the same reason a program's control group never
shows here: an enrollment held out of a program is left off, and an onboarding control account shows its milestone
count only (no status, no milestone list), so nothing on the canvas prompts a teammate to act for the program.
Buttons submit; the answer is the updated canvas.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from connectors.webhook_common import WebhookMalformed, WebhookRejected, same_signature

MAX_CANVAS_BYTES = 64 * 1024  # Intercom caps each part of a response at 64 KB
# Neutral wording for the bands and the outlook: nothing here reads as an internal risk label.
BAND_WORDS = {"healthy": "On track", "at_risk": "Needs attention", "critical": "Needs action", "churning": "Urgent"}
SNOOZE_DAYS = 14
# Onboarding status and phases in the inbox's words.
ONBOARDING_WORDS = {"on_track": "on schedule", "behind": "a few steps to catch up", "stuck": "could use a hand"}
PHASE_WORDS = {"setup": "setup", "adoption": "adoption", "optimization": "optimization", "graduated": "complete",
               "ended": "past day 90"}  # fmt: skip
RISK_WORDS = re.compile(r"churn|risk|cancel|competitor|at.risk|critical|about to leave", re.IGNORECASE)


def neutral(text: str | None, fallback: str) -> str:
    """`text` unless it carries risk vocabulary (CSM task titles may), else the neutral fallback."""
    return fallback if not text or RISK_WORDS.search(text) else text


def body_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, headers) -> None:
    given = headers.get("X-Body-Signature")
    if given is None:
        raise WebhookRejected("no X-Body-Signature header")
    if not same_signature(body_signature(secret, body), given):
        raise WebhookRejected("X-Body-Signature does not match")


@dataclass(frozen=True)
class CanvasRequest:
    workspace_id: str
    admin: str
    contact_email: str | None
    company_ids: list[str]
    contact_id: str | None
    component_id: str | None = None
    input_values: dict = field(default_factory=dict)


def parse(body: bytes) -> CanvasRequest:
    """The workspace, teammate, contact (and its companies) and, on submit, the clicked component and inputs."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookMalformed(f"body is not JSON: {error}") from error
    if not isinstance(payload, dict) or not payload.get("workspace_id"):
        raise WebhookMalformed("expected a Canvas Kit request with workspace_id")
    contact = payload.get("contact") if isinstance(payload.get("contact"), dict) else {}
    companies = contact.get("companies") if isinstance(contact.get("companies"), dict) else {}
    listed = companies.get("data") or []
    admin = payload.get("admin") if isinstance(payload.get("admin"), dict) else {}
    inputs = payload.get("input_values")
    return CanvasRequest(
        workspace_id=str(payload["workspace_id"]),
        admin=str(admin.get("email") or admin.get("id") or "intercom teammate")[:255],
        contact_email=contact.get("email") or None,
        company_ids=[str(c["id"]) for c in listed if isinstance(c, dict) and c.get("id")],
        contact_id=str(contact["id"]) if contact.get("id") else None,
        component_id=str(payload["component_id"]) if payload.get("component_id") else None,
        input_values=inputs if isinstance(inputs, dict) else {},
    )


def action_for(request: CanvasRequest, programs: tuple[str, ...]) -> dict | None:
    """The card action a clicked button stands for (button ids: log-<kind>, snooze-<band>, enroll-<program>, …)."""
    component = request.component_id or ""
    note = str(request.input_values.get("note") or "").strip()
    kind, _, value = component.partition(":")
    if kind == "log":
        return {"type": "touchpoint", "kind": value, "note": note or f"{value.capitalize()} from the inbox"}
    if kind == "snooze":
        band = str(request.input_values.get("band") or value)
        return {"type": "override", "band": band, "reason": note or "Snoozed from the inbox", "days": SNOOZE_DAYS}
    if kind == "enroll":
        return {"type": "enroll", "program": str(request.input_values.get("program") or value), "note": note or None}
    if kind == "unsnooze":
        return {"type": "clear_override"}
    if component == "refresh":
        return None
    raise WebhookMalformed(f"unknown component {component[:60]!r}")


def _text(text: str, style: str = "paragraph") -> dict:
    return {"type": "text", "text": text, "style": style}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)} %"


def _value(value: Any, suffix: str = "") -> str:
    return "—" if value is None else f"{value}{suffix}"


def _outlook(churn: dict) -> str:
    """The one risk scale, turned around: the chance the account stays over the horizon, and what estimated it."""
    p = churn["risk"] if churn.get("risk") is not None else churn["probability"]
    if p is None:
        return "—"
    horizon = f" over {churn['horizon_days']} days" if churn.get("horizon_days") else ""
    source = {"model": " (model)", "health": " (from health)"}.get(churn.get("source") or "", "")
    return f"{_percent(1 - p)}{horizon}{source}"


def _heads_up(churn: dict) -> str:
    """The early-warning flag in the inbox's neutral words."""
    if churn.get("early_warning") is None:
        return "—"
    days = churn.get("warning_horizon_days")
    return f"Plan a check-in (next {days} days)" if churn["early_warning"] else "None"


def _onboarding(onboarding: dict) -> str:
    """Day, phase and milestones met; the status only outside the control group."""
    if not onboarding["tracked"]:
        return "—"
    text = (f"Day {onboarding['day']} · {PHASE_WORDS.get(onboarding['phase'], '—')} · "
            f"{onboarding['met']} of {onboarding['total']} milestones")  # fmt: skip
    if onboarding["status"] and not onboarding["control"]:
        text += f" · {ONBOARDING_WORDS[onboarding['status']]}"
    return text


def _programs(card: dict) -> list[tuple[str, str]]:
    """The programs the account is in, as list items: control-group enrollments are left off (see above)."""
    out = []
    for e in card["program"]["enrollments"]:
        if e["control"]:
            continue
        title = neutral(e["title"], "Customer program")
        if e["status"] != "active":
            done = "Graduated" if e["exit_reason"] == "graduated" else "Finished"
            out.append((title, f"{done} {(e['ended_at'] or '')[:10]}".strip()))
            continue
        parts = []
        if e["step"]:
            parts.append(f"last: {e['step']['label']} ({e['step']['channel_label']}, {e['step']['at'][:10]})")
        if e["next_due_at"]:
            parts.append(f"next {e['next_due_at'][:10]}")
        out.append((title, " · ".join(parts) or "started"))
    return out


def _milestones(onboarding: dict) -> list[tuple[str, str]]:
    """Milestones overdue, then the next two pending (none for a control account)."""
    if onboarding["control"]:
        return []
    missed = [(m["name"], f"due by day {m['due_day']}") for m in onboarding["milestones"] if m["state"] == "missed"]
    pending = [(m["name"], f"by day {m['due_day']}") for m in onboarding["milestones"] if m["state"] == "pending"]
    return missed + pending[:2]


def _table(card: dict) -> dict:
    health, churn, expansion, onboarding = card["health"], card["churn"], card["expansion"], card["onboarding"]
    potential = expansion["potential"]
    amount = "—" if potential is None else f"{potential:,.0f}"
    rows = [
        ("Health score", _value(health["score"])),
        ("7-day change", _value(health["trend_7d"])),
        ("Renewal outlook", _outlook(churn)),
        ("Early heads-up", _heads_up(churn)),
        ("Review within", _value(churn["days_to_churn"] and int(churn["days_to_churn"]), " days")),
        ("Growth", f"{expansion['type']} ({amount})" if expansion["type"] else "—"),
        ("Onboarding", _onboarding(onboarding)),
        ("Renewal date", card["account"]["renewal_date"] or "—"),
    ]
    return {"type": "data-table", "items": [{"type": "field-value", "field": f, "value": v} for f, v in rows]}


def _items(prefix: str, entries: list[tuple[str, str]]) -> dict:
    return {"type": "list", "items": [
        {"type": "item", "id": f"{prefix}-{i}", "title": title[:120], "subtitle": subtitle[:120]}
        for i, (title, subtitle) in enumerate(entries)
    ]}  # fmt: skip


def _program_words(key: str) -> str:
    """A program's key in words: not its title, which may name internal risk tiers the inbox never shows."""
    return key.replace("_", " ").capitalize()


def _buttons(card: dict) -> list[dict]:
    submit = {"type": "submit"}
    programs = next((a["programs"] for a in card["actions"] if a["type"] == "enroll"), [])
    bands = next((a["bands"] for a in card["actions"] if a["type"] == "override"), [])
    components = [
        {"type": "input", "id": "note", "label": "Note or reason", "placeholder": "What happened, or why"},
        {"type": "button", "id": "log:call", "label": "Log call", "action": submit, "style": "secondary"},
        {"type": "button", "id": "log:email", "label": "Log email", "action": submit, "style": "secondary"},
        {"type": "button", "id": "log:meeting", "label": "Log meeting", "action": submit, "style": "secondary"},
        {"type": "dropdown", "id": "band", "label": "Hold status at",
         "options": [{"type": "option", "id": b, "text": BAND_WORDS.get(b, b)} for b in bands]},
        {"type": "button", "id": "snooze:", "label": f"Hold for {SNOOZE_DAYS} days", "action": submit},
    ]  # fmt: skip
    if card["health"]["override"]:
        components.append({"type": "button", "id": "unsnooze:", "label": "End hold", "action": submit,
                           "style": "link"})  # fmt: skip
    if programs:
        components += [
            {"type": "dropdown", "id": "program", "label": "Program",
             "options": [{"type": "option", "id": p, "text": _program_words(p)} for p in programs]},
            {"type": "button", "id": "enroll:", "label": "Request enrollment", "action": submit},
        ]  # fmt: skip
    return components


def _notice(notice: str, action: dict | None, health: dict) -> str:
    """The confirmation in the inbox's words: the engine's names the band as the CRM cards label it, so a hold is
    said again with this canvas's band words; any other confirmation stays unless it carries risk vocabulary."""
    held = health["override"]
    if action is not None and action["type"] == "override" and held:
        return f"Held at {BAND_WORDS.get(held['band'], held['band'])} until {held['expires_at'][:10]}"
    return neutral(notice, "Done")


def render(card: dict, notice: str | None = None, action: dict | None = None) -> dict:
    """The initialize/submit response for one account's card (after `action`, whose confirmation is `notice`);
    `stored_data` keeps the account for the next submit."""
    health = card["health"]
    band = BAND_WORDS.get(health["band"] or "", "Not scored yet")
    components: list[dict] = [_text(f"**{card['account']['name']}** · {band}", "header")]
    if notice:
        components.append(_text(_notice(notice, action, health), "muted"))
    if health["override"]:
        o = health["override"]
        reason = neutral(o["reason"], "reason noted in the CRM")
        held = f"Held at {BAND_WORDS.get(o['band'], o['band'])} by {o['author']} until {o['expires_at'][:10]}"
        components.append(_text(f"{held}: {reason}", "muted"))
    components.append(_table(card))
    if card["drivers"]:
        why = [(neutral(d, "Usage pattern changed"), "") for d in card["drivers"]]
        components += [_text("What to look at", "header"), _items("why", why)]
    if card["recommended_action"]:
        components.append(_text(f"Next step: {neutral(card['recommended_action'], 'Review the account')}"))
    if card["tasks"]:
        tasks = [(neutral(t["title"], f"{(t['program'] or 'Account').capitalize()} follow-up"),
                  f"due {(t['due'] or '—')[:10]}") for t in card["tasks"]]  # fmt: skip
        components += [_text("Open tasks", "header"), _items("task", tasks)]
    programs = _programs(card)
    if programs:
        components += [_text("Programs", "header"), _items("enrolled", programs)]
    milestones = _milestones(card["onboarding"])
    if milestones:
        components += [_text("Onboarding milestones still open", "header"), _items("milestone", milestones)]
    requests = card["program"]["enrollment_requests"]
    if requests:
        components += [
            _text("Program requests", "header"),
            _items("program", [(_program_words(r["program"]), r["status"]) for r in requests]),
        ]
    components.append({"type": "divider"})
    components += _buttons(card)
    return {"canvas": {"content": {"components": components}, "stored_data": {"account_id": card["account"]["id"]}}}


def message(text: str) -> dict:
    """A canvas with one line, for a contact we cannot place on an account."""
    return {"canvas": {"content": {"components": [_text(text)]}}}
