"""A HubSpot CRM sandbox: the v3/v4 endpoints our connector and write-back use, served on a loopback port.

    with start_sandbox(book) as hubspot:        # a RunningSandbox seeded from a canonical Book
        env = hubspot.settings_env()            # HUBSPOT_BASE_URL / HUBSPOT_ACCESS_TOKEN
        hubspot.faults.rate_limited = 3         # the next 3 calls answer 429 (= hubspot.state.faults)

`create_app(state)` is the bare WSGI app over a `HubSpotState` (seeded with `seed_from_book`) for hosting it
elsewhere. The access token is `sandbox-token` unless the config says otherwise.
"""

from __future__ import annotations

from typing import Any

from sandbox.faults import Faults
from sandbox.hubspot.app import create_app
from sandbox.hubspot.seed import SeedResult, install_custom_properties, seed_from_book
from sandbox.hubspot.state import HubSpotState, SandboxConfig
from sandbox.server import RunningSandbox, start_server

__all__ = [
    "Faults",
    "HubSpotSandbox",
    "HubSpotState",
    "SandboxConfig",
    "SeedResult",
    "create_app",
    "install_custom_properties",
    "seed_from_book",
    "start_sandbox",
]


class HubSpotSandbox(RunningSandbox[HubSpotState]):
    """A running HubSpot portal; `state` is the portal (records, properties, owners, request log, faults)."""

    def settings_env(self) -> dict[str, str]:
        return {"HUBSPOT_BASE_URL": self.base_url, "HUBSPOT_ACCESS_TOKEN": self.state.config.access_tokens[0]}


def start_sandbox(
    book: Any = None,
    config: SandboxConfig | None = None,
    faults: Faults | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> HubSpotSandbox:
    """Start a sandbox (seeded from `book` when given: anything with accounts/contacts/events frames)."""
    state = HubSpotState(config, faults)
    seeded = None
    if book is not None:
        seeded = seed_from_book(state, book.accounts, book.contacts, book.events)
    else:
        install_custom_properties(state)
    return HubSpotSandbox(state, start_server(create_app(state), host, port), seeded)
