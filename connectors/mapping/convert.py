"""Conversions from what vendors send to canonical values, one mapping type each (mappings/README.md).

Every function raises ConversionError with a message an admin can act on; the applier turns that into a
quarantine reason, the loader into a refused default. Vendors disagree on dates (ISO with or without offset, epoch
seconds, epoch milliseconds as numbers or strings), so the date parsing accepts all of those and nothing vaguer.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on", "checked"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off", "unchecked"})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")
EPOCH_MS_THRESHOLD = 1e11  # seconds since 1970 stay below this until the year 5138
MIN_YEAR, MAX_YEAR = 1900, 2200


class ConversionError(ValueError):
    """A present value that cannot be read as the mapping's type."""


def is_missing(value: Any) -> bool:
    """None, NaN and blank strings all mean "the vendor has no value": defaults apply, `required` fails."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_string(value: Any) -> str:
    if isinstance(value, dict | list | tuple | set):
        raise ConversionError(f"expected text, got {type(value).__name__} {_show(value)}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def to_number(value: Any) -> float:
    if isinstance(value, bool | dict | list | tuple | set):
        raise ConversionError(f"expected a number, got {_show(value)}")
    if isinstance(value, int | float | Decimal):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            raise ConversionError(f"expected a number, got {_show(value)}") from None
    if not math.isfinite(number):
        raise ConversionError(f"expected a finite number, got {_show(value)}")
    return number


def to_integer(value: Any) -> int:
    number = to_number(value)
    if not number.is_integer():
        raise ConversionError(f"expected a whole number, got {_show(value)}")
    return int(number)


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConversionError(f"expected true or false, got {_show(value)}")


def _from_epoch(number: float) -> datetime:
    seconds = number / 1000.0 if abs(number) >= EPOCH_MS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise ConversionError(f"timestamp out of range: {_show(number)}") from None


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def to_datetime(value: Any) -> datetime:
    """A naive UTC datetime (the store's convention) from ISO text, epoch seconds/milliseconds or a datetime."""
    if isinstance(value, bool):
        raise ConversionError(f"expected a date/time, got {_show(value)}")
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        moment = _naive_utc(value)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float | Decimal):
        moment = _from_epoch(float(value))
    elif isinstance(value, str):
        moment = _parse_datetime_text(value.strip())
    else:
        raise ConversionError(f"expected a date/time, got {_show(value)}")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ConversionError(f"date out of range: {_show(value)}")
    return moment


def _parse_datetime_text(text: str) -> datetime:
    if re.fullmatch(r"-?\d{9,}(\.\d+)?", text):
        return _from_epoch(float(text))
    try:
        return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text))
    except ValueError:
        pass
    # Other common spellings ("Jan 5, 2024", "01/05/2024 10:00"), but never a bare number or a word.
    if len(text) >= 6 and re.search(r"\d", text) and not re.fullmatch(r"[\d.]+", text):
        try:
            parsed = pd.to_datetime(text, utc=True)
        except (ValueError, OverflowError, TypeError):
            parsed = pd.NaT
        if not pd.isna(parsed):
            return parsed.to_pydatetime().replace(tzinfo=None)
    raise ConversionError(f"expected a date/time, got {_show(text)}")


def to_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return to_datetime(value).date()


def to_domain(value: Any) -> str:
    """Lower case, no scheme, no `www.`, no port or path: the form identity resolution compares."""
    text = to_string(value).lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    text = SCHEME_RE.sub("", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.split(":", 1)[0].strip().rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    if not DOMAIN_RE.fullmatch(text):
        raise ConversionError(f"expected a domain, got {_show(value)}")
    return text


def to_email(value: Any) -> str:
    text = to_string(value).lower()
    if text.startswith("mailto:"):
        text = text[7:]
    if not EMAIL_RE.fullmatch(text):
        raise ConversionError(f"expected an email address, got {_show(value)}")
    return text


CONVERTERS = {
    "string": to_string,
    "number": to_number,
    "integer": to_integer,
    "boolean": to_boolean,
    "date": to_date,
    "datetime": to_datetime,
    "domain": to_domain,
    "email": to_email,
}


def _enum_key(value: Any) -> tuple[str, Any] | None:
    """Exact-match key that keeps booleans apart from 0/1 (Python hashes True like 1)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("text", value)
    return None


class EnumTable:
    """Source value → canonical value, matched exactly, then as text, then ignoring case and surrounding blanks.

    YAML reads `Yes:` as the boolean true; keeping the raw key text too means a vendor sending the string "Yes"
    still matches what the admin wrote.
    """

    def __init__(self, pairs: list[tuple[Any, str, Any]]) -> None:
        self.exact: dict[tuple[str, Any], Any] = {}
        self.text: dict[str, Any] = {}
        self.folded: dict[str, Any] = {}
        for key, raw, out in pairs:
            exact = _enum_key(key)
            if exact is not None:
                self.exact.setdefault(exact, out)
            spellings = [raw] if isinstance(key, dict | list) else [raw, to_string(key)]
            for spelling in spellings:
                self.text.setdefault(spelling, out)
                self.folded.setdefault(spelling.strip().casefold(), out)
        self.keys = [raw for _, raw, _ in pairs]

    def lookup(self, value: Any) -> Any:
        exact = _enum_key(value)
        if exact is not None and exact in self.exact:
            return self.exact[exact]
        text = to_string(value)
        if text in self.text:
            return self.text[text]
        folded = text.strip().casefold()
        if folded in self.folded:
            return self.folded[folded]
        shown = ", ".join(self.keys[:8]) + (", ..." if len(self.keys) > 8 else "")
        raise ConversionError(f"{_show(value)} is not one of the mapped values ({shown})")


def convert_numbers(raw: list[Any], integer: bool) -> tuple[list[Any], dict[int, str]]:
    """Vectorized number parsing: pandas does the common case, the scalar parser explains every failure."""
    plain = np.array([isinstance(v, int | float | str) and not isinstance(v, bool) for v in raw], dtype=bool)
    series = pd.Series(raw, dtype=object).where(plain, None)
    numbers = pd.to_numeric(series, errors="coerce").astype(float)
    out: list[Any] = [None if math.isnan(n) else n for n in numbers.tolist()]
    errors: dict[int, str] = {}
    for i in np.flatnonzero(~np.isfinite(numbers.to_numpy()) | ~plain).tolist():
        value = raw[i]
        out[i] = None
        if is_missing(value):
            continue
        try:
            out[i] = to_number(value)
        except ConversionError as error:
            errors[i] = str(error)
    for i, number in enumerate(out):
        if number is None:
            continue
        if not integer:
            out[i] = float(number)
        elif float(number).is_integer():
            out[i] = int(number)
        else:
            errors[i] = f"expected a whole number, got {_show(raw[i])}"
            out[i] = None
    return out, errors
