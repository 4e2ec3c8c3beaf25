"""Push mappings checked against what can be pushed, and every mappable score field reaching the CRM."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sqlalchemy import select

from app.store.models import ExternalId, OutboxRow
from app.sync.versions import active_mapping, save_mapping_version
from app.writeback.jobs import enqueue_deliveries, pusher_for
from app.writeback.outbox import PUSHED_FIELDS, _field_values
from app.writeback.translate import to_crm_fields
from connectors.hubspot.fields import install_fields
from connectors.mapping import MappingError, parse_mapping
from connectors.mapping.schema import PUSH_SCHEMA
from connectors.registry import vendor_names
from tests.writeback_support import AS_OF, rescore_book

OBJECTS = {"hubspot": "companies", "intercom": "companies", "salesforce": "Account"}


def _target(vendor: str, name: str) -> str:
    return f"CSE_{name.title().replace('_', '')}__c" if vendor == "salesforce" else f"cse_{name}"


def full_mapping(vendor: str) -> str:
    """A push mapping naming every canonical score field (types left to their defaults)."""
    lines = [f"vendor: {vendor}", f"object: {OBJECTS[vendor]}", "direction: push", "fields:"]
    lines += [f"  {name}: {{to: {_target(vendor, name)}}}" for name in PUSH_SCHEMA]
    return "\n".join(lines) + "\n"


def _same(got, value, kind: str) -> bool:
    """The CRM's value equals what we wrote, as the CRM normalizes it (numbers as text, times in UTC)."""
    if kind in ("number", "integer"):
        return float(got) == pytest.approx(float(value))
    if kind == "datetime":
        return pd.Timestamp(got) == pd.Timestamp(value)
    return str(got) == str(value)


def test_every_pushable_field_is_planned() -> None:
    assert set(PUSHED_FIELDS) == set(PUSH_SCHEMA)
    for name in ("recommended_action", "revenue_potential", "days_to_churn", "risk", "risk_source", "early_warning"):
        assert name in PUSH_SCHEMA


@pytest.mark.parametrize("vendor", vendor_names())
def test_every_field_can_be_mapped_and_translates_for_each_vendor(vendor: str) -> None:
    mapping = parse_mapping(full_mapping(vendor), f"{vendor}/push.yaml", expected_vendor=vendor)
    assert set(mapping.fields) == set(PUSH_SCHEMA)
    scored = pd.DataFrame(
        {"health": [55.0], "band": ["critical"], "trend_7d": [-3.0], "trend_30d": [-8.0], "coverage": [0.9],
         **{f"f_{f}": [50.0] for f in ("adoption", "engagement", "support", "outcomes", "relationship", "expansion")},
         "driver_1": ["adoption"], "driver_2": ["support"], "driver_3": [None],
         "recommended_action": ["Run a feature-adoption session"], "churn_probability": [0.42],
         "churn_horizon_days": [30], "days_to_churn": [75.0], "risk_drivers": [None], "expansion_score": [20.0],
         "expansion_type": ["seat"], "revenue_potential": [1234.5], "model_version": ["churn-store-1"],
         "risk": [42.0], "risk_source": ["model"], "early_warning": [True], "warning_horizon_days": [90]},
        index=pd.Index([7], name="account_id"),
    )  # fmt: skip
    values = _field_values(scored, AS_OF).iloc[0].to_dict()
    crm = to_crm_fields(mapping, values)
    assert set(crm) == {_target(vendor, name) for name in PUSH_SCHEMA}
    missing = [name for name in PUSH_SCHEMA if crm[_target(vendor, name)] in (None, "")]
    assert missing == [], "every field with a value in the score is written"
    assert crm[_target(vendor, "risk_source")] == "model"
    assert crm[_target(vendor, "early_warning")] is True and crm[_target(vendor, "warning_horizon_days")] == 90
    assert crm[_target(vendor, "revenue_potential")] == 1234.5
    assert crm[_target(vendor, "drivers")] == "Product adoption, Support health"


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("  health: {to: cse_health, type: date}", "fields.health.type", "type date cannot hold health (a number)"),
        ("  as_of: {to: cse_day, type: number}", "fields.as_of.type", "type number cannot hold as_of (a date)"),
        ("  risk_source: {to: cse_src, type: boolean}", "fields.risk_source.type", "cannot hold risk_source"),
        ("  early_warning: {to: cse_flag, type: date}", "fields.early_warning.type", "cannot hold early_warning"),
        ("  health_score: {to: cse_health}", "fields.health_score", "unknown score field"),
    ],
)
def test_a_wrong_type_or_unknown_field_is_refused_with_file_line_and_field(line: str, field: str, message: str):
    text = "vendor: hubspot\nobject: companies\ndirection: push\nfields:\n  band: {to: cse_band}\n" + line + "\n"
    with pytest.raises(MappingError) as error:
        parse_mapping(text, "mappings/hubspot/push_companies.yaml", expected_vendor="hubspot")
    (problem,) = error.value.problems
    assert (problem.file, problem.line, problem.field) == ("mappings/hubspot/push_companies.yaml", 6, field)
    assert message in problem.message


def test_every_mappable_field_reaches_the_hubspot_sandbox(hubspot_linked):
    store, state, settings = hubspot_linked
    with store.begin() as conn:
        save_mapping_version(conn, "hubspot", "push_companies", full_mapping("hubspot"), "test")
        mapping = active_mapping(conn, "hubspot", "push_companies")
    install_fields(pusher_for(settings, "hubspot").client, mapping)
    rescore_book(store)
    enqueue_deliveries(settings, store, vendors=("hubspot",))
    with store.connect() as conn:
        rows = conn.execute(
            select(OutboxRow.account_id, OutboxRow.payload, OutboxRow.status).where(
                OutboxRow.vendor == "hubspot", OutboxRow.operation == "update_fields"
            )
        ).all()
        links = dict(conn.execute(select(ExternalId.account_id, ExternalId.external_id).where(
            ExternalId.vendor == "hubspot", ExternalId.object == "companies")).all())  # fmt: skip
    assert rows and {r.status for r in rows} == {"done"}
    reached: set[str] = set()
    valued: set[str] = set()
    for account_id, payload, _ in rows:
        properties = state.get("companies", links[account_id]).properties
        expected = to_crm_fields(mapping, payload["fields"])
        for name, spec in mapping.fields.items():
            value = expected[spec.to]
            if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
                continue
            valued.add(name)
            assert _same(properties[spec.to], value, spec.type), (name, properties[spec.to], value)
            reached.add(name)
    assert {p for r in rows for p in r.payload["fields"]} == set(PUSH_SCHEMA), "every field is planned"
    assert reached == valued, "every field with a value reached the CRM"
    # Without a trained model (and, on a first scoring, without trends) those fields have no value yet; the model
    # fields reach the CRM in test_every_field_can_be_mapped_and_translates_for_each_vendor's translation.
    assert set(PUSH_SCHEMA) - reached <= {
        "churn_probability", "churn_horizon_days", "days_to_churn", "model_version", "trend_7d", "trend_30d",
        "early_warning", "warning_horizon_days",
    }  # fmt: skip
