"""A Salesforce org for tests and the demo: SOAP login, REST queries, describe, CRUD and sObject Collections.

    with start_sandbox(book) as sf:           # a RunningSandbox seeded from a canonical Book (its Salesforce accounts)
        env = sf.settings_env()               # SALESFORCE_USERNAME / _PASSWORD / _SECURITY_TOKEN / _BASE_URL
        sf.faults.rate_limited = 3            # the next 3 API calls answer REQUEST_LIMIT_EXCEEDED (= sf.org.faults)

`create_app(org)` is the bare WSGI app for hosting it elsewhere (e.g. a subprocess or gunicorn).
"""

from __future__ import annotations

from typing import Any

from sandbox.salesforce.app import create_app
from sandbox.salesforce.ids import ApiError, make_id
from sandbox.salesforce.org import API_VERSION, MAX_COLLECTION, SalesforceOrg
from sandbox.salesforce.schema import CSE_ACCOUNT_FIELDS
from sandbox.salesforce.seed import SeedResult, seed_from_book
from sandbox.server import RunningSandbox, start_server

__all__ = [
    "API_VERSION",
    "CSE_ACCOUNT_FIELDS",
    "MAX_COLLECTION",
    "ApiError",
    "SalesforceOrg",
    "SalesforceSandbox",
    "SeedResult",
    "create_app",
    "make_id",
    "seed_from_book",
    "start_sandbox",
]


class SalesforceSandbox(RunningSandbox[SalesforceOrg]):
    """A running Salesforce sandbox; `org` is its state (inspect it, inject faults through `org.faults`)."""

    @property
    def org(self) -> SalesforceOrg:
        return self.state

    def settings_env(self) -> dict[str, str]:
        return {
            "SALESFORCE_USERNAME": self.org.username,
            "SALESFORCE_PASSWORD": self.org.password,
            "SALESFORCE_SECURITY_TOKEN": self.org.security_token,
            "SALESFORCE_BASE_URL": self.base_url,
        }

    def reset(self, book: Any = None, **org_options: Any) -> SalesforceOrg:
        """Serve a fresh org (seeded from `book` if given) on the same port: cheaper than a new server."""
        self.state = SalesforceOrg(**org_options)
        self.seeded = seed_from_book(self.org, book) if book is not None else None
        self.server.app.config["SALESFORCE_ORG"] = self.org
        return self.org


def start_sandbox(
    book: Any = None, *, org: SalesforceOrg | None = None, host: str = "127.0.0.1", port: int = 0, **org_options: Any
) -> SalesforceSandbox:
    """Start a sandbox on a loopback port, seeded from `book` (a Book or (accounts, contacts, events)) if given.

    `org_options` go to SalesforceOrg (credentials, api_limit, batch_size, cse_fields, jwt keys, faults).
    """
    org = org or SalesforceOrg(**org_options)
    seeded = seed_from_book(org, book) if book is not None else None
    return SalesforceSandbox(org, start_server(create_app(org), host, port), seeded)
