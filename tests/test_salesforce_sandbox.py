"""The Salesforce sandbox, exercised through the official SDK (simple-salesforce) over loopback, without mocks.

What is checked is Salesforce's documented behaviour as the SDK sees it: SOAP login and its fault, query cursors
(nextRecordsUrl), SystemModstamp filters, queryAll and the recycle bin, describe, sObject Collections (200 at most,
allOrNone, per-record results), upsert by external id, and error bodies the SDK turns into its exception types.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.salesforce.client import SandboxAdapter
from sandbox.salesforce import MAX_COLLECTION, SalesforceOrg, SalesforceSandbox, start_sandbox


def sdk_session(base_url: str) -> requests.Session:
    """A requests Session that sends the SDK's https://<host> URLs to the sandbox (the SDK itself is untouched)."""
    session = requests.Session()
    adapter = SandboxAdapter(base_url, timeout=10)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def login(sandbox: SalesforceSandbox, **kwargs) -> Salesforce:
    org = sandbox.org
    return Salesforce(
        username=org.username,
        password=org.password,
        security_token=org.security_token,
        session=sdk_session(sandbox.base_url),
        **kwargs,
    )


def add_accounts(org: SalesforceOrg, n: int, prefix: str = "Acme") -> list[str]:
    return [
        org.insert("Account", {"Name": f"{prefix} {i:03d}", "Website": f"https://{prefix.lower()}{i}.com"})
        for i in range(n)
    ]


def error_code(error: Exception) -> str:
    return error.content[0]["errorCode"]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def server() -> Iterator[SalesforceSandbox]:
    with start_sandbox() as running:
        yield running


@pytest.fixture
def sandbox(server: SalesforceSandbox) -> SalesforceSandbox:
    """One server for the module, a fresh org (pages of 7 records) for every test."""
    server.reset(batch_size=7)
    return server


def test_login_and_paging_return_every_record_exactly_once(sandbox):
    ids = add_accounts(sandbox.org, 50)
    sf = login(sandbox)
    assert sandbox.org.logins == 1
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert first["totalSize"] == 50 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["records"][0]["attributes"]["type"] == "Account"

    calls_before = len(sandbox.org.request_log)
    records = sf.query_all("SELECT Id, Name FROM Account ORDER BY Name")["records"]
    assert len(sandbox.org.request_log) - calls_before == math.ceil(50 / 7)
    assert sorted(r["Id"] for r in records) == sorted(ids)
    assert [r["Name"] for r in records] == sorted(r["Name"] for r in records)
    assert sf.api_usage["api-usage"].used == sandbox.org.api_used  # Sforce-Limit-Info parsed by the SDK


def test_cursor_is_a_snapshot_and_a_bad_locator_is_refused(sandbox):
    add_accounts(sandbox.org, 20)
    sf = login(sandbox)
    first = sf.query("SELECT Id FROM Account")
    add_accounts(sandbox.org, 5, prefix="Late")  # created while the cursor is open: not part of this result
    rest = list(sf.query_all_iter("SELECT Id FROM Account"))
    assert len(rest) == 25
    pages = [first]
    while not pages[-1]["done"]:
        pages.append(sf.query_more(pages[-1]["nextRecordsUrl"], identifier_is_url=True))
    assert sum(len(p["records"]) for p in pages) == 20
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_more("/services/data/v59.0/query/01g5g0000000000AAA-2000", identifier_is_url=True)
    assert error_code(raised.value) == "INVALID_QUERY_LOCATOR"


def test_wrong_password_is_the_soap_fault_the_sdk_parses(sandbox):
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        Salesforce(
            username=sandbox.org.username,
            password="wrong",
            security_token=sandbox.org.security_token,
            session=sdk_session(sandbox.base_url),
        )
    assert raised.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in raised.value.auth_message


def test_system_modstamp_filter_and_literal_type_checks(sandbox):
    ids = add_accounts(sandbox.org, 10)
    sf = login(sandbox)
    cutoff = sandbox.org.now()
    for record_id in ids[:3]:
        sf.Account.update(record_id, {"AnnualRevenue": 1200})
    literal = cutoff.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    changed = sf.query_all(f"SELECT Id FROM Account WHERE SystemModstamp >= {literal} ORDER BY SystemModstamp")
    assert [r["Id"] for r in changed["records"]] == ids[:3]
    offset = cutoff.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"
    assert sf.query(f"SELECT COUNT() FROM Account WHERE SystemModstamp > {offset}")["totalSize"] == 3

    with pytest.raises(SalesforceMalformedRequest) as quoted:
        sf.query(f"SELECT Id FROM Account WHERE SystemModstamp >= '{literal}'")
    assert error_code(quoted.value) == "INVALID_FIELD"
    assert "must be of type dateTime and should not be enclosed in quotes" in quoted.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as no_zone:
        sf.query("SELECT Id FROM Account WHERE SystemModstamp >= 2026-01-01T00:00:00")
    assert error_code(no_zone.value) == "MALFORMED_QUERY"


