"""Expected failures of any `cse` command as one red line saying what to do, and a non-zero exit.

A missing token, a database or Redis that does not answer, a CRM that cannot be reached, a health config with a
mistake, a store with nothing in it yet: each is a situation an operator meets in the first hour, not a bug, so it
gets a sentence instead of a traceback. `cse --debug ...` (or CSE_DEBUG=1) shows the traceback as well.
Imports stay lazy: this module is loaded by `cse --help`.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from app.settings import TRUE, mask_url_password

CONNECT_GUIDE = "see 'Connect your CRMs' in the README"


class CommandFailed(Exception):
    """A refusal or an expected failure: printed as one red line on stderr, exit code 1 unless given."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


def say_failure(message: str) -> None:
    """One red line on stderr (never wrapped, so a log keeps it on one line)."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(message, style="red"))


def parse_day(value: str | None, option: str = "--as-of") -> date:
    """A YYYY-MM-DD option as a date (today when not given), or a CommandFailed naming the option."""
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandFailed(f"{option} {value}: {error}; give a day as YYYY-MM-DD", exit_code=2) from None


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def explain(error: BaseException) -> str | None:
    """The one line for an expected failure, or None for a bug (which keeps its traceback)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from connectors.errors import ConnectorConfigError, VendorConfigError, VendorError
    from engine.health_config import HealthConfigError

    if isinstance(error, OperationalError | InterfaceError):
        url = mask_url_password(os.environ.get("DATABASE_URL")) or "the default SQLite file"
        return f"cannot use the database ({url}): {_first_line(error)}; check DATABASE_URL and that it is running"
    if _is_redis_down(error):
        url = mask_url_password(os.environ.get("REDIS_URL"))
        return f"cannot reach Redis at {url}: {_first_line(error)}; start it, fix REDIS_URL, or unset it (no queue)"
    if isinstance(error, VendorConfigError):
        return f"{_first_line(error)}: the vendor refused the credentials; fix them ({CONNECT_GUIDE})"
    if isinstance(error, ConnectorConfigError):
        return f"{_first_line(error)}; set the vendor's credentials ({CONNECT_GUIDE})"
    if isinstance(error, VendorError):
        return f"{_first_line(error)}; check the vendor's URL and the network, then run again"
    if isinstance(error, HealthConfigError):
        return " | ".join(line.strip() for line in str(error).splitlines() if line.strip()) + "; fix CSE_HEALTH_CONFIG"
    return None


def _is_redis_down(error: BaseException) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(error, RedisConnectionError | RedisTimeoutError)


def debugging(ctx: Any = None) -> bool:
    """--debug on the command line (kept in the context by the main callback) or CSE_DEBUG in the environment."""
    return bool((ctx is not None and (ctx.obj or {}).get("debug")) or os.environ.get("CSE_DEBUG", "").lower() in TRUE)


class FriendlyGroup(TyperGroup):
    """The `cse` group: a command's expected failure is one red line and a non-zero exit, unless --debug asks for
    the traceback; a bug keeps its traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (TyperException, Exit, Abort):  # usage errors, --help, explicit exits: typer reports them
            raise
        except Exception as error:
            message = error.message if isinstance(error, CommandFailed) else explain(error)
            if message is None or debugging(ctx):
                raise
            say_failure(message)
            raise Exit(getattr(error, "exit_code", 1)) from None
