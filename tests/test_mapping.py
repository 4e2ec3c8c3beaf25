"""Mappings: validation with file, line and field; applying them to raw records; versions in the store; the CLI."""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app import sources
from app.cli import sync as cli_sync
from app.store.load import ACCOUNT_FIELDS, CONTACT_FIELDS
from app.sync import (
    active_mapping,
    active_mappings,
    mapping_history,
    mapping_names,
    mapping_versions,
    rollback_mapping,
    save_mapping_version,
)
from connectors.mapping import (
    ENTITY_SCHEMAS,
    MappingError,
    apply_mapping,
    get_path,
    load_mapping,
    parse_mapping,
    validate_against_fields,
    validate_path,
)
from tests.test_sync import FakeSource, hubspot_book

ACCOUNTS = textwrap.dedent(
    """\
    vendor: hubspot
    object: companies
    direction: pull
    entity: account
    id: id
    updated: updated
    deleted: archived
    fields:
      name: {from: name, type: string, required: true}
      domain: {from: website, type: domain}
      arr: {from: mrr, type: number, scale: 12, default: 0}
      seats_purchased: {from: seats, type: integer}
      customer_since: {from: since, type: date}
      segment:
        from: tier
        type: enum
        values: {SMB: smb, Mid-Market: mid_market, Enterprise: enterprise}
      plan: {from: billing.plan.name, type: string}
      owner: {from: owners.0.email, type: string}
      status: {from: active, type: enum, values: {yes: active, no: churned}, default: active}
      churned_at: {from: churn_time, type: datetime}
    """
)
EVENTS = textwrap.dedent(
    """\
    vendor: intercom
    object: conversations
    direction: pull
    entity: event
    id: id
    updated: updated_at
    account: company.id
    account_object: companies
    when:
      state: {in: [closed, resolved]}
    fields:
      occurred_at: {from: closed_at, type: datetime}
      kind: {value: ticket_closed}
      contact_email: {from: contact.email, type: email}
      value: {from: hours, type: number}
      count: {from: n, type: integer, default: 1}
    """
)
CONTACTS = textwrap.dedent(
    """\
    vendor: salesforce
    object: Contact
    direction: pull
    entity: contact
    id: Id
    updated: SystemModstamp
    deleted: IsDeleted
    account: AccountId
    account_object: Account
    fields:
      email: {from: Email, type: email}
      is_champion: {from: Champion__c, type: boolean, default: false}
      last_seen: {from: LastActivityDate, type: datetime}
    """
)
PUSH = textwrap.dedent(
    """\
    vendor: hubspot
    object: companies
    direction: push
    fields:
      health: {to: cse_health_score, type: number}
      band: {to: cse_health_band, type: enum, values: {healthy: Healthy, at_risk: At risk}}
    """
)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# ---- the schema ---------------------------------------------------------------------------------------------------


def test_the_schema_matches_what_the_store_loads():
    assert set(ENTITY_SCHEMAS["account"]) == set(ACCOUNT_FIELDS)
    assert set(ENTITY_SCHEMAS["contact"]) == set(CONTACT_FIELDS)
    assert set(ENTITY_SCHEMAS["event"]) == {"occurred_at", "kind", "feature", "count", "value", "contact_email"}


# ---- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [ACCOUNTS, EVENTS, CONTACTS, PUSH])
def test_valid_mappings_are_accepted(text):
    mapping = parse_mapping(text, "ok.yaml")
    assert mapping.fields and mapping.name == "ok"