def test_soql_errors_name_the_problem(sandbox):
    sf = login(sandbox)
    cases = {
        "SELECT Id, Nmae FROM Account": "INVALID_FIELD",
        "SELECT Id FROM Acount": "INVALID_TYPE",
        "SELECT Id FROM Account WHERE": "MALFORMED_QUERY",
        "SELECT Id FROM Account ORDER Name": "MALFORMED_QUERY",
        "SELECT Id FROM Account WHERE Name = 5": "INVALID_FIELD",
        "SELECT Owner.Nope FROM Account": "INVALID_FIELD",
    }
    for text, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as raised:
            sf.query(text)
        assert error_code(raised.value) == code, text
    assert "No such column 'Nmae' on entity 'Account'" in str(
        pytest.raises(SalesforceMalformedRequest, sf.query, "SELECT Id, Nmae FROM Account").value
    )


def test_where_order_limit_and_relationship_fields(sandbox):
    org = sandbox.org
    account = org.insert("Account", {"Name": "Globex", "Plan__c": "Team", "AnnualRevenue": 5000})
    org.insert("Account", {"Name": "Initech", "Plan__c": "Business", "AnnualRevenue": 9000})
    org.insert(
        "Contact", {"LastName": "Simpson", "FirstName": "Homer", "Email": "homer@globex.com", "AccountId": account}
    )
    sf = login(sandbox)
    rows = sf.query(
        "SELECT Name FROM Account WHERE (Plan__c = 'team' OR AnnualRevenue > 8000) AND Name != null "
        "ORDER BY AnnualRevenue DESC LIMIT 1"
    )["records"]
    assert [r["Name"] for r in rows] == ["Initech"]
    contact = sf.query("SELECT Name, Account.Name, Owner.Email FROM Contact WHERE Email LIKE '%@globex.com'")
    record = contact["records"][0]
    assert record["Name"] == "Homer Simpson"
    assert record["Account"]["Name"] == "Globex" and record["Account"]["attributes"]["type"] == "Account"
    assert record["Owner"]["Email"] == org.username
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Id IN ('{account[:15]}')")["totalSize"] == 1


