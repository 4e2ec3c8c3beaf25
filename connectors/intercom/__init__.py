"""Intercom connector: the official SDK with retries and call counting (client.py), the pull (source.py)."""

from connectors.intercom.client import API_VERSION, IntercomClient
from connectors.intercom.source import OBJECTS, IntercomSource

__all__ = ["API_VERSION", "OBJECTS", "IntercomClient", "IntercomSource"]