INVALID = [
    # (replace this, with this, the line holding this marker, field, message fragment)
    (
        "  plan: {from",
        "  plann: {from",
        "plann:",
        "fields.plann",
        "unknown canonical field for account; did you mean 'plan'",
    ),  # noqa: E501
    (
        "seats, type: integer",
        "seats, type: integr",
        "seats_purchased",
        "fields.seats_purchased.type",
        "unknown type 'integr'",
    ),  # noqa: E501
    (
        "type: enum\n    values: {SMB: smb, Mid-Market: mid_market, Enterprise: enterprise}\n",
        "type: enum\n",
        "segment:",
        "fields.segment.values",
        "an enum needs 'values'",
    ),  # noqa: E501
    ("name: {from: name,", "name: {from: name, value: x,", "name: {", "fields.name", "exactly one of 'from'"),
    (
        "domain: {from: website, type: domain}",
        "domain: {type: domain}",
        "domain:",
        "fields.domain",
        "exactly one of 'from'",
    ),  # noqa: E501
    (
        "scale: 12, default: 0",
        "scale: 12, default: plenty",
        "arr:",
        "fields.arr.default",
        "bad default for type number",
    ),  # noqa: E501
    ("vendor: hubspot\n", "", "object:", "vendor", "missing required key 'vendor'"),
    ("vendor: hubspot", "vendor: hubspt", "vendor:", "vendor", "unknown vendor 'hubspt'; did you mean 'hubspot'"),
    ("direction: pull", "direction: both", "direction:", "direction", "must be pull or push"),
    (
        "customer_since: {from: since, type: date}",
        "customer_since: {from: since, type: number}",
        "customer_since",
        "fields.customer_since.type",
        "cannot feed customer_since",
    ),  # noqa: E501
    ("name, type: string,", "name, type: string, scale: 2,", "name: {", "fields.name.scale", "only number and integer"),
    (
        "Enterprise: enterprise}",
        "Enterprise: huge}",
        "values:",
        "fields.segment.values.Enterprise",
        "'huge' is not one of smb",
    ),  # noqa: E501
    ("id: id\n", "id: id\nid: uid\n", "id: uid", "id", "duplicate key"),
    (
        "fields:\n  name: {from: name, type: string, required: true}\n",
        "fields:\n",
        "fields:",
        "fields.name",
        "must map 'name'",
    ),  # noqa: E501
    ("entity: account", "entity: acount", "entity:", "entity", "unknown entity 'acount'"),
    ("deleted: archived", "deleted: archived\nfoo: bar", "foo:", "foo", "unknown key"),
    (
        "{from: owners.0.email, type: string}",
        "{from: owners.0.email, type: string, requird: true}",
        "owner:",
        "fields.owner.requird",
        "unknown key",
    ),  # noqa: E501
    (
        "churn_time, type: datetime}",
        "churn_time, type: datetime, default: someday}",
        "churned_at",
        "fields.churned_at.default",
        "bad default",
    ),  # noqa: E501
]


@pytest.mark.parametrize(("old", "new", "marker", "field", "message"), INVALID)
def test_invalid_mappings_are_refused_with_file_line_and_field(old, new, marker, field, message):
    assert old in ACCOUNTS
    text = ACCOUNTS.replace(old, new)
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "mappings/hubspot/companies.yaml")
    problems = [p for p in caught.value.problems if p.field == field]
    assert problems, str(caught.value)
    problem = problems[0]
    assert message in problem.message
    assert problem.file == "mappings/hubspot/companies.yaml"
    assert problem.line == line_of(text, marker)
    assert str(problem).startswith(f"mappings/hubspot/companies.yaml:{problem.line}: {field}: ")


def test_event_contact_and_push_specific_checks():
    bad_kind = EVENTS.replace("value: ticket_closed", "value: ticket_shut")
    with pytest.raises(MappingError, match=r"x.yaml:13: fields.kind.value: bad constant .*'ticket_shut' is not one"):
        parse_mapping(bad_kind, "x.yaml")
    no_account = CONTACTS.replace("account: AccountId\naccount_object: Account\n", "")
    with pytest.raises(MappingError, match=r"account: a contact mapping needs 'account'"):
        parse_mapping(no_account, "x.yaml")
    bad_when = EVENTS.replace("{in: [closed, resolved]}", "{among: [closed]}")
    with pytest.raises(MappingError, match=r"x.yaml:10: when.state: must be exactly one of"):
        parse_mapping(bad_when, "x.yaml")
    plain_email = CONTACTS.replace("{from: Email, type: email}", "{from: Email, type: string}")
    with pytest.raises(MappingError, match=r"fields.email.type: type string cannot feed email"):
        parse_mapping(plain_email, "x.yaml")
    with pytest.raises(MappingError, match=r"x.yaml:5: fields.health_score: unknown score field"):
        parse_mapping(PUSH.replace("health:", "health_score:"), "x.yaml")
    with pytest.raises(MappingError, match=r"x.yaml:3: entity: only pull mappings"):
        parse_mapping(PUSH.replace("object: companies", "object: companies\nentity: account"), "x.yaml")