def test_deleted_records_only_through_query_all(sandbox):
    org = sandbox.org
    account = org.insert("Account", {"Name": "Gone Inc"})
    contact = org.insert("Contact", {"LastName": "Left", "AccountId": account})
    sf = login(sandbox)
    assert sf.Account.delete(account) == 204
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0  # deleting an account cascades
    rows = sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)["records"]
    assert rows == [{"attributes": rows[0]["attributes"], "Id": contact, "IsDeleted": True}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(account)
    now = sandbox.org.now()
    recycled = sf.Account.deleted(now - timedelta(days=1), now + timedelta(minutes=1))["deletedRecords"]
    assert [r["id"] for r in recycled] == [account]


def test_describe_lists_standard_and_custom_fields(sandbox):
    sf = login(sandbox)
    described = sf.describe()
    names = {o["name"] for o in described["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Case", "Task", "User"} <= names
    account = sf.Account.describe()
    fields = {f["name"]: f for f in account["fields"]}
    assert fields["Name"]["nillable"] is False and fields["Name"]["type"] == "string"
    assert fields["Plan__c"]["custom"] is True and fields["Plan__c"]["type"] == "picklist"
    assert [v["value"] for v in fields["Plan__c"]["picklistValues"]] == ["Starter", "Team", "Business", "Enterprise"]
    assert fields["OwnerId"]["referenceTo"] == ["User"] and fields["OwnerId"]["relationshipName"] == "Owner"
    assert fields["CSE_Health_Score__c"]["updateable"] is True
    assert sf.Task.describe()["keyPrefix"] == "00T"

    sandbox.reset(cse_fields=False)  # an org whose admin has not deployed our fields yet
    fields = {f["name"] for f in login(sandbox).Account.describe()["fields"]}
    assert not any(name.startswith("CSE_") for name in fields)


def test_crud_validation_errors_are_salesforce_error_bodies(sandbox):
    sf = login(sandbox)
    created = sf.Account.create({"Name": "Hooli", "Plan__c": "Team"})
    assert created["success"] is True and created["id"].startswith("001") and len(created["id"]) == 18
    assert sf.Account.get(created["id"])["Plan__c"] == "Team"
    failures = [
        ({"Plan__c": "Team"}, "REQUIRED_FIELD_MISSING", ["Name"]),
        ({"Name": "X", "Plan__c": "Platinum"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Plan__c"]),
        ({"Name": "X", "Bogus__c": 1}, "INVALID_FIELD", []),
        (
            {"Name": "X", "SystemModstamp": "2026-01-01T00:00:00Z"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["SystemModstamp"],
        ),
        ({"Name": "X", "OwnerId": "001000000000000"}, "FIELD_INTEGRITY_EXCEPTION", ["OwnerId"]),
        ({"Name": "X" * 300}, "STRING_TOO_LONG", ["Name"]),
    ]
    for body, code, fields in failures:
        with pytest.raises(SalesforceMalformedRequest) as raised:
            sf.Account.create(body)
        assert error_code(raised.value) == code, body
        assert raised.value.content[0].get("fields", []) == fields
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")


def test_task_creation_and_idempotent_upsert_by_dedupe_key(sandbox):
    org = sandbox.org
    account = org.insert("Account", {"Name": "Umbrella"})
    sf = login(sandbox)
    task = {
        "Subject": "Health dropped to 41: call the champion",
        "WhatId": account,
        "OwnerId": org.api_user_id,
        "ActivityDate": "2026-11-08",
        "Priority": "High",
        "Description": "Drivers: logins -40%",
    }
    assert sf.Task.upsert("CSE_Dedupe_Key__c/acct-1:health-drop", task) == 201
    assert sf.Task.upsert("CSE_Dedupe_Key__c/acct-1:health-drop", task) == 200  # a retried job updates, not duplicates
    rows = sf.query_all("SELECT Id, Subject, Status, What.Name, CSE_Dedupe_Key__c FROM Task")["records"]
    assert len(rows) == 1
    assert rows[0]["Status"] == "Not Started" and rows[0]["What"]["Name"] == "Umbrella"
    plain = sf.Task.create({"Subject": "Follow up", "WhatId": account})
    assert plain["success"] and org.get("Task", plain["id"])["OwnerId"] == org.api_user_id


def collection(sf: Salesforce, method: str, records: list[dict], all_or_none: bool = False) -> list[dict]:
    return sf.restful(
        "composite/sobjects", method=method, data=json.dumps({"allOrNone": all_or_none, "records": records})
    )


def test_collections_enforce_200_records_and_report_per_record(sandbox):
    sf = login(sandbox)
    too_many = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(MAX_COLLECTION + 1)]
    with pytest.raises(SalesforceMalformedRequest) as raised:
        collection(sf, "POST", too_many)
    assert error_code(raised.value) == "EXCEEDED_ID_LIMIT"
    assert sandbox.org.live("Account") == []

    results = collection(sf, "POST", too_many[:MAX_COLLECTION])
    assert len(results) == MAX_COLLECTION and all(r["success"] for r in results)

    mixed = [{"attributes": {"type": "Account"}, "Name": "Fine"}, {"attributes": {"type": "Account"}}]
    results = collection(sf, "POST", mixed)
    assert results[0]["success"] is True
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    before = len(sandbox.org.live("Account"))
    results = collection(sf, "POST", mixed, all_or_none=True)
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert len(sandbox.org.live("Account")) == before

    ids = [r["Id"] for r in sandbox.org.live("Account")[:3]]
    sandbox.org.faults.partial_failure_ids = {ids[1]}
    updates = [{"attributes": {"type": "Account"}, "id": i, "CSE_Health_Score__c": 55} for i in ids]
    results = collection(sf, "PATCH", updates)
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert [sandbox.org.get("Account", i)["CSE_Health_Score__c"] for i in ids] == [55, None, 55]


def test_collection_upsert_by_external_id(sandbox):
    account = sandbox.org.insert("Account", {"Name": "Vandelay"})
    sf = login(sandbox)
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Task"}, "CSE_Dedupe_Key__c": f"k{i}", "Subject": f"S{i}", "WhatId": account}
            for i in range(3)
        ],
    }
    first = sf.restful("composite/sobjects/Task/CSE_Dedupe_Key__c", method="PATCH", data=json.dumps(body))
    again = sf.restful("composite/sobjects/Task/CSE_Dedupe_Key__c", method="PATCH", data=json.dumps(body))
    assert [r["created"] for r in first] == [True] * 3
    assert [r["created"] for r in again] == [False] * 3
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert len(sandbox.org.live("Task")) == 3


def test_session_request_limit_and_server_errors(sandbox):
    org = sandbox.org
    sf = login(sandbox)
    direct = Salesforce(session_id=sf.session_id, instance_url=sandbox.base_url, session=sdk_session(sandbox.base_url))
    org.expire_all_sessions()
    with pytest.raises(SalesforceExpiredSession) as expired:
        direct.query("SELECT Id FROM Account")
    assert expired.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0  # password auth: the SDK logs in again
    assert org.logins == 2

    org.api_limit = org.api_used
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Account")
    assert error_code(refused.value) == "REQUEST_LIMIT_EXCEEDED"
    org.api_limit += 100

    org.faults.server_errors = 1
    with pytest.raises(Exception) as failed:
        sf.query("SELECT Id FROM Account")
    assert failed.value.status == 503 and error_code(failed.value) == "SERVER_UNAVAILABLE"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


def test_jwt_bearer_login(sandbox):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sandbox.org.consumer_key = "3MVG9-cse"
    sandbox.org.jwt_public_key = public_pem
    sf = Salesforce(
        username=sandbox.org.username,
        consumer_key="3MVG9-cse",
        privatekey=private_pem,
        session=sdk_session(sandbox.base_url),
    )
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        Salesforce(
            username=sandbox.org.username,
            consumer_key="3MVG9-cse",
            privatekey=forged,
            session=sdk_session(sandbox.base_url),
        )
    assert raised.value.code == "invalid_grant"
