"""intercom connector."""