def test_yaml_errors_and_every_problem_at_once():
    with pytest.raises(MappingError) as caught:
        parse_mapping("vendor: hubspot\nfields: {name: {from: x}\n", "broken.yaml")
    assert caught.value.problems[0].field == "yaml" and caught.value.problems[0].line is not None
    text = ACCOUNTS.replace("vendor: hubspot", "vendor: nope").replace("type: integer", "type: int")
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "two.yaml")
    assert {p.field for p in caught.value.problems} == {"vendor", "fields.seats_purchased.type"}


def test_validate_path_reports_files_and_folder_vendor(tmp_path):
    (tmp_path / "hubspot").mkdir()
    (tmp_path / "hubspot" / "companies.yaml").write_text(ACCOUNTS)
    (tmp_path / "hubspot" / "wrong.yaml").write_text(CONTACTS)  # says salesforce, lives under hubspot/
    (tmp_path / "intercom").mkdir()
    (tmp_path / "intercom" / "conversations.yml").write_text(EVENTS)
    mappings, problems = validate_path(tmp_path)
    assert sorted(m.name for m in mappings) == ["companies", "conversations"]
    assert [str(p) for p in problems] == [
        f"{tmp_path}/hubspot/wrong.yaml:1: vendor: file is under mappings/hubspot/ but says vendor 'salesforce'"
    ]
    assert load_mapping(tmp_path / "hubspot" / "companies.yaml").vendor == "hubspot"


def test_validate_against_the_crms_field_list():
    mapping = parse_mapping(ACCOUNTS, "companies.yaml")
    available = {"id", "updated", "archived", "name", "website", "mrr", "seats", "since", "tier", "billing", "owners",
                 "active", "churn_time"}  # fmt: skip
    assert validate_against_fields(mapping, available) == []
    problems = validate_against_fields(mapping, available - {"seats", "billing"} | {"seat"})
    assert [(p.field, p.line) for p in problems] == [
        ("fields.seats_purchased.from", line_of(ACCOUNTS, "seats_purchased")),
        ("fields.plan.from", line_of(ACCOUNTS, "plan:")),
    ]
    assert "no field 'seats'; did you mean 'seat'?" in problems[0].message


# ---- applying -----------------------------------------------------------------------------------------------------


def test_apply_converts_types_transforms_and_paths():
    mapping = parse_mapping(ACCOUNTS, "companies.yaml")
    records = [
        {"id": 1, "updated": "2026-01-01T00:00:00Z", "name": " Acme ", "website": "HTTPS://www.Acme.COM:443/about",
         "mrr": "100.5", "seats": "25.0", "since": "2024-03-01T23:30:00-02:00", "tier": "mid-market",
         "billing": {"plan": {"name": "pro"}}, "owners": [{"email": "csm@us.example"}], "active": "Yes",
         "churn_time": 1767225600000},
        {"id": "2", "updated": 1767225600, "name": "Beta", "website": None, "mrr": None, "seats": 3, "since": None,
         "tier": "SMB", "billing": {}, "owners": [], "active": None, "churn_time": "1767225600"},
    ]  # fmt: skip
    batch = apply_mapping(mapping, records)
    assert batch.quarantined == []
    acme, beta = batch.frame.to_dict("records")
    assert acme == {
        "record_id": "1", "name": "Acme", "domain": "acme.com", "arr": 1206.0, "seats_purchased": 25,
        "customer_since": date(2024, 3, 2), "segment": "mid_market", "plan": "pro", "owner": "csm@us.example",
        "status": "active", "churned_at": date(2026, 1, 1),
    }  # fmt: skip
    assert (beta["domain"], beta["arr"], beta["seats_purchased"], beta["plan"], beta["owner"]) == (
        None,
        0,
        3,
        None,
        None,
    )
    assert (beta["status"], beta["churned_at"]) == ("active", date(2026, 1, 1))


