"""One rig per vendor for the connector contract suite: its sandbox, a source on fast retries, and the vendor's words.

A rig answers the same questions for every vendor (which object holds companies, what a record's name or email
field is called, how a change or a deletion is made in the vendor, how a source is built with a given retry
budget), so tests/test_connector_contract.py states each promise once and runs it against all three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from app.demo.book import Book
from connectors.errors import VendorError
from connectors.hubspot import HubSpotClient, HubSpotSource
from connectors.intercom import IntercomClient, IntercomSource
from connectors.registry import vendor_names
from connectors.retry import RetryPolicy
from connectors.salesforce import (
    SalesforceClient,
    SalesforceConfig,
    SalesforceSource,
    fields_from_mappings,
    load_mapping_files,
)
from connectors.source import VendorSource
from sandbox import hubspot, intercom, salesforce
from sandbox.server import RunningSandbox

# The vendors the contract suite runs over: every registered connector (each must bring a rig below).
VENDORS = list(vendor_names())
SALESFORCE_PAGE = 10  # a small query page, so a small book spans several pages


@dataclass
class Rig:
    """A running sandbox seeded from a book, and how this vendor's connector and records are spoken to."""

    sandbox: RunningSandbox
    book_accounts: pd.DataFrame  # the book's accounts that live in this vendor
    book_contacts: pd.DataFrame
    companies: str  # object names, as the source names them
    contacts: str
    name_field: str
    email_field: str
    credential: str  # the setting that error names
    sleeps: list[float] = field(default_factory=list)  # waits the client asked for (not slept)

    def source(self, attempts: int = 6) -> VendorSource:
        raise NotImplementedError

    def retry(self, attempts: int) -> RetryPolicy:
        """The one retry policy every vendor's client takes: tiny waits, recorded instead of slept."""
        return RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05, max_wait=5.0, sleep=self.sleeps.append)

    def calls_and_retries(self, source: Any) -> tuple[int, int]:
        return source.stats.api_calls, source.stats.retries

    def served(self) -> int:
        """API requests the sandbox answered (logins aside)."""
        raise NotImplementedError

    def status(self, error: Exception) -> int:
        assert isinstance(error, VendorError)
        return error.status or 0

    def advance(self, delta: timedelta) -> datetime:
        """Move the vendor's clock forward, as if `delta` passed; returns the vendor's new now."""
        raise NotImplementedError

    def rename(self, record: dict, name: str) -> None:
        raise NotImplementedError

    def delete_contact(self, record: dict) -> None:
        raise NotImplementedError

    def is_deleted(self, record: dict) -> bool:
        raise NotImplementedError

    def refuse_auth(self) -> None:
        """From now on the vendor rejects the credentials the source was built with."""
        raise NotImplementedError

    @staticmethod
    def record_id(record: dict) -> str:
        return str(record.get("Id") or record["id"])


class SalesforceRig(Rig):
    def source(self, attempts: int = 6) -> SalesforceSource:
        org = self.sandbox.org
        config = SalesforceConfig(
            username=org.username, password=org.password, security_token=org.security_token,
            base_url=self.sandbox.base_url,
        )  # fmt: skip
        client = SalesforceClient(config, retry=self.retry(attempts))
        return SalesforceSource(client, fields=fields_from_mappings(load_mapping_files()))

    def served(self) -> int:
        return len(self.sandbox.org.request_log)

    def advance(self, delta: timedelta) -> datetime:
        org = self.sandbox.org
        org.set_clock(org.now() + delta)
        return org.now()

    def rename(self, record: dict, name: str) -> None:
        self.sandbox.org.update("Account", record["Id"], {"Name": name})

    def delete_contact(self, record: dict) -> None:
        self.sandbox.org.delete("Contact", record["Id"])

    def is_deleted(self, record: dict) -> bool:
        return record["IsDeleted"] is True

    def refuse_auth(self) -> None:
        self.sandbox.org.password = "changed-by-an-admin"  # the login is refused before any API call


