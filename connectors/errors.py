"""The errors every connector raises, whichever SDK is underneath, so callers catch one set of types.

A connector turns its SDK's failures into these (through `connectors.retry.call_with_retries` and the vendor's
classifier) once it has stopped retrying; the SDK's own exception stays attached as `__cause__`.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Anything a connector refuses or could not do."""


class ConnectorConfigError(ConnectorError, ValueError):
    """Settings do not describe a usable connection (a missing token, no complete set of credentials)."""


class VendorError(ConnectorError):
    """A vendor call that failed for good: after the retries it was worth, or at once when no retry could help.

    `retryable` is what a later delivery should assume: False only when the vendor refused the record itself (a bad
    value, a deleted record), so write-back parks the row; busy, down or unreachable vendors and refused credentials
    leave it True, since the same call can land once the vendor or the settings are back.
    """

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        code: str | None = None,
        url: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.vendor, self.retryable, self.status, self.code = vendor, retryable, status, code
        self.url, self.attempts = url, attempts
        super().__init__(f"{vendor}: {message}")


class VendorConfigError(VendorError, ConnectorConfigError):
    """The vendor refused the credentials or the permissions the settings give: fixing settings is the only cure."""