def test_malformed_records_are_quarantined_and_the_good_ones_kept():
    mapping = parse_mapping(ACCOUNTS, "companies.yaml")
    good = {"id": "1", "name": "Acme", "mrr": 10, "tier": "SMB"}
    records = [
        good,
        {"id": "2", "name": "Wrong types", "mrr": "ten", "seats": 2.5, "active": "maybe"},
        {"id": "3", "name": None},
        {"id": "4", "name": "Garbage date", "since": "the day after tomorrow"},
        {"id": "5", "name": "Bad domain", "website": "not a domain"},
        {"name": "No id"},
        {"id": "6", "name": "Bad enum", "tier": "Gigantic"},
        {"id": "7", "name": {"nested": "object"}},
        "not even a dict",
        {"id": "8", "archived": True},  # a tombstone is not validated
        {"id": "9", "name": "Old", "mrr": 1},
        {"id": "9", "name": "New", "mrr": 2},  # the later copy of a record wins
    ]
    batch = apply_mapping(mapping, records)
    assert batch.frame["record_id"].tolist() == ["1", "9"]
    assert batch.frame["name"].tolist() == ["Acme", "New"]
    reasons = {q.record_id: q.reason for q in batch.quarantined}
    # Every bad field is named; `status` is not, as its enum has a default that catches unmapped values.
    assert reasons["2"] == "arr: expected a number, got 'ten'; seats_purchased: expected a whole number, got 2.5"
    assert reasons["3"] == "name: required but missing (source field 'name')"
    assert reasons["4"] == "customer_since: expected a date/time, got 'the day after tomorrow'"
    assert reasons["5"] == "domain: expected a domain, got 'not a domain'"
    assert reasons[None].startswith("missing record id") or reasons[None].startswith("not a record")
    assert len([q for q in batch.quarantined if q.record_id is None]) == 2
    assert reasons["6"].startswith("segment: 'Gigantic' is not one of the mapped values")
    assert reasons["7"].startswith("name: expected text, got dict")
    assert batch.deleted["record_id"].tolist() == ["8"]


def test_events_when_conditions_account_refs_and_tombstones():
    mapping = parse_mapping(EVENTS, "conversations.yaml")
    records = [
        {"id": "c1", "state": "closed", "closed_at": "2026-02-01T10:00:00+01:00", "company": {"id": 42},
         "contact": {"email": "Ann@Acme.com"}, "hours": "3.5"},
        {"id": "c2", "state": "open", "closed_at": None, "company": {"id": 42}},
        {"id": "c3", "state": "resolved", "closed_at": "2026-02-02", "company": None, "n": "2"},
    ]  # fmt: skip
    batch = apply_mapping(mapping, records)
    rows = batch.frame.to_dict("records")
    assert rows[0] == {
        "record_id": "c1", "account_ref": "42", "occurred_at": datetime(2026, 2, 1, 9), "kind": "ticket_closed",
        "contact_email": "ann@acme.com", "value": 3.5, "count": 1,
    }  # fmt: skip
    assert (rows[1]["account_ref"], rows[1]["count"], rows[1]["occurred_at"]) == (None, 2, datetime(2026, 2, 2))
    assert batch.skipped_ids == ["c2"]

    contacts = parse_mapping(CONTACTS, "Contact.yaml")
    batch = apply_mapping(
        contacts,
        [
            {"Id": "003A", "Email": "X@Y.io", "IsDeleted": True, "AccountId": "001A"},
            {"Id": "003B", "Email": "b@y.io", "IsDeleted": "false", "Champion__c": "TRUE", "AccountId": "001A"},
        ],
    )
    assert batch.deleted.to_dict("records") == [{"record_id": "003A", "account_ref": "001A", "email": "x@y.io"}]
    assert batch.frame.to_dict("records") == [
        {"record_id": "003B", "account_ref": "001A", "email": "b@y.io", "is_champion": True, "last_seen": None}
    ]


