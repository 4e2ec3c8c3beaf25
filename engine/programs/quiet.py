"""Quiet periods: when no customer message goes out, in the account's own local time.

A quiet period is any of: given weekdays (e.g. the weekend), given hours of every day (e.g. 20:00-08:00, which may
wrap past midnight) and blackout date ranges (e.g. the holidays). A message that falls due in one is deferred to the
first moment after it, never dropped. Rules come from settings (CSE_QUIET_WEEKDAYS, CSE_QUIET_HOURS,
CSE_QUIET_BLACKOUTS, CSE_DEFAULT_TIMEZONE) and are parsed here, so a typo is refused with what was wrong.

`reopens_at` answers for many accounts at once: it works per distinct timezone (a book has a handful), never per
account, and maps the answers back onto the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

__all__ = ["QuietRules", "parse_quiet", "reopens_at"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_QUIET_DAYS = 400  # a rule set that is never open (every weekday quiet) is refused by parse_quiet


@dataclass(frozen=True)
class QuietRules:
    weekdays: frozenset[int] = frozenset()  # 0 = Monday
    hours: tuple[int, int] | None = None  # [start, end) local hours; start > end wraps past midnight
    blackouts: tuple[tuple[date, date], ...] = ()  # inclusive local dates
    default_timezone: str = "UTC"

    @property
    def empty(self) -> bool:
        return not self.weekdays and self.hours is None and not self.blackouts

    def _quiet_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays or any(first <= day <= last for first, last in self.blackouts)

    def _in_quiet_hours(self, moment: datetime) -> bool:
        if self.hours is None:
            return False
        start, end = self.hours
        hour = moment.hour
        return start <= hour < end if start < end else hour >= start or hour < end

    def next_open(self, local: datetime) -> datetime:
        """The first local moment at or after `local` outside every quiet period."""
        for _ in range(MAX_QUIET_DAYS * 2):
            if self._quiet_day(local.date()):
                local = datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo)
            elif self._in_quiet_hours(local):
                end = datetime.combine(local.date(), time(self.hours[1]), local.tzinfo)
                local = end if end > local else end + timedelta(days=1)
            else:
                return local
        raise ValueError("the quiet periods leave no time to send")


def _zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def reopens_at(now: datetime, timezones: pd.Series, rules: QuietRules) -> pd.Series:
    """Per row (its account's timezone name, None for the default): NaT when `now` (naive UTC) is outside every
    quiet period there, else the naive UTC moment the quiet period ends."""
    out = pd.Series(pd.NaT, index=timezones.index, dtype="datetime64[ns]")
    if rules.empty or timezones.empty:
        return out
    names = timezones.astype(object).where(timezones.notna(), None)
    aware = now.replace(tzinfo=UTC)
    for name in pd.unique(names.to_numpy()):
        local = aware.astimezone(_zone(name, rules.default_timezone))
        opens = rules.next_open(local)
        if opens != local:
            out[(names == name) if name is not None else names.isna()] = pd.Timestamp(
                opens.astimezone(UTC).replace(tzinfo=None)
            )
    return out


def _weekdays(text: str) -> frozenset[int]:
    out = set()
    for part in (p.strip().lower()[:3] for p in text.split(",") if p.strip()):
        if part not in WEEKDAYS:
            raise ValueError(f"CSE_QUIET_WEEKDAYS: {part!r} is not a weekday (mon, tue, ..., sun)")
        out.add(WEEKDAYS.index(part))
    if len(out) == len(WEEKDAYS):
        raise ValueError("CSE_QUIET_WEEKDAYS: every weekday is quiet, so nothing would ever be sent")
    return frozenset(out)


def _hours(text: str) -> tuple[int, int] | None:
    if not text.strip():
        return None
    try:
        start, end = (int(p) for p in text.split("-"))
    except ValueError:
        raise ValueError(f"CSE_QUIET_HOURS: {text!r} is not START-END in whole hours, e.g. 20-8") from None
    if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
        raise ValueError(f"CSE_QUIET_HOURS: {text!r} needs two different hours between 0 and 23")
    return start, end


def _blackouts(text: str) -> tuple[tuple[date, date], ...]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("..")
        try:
            start, end = date.fromisoformat(first.strip()), date.fromisoformat((last or first).strip())
        except ValueError:
            raise ValueError(f"CSE_QUIET_BLACKOUTS: {part!r} is not a date or FIRST..LAST (YYYY-MM-DD)") from None
        if end < start:
            raise ValueError(f"CSE_QUIET_BLACKOUTS: {part!r} ends before it starts")
        out.append((start, end))
    return tuple(out)


def parse_quiet(weekdays: str = "", hours: str = "", blackouts: str = "", default_timezone: str = "UTC") -> QuietRules:
    """Rules from their setting strings: `sat,sun`, `20-8`, `2026-12-24..2026-12-26,2027-01-01`, `Europe/Berlin`."""
    try:
        ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"CSE_DEFAULT_TIMEZONE: {default_timezone!r} is not an IANA timezone") from None
    return QuietRules(_weekdays(weekdays), _hours(hours), _blackouts(blackouts), default_timezone)
