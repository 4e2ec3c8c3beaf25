"""A HubSpot CRM sandbox: the v3/v4 endpoints our connector and write-back use, served on a loopback port.

    state = HubSpotState()                      # or HubSpotState(SandboxConfig(rate_limit_max=None), Faults())
    seed_from_book(state, book.accounts, book.contacts, book.events)
    running = start_server(create_app(state))   # sandbox.server; running.base_url is the SDK's host
    ...
    running.stop()

or in one step: `running, state = start_sandbox(book)`. The access token is `sandbox-token` unless the config says
otherwise.
"""

from __future__ import annotations

from sandbox.faults import Faults
from sandbox.hubspot.app import create_app
from sandbox.hubspot.seed import SeedResult, install_custom_properties, seed_from_book
from sandbox.hubspot.state import HubSpotState, SandboxConfig
from sandbox.server import RunningServer, start_server

__all__ = [
    "Faults",
    "HubSpotState",
    "RunningServer",
    "SandboxConfig",
    "SeedResult",
    "create_app",
    "install_custom_properties",
    "seed_from_book",
    "start_sandbox",
]


def start_sandbox(
    book=None,
    config: SandboxConfig | None = None,
    faults: Faults | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[RunningServer, HubSpotState]:
    """Start a sandbox (seeded from `book` when given: anything with accounts/contacts/events frames)."""
    state = HubSpotState(config, faults)
    if book is not None:
        seed_from_book(state, book.accounts, book.contacts, book.events)
    else:
        install_custom_properties(state)
    return start_server(create_app(state), host, port), state