def test_enum_keys_that_yaml_reads_as_booleans_still_match_text():
    text = ACCOUNTS  # `yes:` / `no:` are booleans to YAML; vendors send "Yes", "no", True...
    mapping = parse_mapping(text.replace("default: active}", "}"), "companies.yaml")
    batch = apply_mapping(
        mapping,
        [{"id": str(i), "name": "n", "active": v} for i, v in enumerate(["Yes", "no", True, False, "YES", "perhaps"])],
    )
    assert batch.frame["status"].tolist() == ["active", "churned", "active", "churned", "active"]
    assert batch.quarantined[0].reason.startswith("status: 'perhaps' is not one of the mapped values (yes, no)")


def test_get_path_reads_flat_dotted_keys_nested_objects_and_lists():
    record = {"a.b": 1, "a": {"b": 2, "c": [{"d": 3}]}}
    assert (get_path(record, "a.b"), get_path(record, "a.c.0.d"), get_path(record, "a.c.5.d")) == (1, 3, None)
    assert get_path(record, "a.b.c") is None


# ---- versions in the store ------------------------------------------------------------------------------------------


@pytest.fixture
def mappings_dir(tmp_path) -> Path:
    folder = tmp_path / "mappings"
    (folder / "hubspot").mkdir(parents=True)
    (folder / "hubspot" / "companies.yaml").write_text(ACCOUNTS)
    return folder


def test_versions_are_stored_with_author_and_time_and_roll_back(store, mappings_dir):
    with store.begin() as conn:
        assert active_mapping(conn, "hubspot", "companies", mappings_dir).fields["arr"].scale == 12.0
        edited = ACCOUNTS.replace("scale: 12", "scale: 1")
        first = save_mapping_version(conn, "hubspot", "companies", edited, author="ann@example.com")
        assert (first.version, first.author, first.origin) == (1, "ann@example.com", "stored")
        assert isinstance(first.created_at, datetime)
        assert active_mapping(conn, "hubspot", "companies", mappings_dir).fields["arr"].scale == 1.0

        with pytest.raises(MappingError, match=r"<new version of hubspot/companies>:\d+: fields.arr.scale"):
            save_mapping_version(conn, "hubspot", "companies", ACCOUNTS.replace("scale: 12", "scale: x"), "bob")
        with pytest.raises(MappingError, match="says vendor 'hubspot'"):
            save_mapping_version(conn, "intercom", "companies", ACCOUNTS, "bob")

        rolled = rollback_mapping(conn, "hubspot", "companies", 0, "bob", mappings_dir)
        assert (rolled.version, rolled.author, rolled.content) == (2, "bob", ACCOUNTS)
        assert active_mapping(conn, "hubspot", "companies", mappings_dir).fields["arr"].scale == 12.0
        with pytest.raises(KeyError):
            rollback_mapping(conn, "hubspot", "companies", 7, "bob", mappings_dir)

        extra = ACCOUNTS.replace("object: companies", "object: company_list")
        save_mapping_version(conn, "hubspot", "companies_v2", extra, "ann")
        assert mapping_names(conn, "hubspot", mappings_dir) == ["companies", "companies_v2"]
        assert [m.object for m in active_mappings(conn, "hubspot", mappings_dir)] == ["companies", "company_list"]
        assert [(v.name, v.version) for v in mapping_history(conn, "hubspot")] == [
            ("companies", 1), ("companies", 2), ("companies_v2", 1),
        ]  # fmt: skip
        assert [v.version for v in mapping_versions(conn, "hubspot", "companies", mappings_dir)] == [0, 1, 2]


