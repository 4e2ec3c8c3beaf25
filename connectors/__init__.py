"""Vendor connectors: client setup, pull (records → canonical through mappings), push, webhook parsing."""
