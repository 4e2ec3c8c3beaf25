"""A Salesforce mapping's `when` conditions are selected by the query (they used to be dropped from the SELECT).

The loader accepted `when: [{from: StageName, in: [Closed Won]}]`, but the source built its field list from raw
YAML and kept only bare-string conditions, so StageName was never selected and every record was skipped. The
field list now comes from the validated mapping's `source_paths()`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from app.demo.book import generate_book
from app.demo.spec import BookSpec
from connectors.mapping import apply_mapping, parse_mapping
from connectors.salesforce import SalesforceClient, SalesforceConfig, SalesforceSource, fields_from_mappings
from sandbox.salesforce import SalesforceSandbox, start_sandbox

WON_DEALS = """
vendor: salesforce
object: Opportunity
direction: pull
entity: event
id: Id
updated: SystemModstamp
deleted: IsDeleted
when:
  - {from: StageName, in: [Closed Won]}
account: AccountId
account_object: Account
fields:
  occurred_at: {from: CloseDate, type: datetime, required: true}
  kind:        {value: plan_change}
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SalesforceSandbox]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generator's numpy warnings on a tiny book are not ours to judge
        book = generate_book(BookSpec(active_accounts=30, days=60))
    with start_sandbox() as running:
        running.reset(book, batch_size=25)
        yield running


def test_a_when_condition_field_is_selected_so_matching_records_are_kept(sandbox: SalesforceSandbox) -> None:
    mapping = parse_mapping(WON_DEALS, "<won deals>", "won_deals", "salesforce")
    org = sandbox.org
    config = SalesforceConfig(username=org.username, password=org.password, security_token=org.security_token,
                              base_url=sandbox.base_url)  # fmt: skip
    source = SalesforceSource(SalesforceClient(config), fields=fields_from_mappings([mapping]))
    records = [r for page in source.pull("Opportunity", None) for r in page]
    won = [r for r in records if r.get("StageName") == "Closed Won" and not r.get("IsDeleted")]
    assert records and won, "the sandbox book should hold won opportunities"
    batch = apply_mapping(mapping, records)
    assert len(batch.frame) == len(won)  # every won deal kept, none skipped for a missing StageName
    assert len(batch.skipped_ids) == len(records) - len(won) - len(batch.deleted)