class HubSpotRig(Rig):
    def source(self, attempts: int = 6) -> HubSpotSource:
        client = HubSpotClient(
            self.sandbox.settings_env()["HUBSPOT_ACCESS_TOKEN"], self.sandbox.base_url,
            search_requests_per_second=None, retry=self.retry(attempts),
        )  # fmt: skip
        return HubSpotSource.from_mapping_dir(client)

    def served(self) -> int:
        return self.sandbox.state.api_calls()

    def advance(self, delta: timedelta) -> datetime:
        state = self.sandbox.state
        clock = state.clock
        state.clock = lambda: clock() + delta
        return state.now()

    def rename(self, record: dict, name: str) -> None:
        self.sandbox.state.update("companies", record["id"], {"name": name})

    def delete_contact(self, record: dict) -> None:
        self.sandbox.state.archive("contacts", record["id"])

    def is_deleted(self, record: dict) -> bool:
        return record["archived"] is True

    def refuse_auth(self) -> None:
        self.sandbox.state.config.access_tokens = ("another-token",)


class IntercomRig(Rig):
    def source(self, attempts: int = 6) -> IntercomSource:
        token = self.sandbox.settings_env()["INTERCOM_ACCESS_TOKEN"]
        client = IntercomClient(token, base_url=self.sandbox.base_url, retry=self.retry(attempts))
        return IntercomSource(client)

    def served(self) -> int:
        return len(self.sandbox.state.requests)

    def advance(self, delta: timedelta) -> datetime:
        workspace = self.sandbox.workspace
        clock = workspace.clock
        workspace.clock = lambda: clock() + delta.total_seconds()
        return datetime.fromtimestamp(workspace.now(), UTC)

    def rename(self, record: dict, name: str) -> None:
        self.sandbox.workspace.update_company(record["id"], {"name": name})

    def delete_contact(self, record: dict) -> None:
        raise NotImplementedError("Intercom's contact search lists no deleted contacts: a sync cannot see them")

    def refuse_auth(self) -> None:
        self.sandbox.workspace.tokens = {"another-token"}


def _in_crm(book: Book, crm: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    accounts = book.accounts[book.accounts["crm"] == crm]
    return accounts, book.contacts[book.contacts["account_key"].isin(set(accounts["key"]))]


@contextmanager
def _salesforce(book: Book) -> Iterator[Rig]:
    with salesforce.start_sandbox(book, batch_size=SALESFORCE_PAGE) as sandbox:
        accounts, contacts = _in_crm(book, "salesforce")
        yield SalesforceRig(
            sandbox, accounts, contacts, companies="Account", contacts="Contact", name_field="Name",
            email_field="Email", credential="SALESFORCE_USERNAME",
        )  # fmt: skip


@contextmanager
def _hubspot(book: Book) -> Iterator[Rig]:
    config = hubspot.SandboxConfig(rate_limit_max=None, search_requests_per_second=None)
    with hubspot.start_sandbox(book, config) as sandbox:
        accounts, contacts = _in_crm(book, "hubspot")
        yield HubSpotRig(
            sandbox, accounts, contacts, companies="companies", contacts="contacts", name_field="name",
            email_field="email", credential="HUBSPOT_ACCESS_TOKEN",
        )  # fmt: skip


@contextmanager
def _intercom(book: Book) -> Iterator[Rig]:
    with intercom.start_sandbox(book, event_list_days=None) as sandbox:  # every account is an Intercom company
        yield IntercomRig(
            sandbox, book.accounts, book.contacts, companies="companies", contacts="contacts", name_field="name",
            email_field="email", credential="INTERCOM_ACCESS_TOKEN",
        )  # fmt: skip


RIGS: dict[str, Callable[[Book], AbstractContextManager[Rig]]] = {
    "salesforce": _salesforce, "hubspot": _hubspot, "intercom": _intercom,
}  # fmt: skip
