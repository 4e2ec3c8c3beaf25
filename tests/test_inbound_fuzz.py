"""Every route the web app has, fed random methods, paths, headers, query strings and bodies: never a 500 (every
refusal is a 4xx with a reason), and refused requests never leave their body in the store.

The routes come from app.url_map, so a route added later is fuzzed without touching this file.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from app.store.db import make_engine, upgrade_schema
from app.store.models import WebhookEvent
from app.web import create_app
from tests.test_inbound_hardening import outbound_messages
from tests.test_webhooks import (
    OUTBOUND,
    SETTINGS,
    flow_headers,
    hubspot_body,
    hubspot_v3_headers,
    intercom_body,
    intercom_headers,
)
from tests.web_support import sign_in

APP = create_app(replace(SETTINGS, webhook_max_bytes=8192, webhook_refusals_per_minute=0),
                 engine=make_engine("sqlite://"))  # only its url_map is read here  # fmt: skip
RULES = sorted(rule.rule for rule in APP.url_map.iter_rules())
HEADER_NAMES = ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "X-HubSpot-Signature",
                "X-HubSpot-Signature-Version", "X-Hub-Signature", "X-CSE-Timestamp", "X-CSE-Signature",
                "Authorization", "Accept", "Content-Type", "X-Forwarded-Proto", "X-Forwarded-For"]  # fmt: skip
printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
anything = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
VALID = {
    "/webhooks/hubspot": hubspot_body(1),
    "/webhooks/intercom": intercom_body(),
    "/webhooks/salesforce/flow": json.dumps({"orgId": SETTINGS.salesforce_org_id, "events": []}).encode(),
    "/webhooks/salesforce/<token>": outbound_messages(2),
}


def bodies(rule: str):
    valid = VALID.get(rule, b"{}")
    return st.one_of(
        st.binary(max_size=600),
        st.just(valid),
        st.builds(lambda i: valid[:i], st.integers(0, len(valid))),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(95, 110).map(outbound_messages),
    )


def signed(rule: str, body: bytes) -> dict:
    """Real signatures over the random body, so the fuzzing reaches the parsers and not only the verifiers."""
    sign = {"/webhooks/hubspot": hubspot_v3_headers, "/webhooks/intercom": intercom_headers,
            "/webhooks/salesforce/flow": flow_headers}.get(rule)  # fmt: skip
    return sign(body) if sign else {}


def concrete(rule: str, filler: str) -> str:
    """The rule with each <converter:argument> filled; the Outbound Message token half the time right."""
    if rule == "/webhooks/salesforce/<token>" and filler.startswith("a"):
        return OUTBOUND
    value = quote(filler.replace("/", ""), safe="") or "x"  # a path segment, whatever the characters
    return re.sub(r"<[^>]+>", lambda _: value, rule)


@pytest.fixture
def sqlite_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'cse.db'}")
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("rule", RULES)
def test_no_request_to_any_route_is_a_500_and_refusals_keep_no_body(sqlite_store, rule):
    app = create_app(replace(SETTINGS, webhook_max_bytes=8192, webhook_refusals_per_minute=0), engine=sqlite_store)
    client, admin_client = app.test_client(), app.test_client()
    sign_in(admin_client, sqlite_store)
    table = WebhookEvent.__table__

    @hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
        filler=printable,
        query=st.dictionaries(st.sampled_from(["limit", "status", "vendor", "format", "x"]), anything, max_size=3),
        body=bodies(rule),
        sign=st.booleans(),
        admin=st.booleans(),
        names=st.lists(st.sampled_from(HEADER_NAMES), max_size=4, unique=True),
        values=st.lists(printable, min_size=4, max_size=4),
    )
    def run(method, filler, query, body, sign, admin, names, values):
        headers = dict(zip(names, values, strict=False))
        headers.update(signed(rule, body) if sign else {})
        sender = admin_client if admin else client
        response = sender.open(concrete(rule, filler), method=method, query_string=query, data=body, headers=headers)
        assert response.status_code < 500, (response.status_code, response.data[:300])
        if response.status_code >= 400:
            assert response.data or method == "HEAD", "a refusal says why"
        with sqlite_store.connect() as conn:
            kept = conn.execute(select(table.c.id).where(table.c.status.in_(("rejected", "malformed", "ignored")),
                                                        table.c.payload.is_not(None))).all()  # fmt: skip
        assert kept == [], "a refused request left its body in the store"

    run()