# ---- the CLI --------------------------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch, mappings_dir):
    monkeypatch.setenv("CSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'cse.db'}")
    monkeypatch.setenv("CSE_MAPPINGS_DIR", str(mappings_dir))
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """cse"""

    cli_sync.register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_cli_validate(cli, tmp_path, mappings_dir):
    result = cli("mappings", "validate")
    assert result.exit_code == 0 and "1 mapping(s) valid" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(ACCOUNTS.replace("type: integer", "type: integr"))
    result = cli("mappings", "validate", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:{line_of(ACCOUNTS, 'seats_purchased')}: fields.seats_purchased.type: unknown type" in result.output


def test_cli_versions_show_diff_history_rollback(cli, tmp_path):
    assert "No stored versions" in cli("mappings", "history").output
    edited = tmp_path / "companies.yaml"
    edited.write_text(ACCOUNTS.replace("from: name,", "from: legal_name,"))
    result = cli("mappings", "save", str(edited), "--author", "ann")
    assert result.exit_code == 0 and "hubspot/companies v1" in result.output
    shown = cli("mappings", "show", "hubspot", "companies")
    assert "v1 (stored, by ann" in shown.output and "from: legal_name" in shown.output
    assert "from: name," in cli("mappings", "show", "hubspot", "companies", "--version", "0").output
    diff = cli("mappings", "diff", "hubspot", "companies").output
    assert "-  name: {from: name," in diff and "+  name: {from: legal_name," in diff
    assert "ann" in cli("mappings", "history").output
    result = cli("mappings", "rollback", "hubspot", "companies", "--to", "0", "--author", "bob")
    assert result.exit_code == 0 and "v2" in result.output
    assert "from: name," in cli("mappings", "show", "hubspot", "companies").output
    assert cli("mappings", "show", "hubspot", "nothing").exit_code == 1


def test_cli_sync_prints_and_persists_the_log(cli, tmp_path, monkeypatch, mappings_dir):
    from tests.test_sync import HUBSPOT, _write

    _write(mappings_dir, "hubspot", HUBSPOT)
    monkeypatch.setattr(cli_sync, "build_sources", lambda *_: [FakeSource("hubspot", hubspot_book())])
    result = cli("sync", "--vendor", "hubspot", "--quiet")
    assert result.exit_code == 0, result.output
    assert "companies" in result.output and "quarantined hubspot companies 104" in result.output
    assert len(list((tmp_path / "data" / "sync-logs").glob("*.json"))) == 1


def test_build_sources_explains_what_is_missing(monkeypatch):
    from app.settings import Settings

    with pytest.raises(sources.SourceUnavailable, match="no vendor is configured"):
        sources.build_sources(Settings.from_env({}))
    with pytest.raises(sources.SourceUnavailable, match="unknown vendor"):
        sources.build_sources(Settings.from_env({}), "zendesk")
    with pytest.raises(sources.SourceUnavailable, match="set HUBSPOT_ACCESS_TOKEN"):
        sources.build_sources(Settings.from_env({}), "hubspot")


def test_build_sources_hands_the_active_mappings_to_the_connector(store, monkeypatch, mappings_dir):
    from app.settings import Settings

    class PickySource:
        """Like a connector that requests only the fields its mappings read."""

        @classmethod
        def from_settings(cls, settings, mappings=None):
            source = cls()
            source.mappings = mappings
            return source

    monkeypatch.setattr("connectors.hubspot.source.HubSpotSource", PickySource)
    with store.begin() as conn:
        save_mapping_version(conn, "hubspot", "companies", ACCOUNTS.replace("from: name,", "from: legal_name,"), "ann")
    settings = Settings.from_env({"HUBSPOT_ACCESS_TOKEN": "t", "CSE_MAPPINGS_DIR": str(mappings_dir)})
    [source] = sources.build_sources(settings, "hubspot", store)
    assert [m.fields["name"].source for m in source.mappings] == ["legal_name"]  # validated, not raw YAML


def test_fallback_must_be_a_boolean(tmp_path):
    path = tmp_path / "companies.yaml"
    path.write_text(
        "vendor: intercom\nobject: companies\ndirection: pull\nentity: account\nid: id\nupdated: updated_at\n"
        "fields:\n  name: {from: name, type: string, fallback: maybe}\n"
    )
    with pytest.raises(MappingError) as error:
        load_mapping(path)
    assert "fields.name.fallback" in str(error.value) and ":8:" in str(error.value)
