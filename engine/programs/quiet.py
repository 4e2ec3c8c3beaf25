"""Quiet periods: when no customer message goes out, in the account's own local time.

A quiet period is any of: given weekdays (e.g. the weekend), given hours of every day (e.g. 20:00-08:00, which may
wrap past midnight) and blackout date ranges (e.g. the holidays). A message that falls due in one is deferred to the
first moment after it, never dropped. Rules come from settings (CSE_QUIET_WEEKDAYS, CSE_QUIET_HOURS,
CSE_QUIET_BLACKOUTS, CSE_DEFAULT_TIMEZONE) and from a program's own `quiet` section (engine/programs/definition.py),
which adds to them or replaces them for that program's messages; both are parsed here, so a typo is refused with
what was wrong.

`reopens_at` answers for many accounts at once: it works per distinct timezone (a book has a handful), never per
account, and maps the answers back onto the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

__all__ = ["QuietRules", "own_rules", "parse_quiet", "quiet_problems", "reopens_at"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_QUIET_DAYS = 400  # a rule set that is never open (every weekday quiet) is refused by parse_quiet


@dataclass(frozen=True)
class QuietRules:
    weekdays: frozenset[int] = frozenset()  # 0 = Monday
    hours: tuple[tuple[int, int], ...] = ()  # [start, end) local hours; start > end wraps past midnight
    blackouts: tuple[tuple[date, date], ...] = ()  # inclusive local dates
    default_timezone: str = "UTC"

    @property
    def empty(self) -> bool:
        return not self.weekdays and not self.hours and not self.blackouts

    def merged(self, other: QuietRules) -> QuietRules:
        """Quiet when either is (a program's own periods added to the global ones); the timezone is ours."""
        hours = self.hours + tuple(h for h in other.hours if h not in self.hours)
        blackouts = self.blackouts + tuple(b for b in other.blackouts if b not in self.blackouts)
        return QuietRules(self.weekdays | other.weekdays, hours, blackouts, self.default_timezone)

    def never_open(self) -> str | None:
        """Why these rules would leave no moment to send (every weekday or every hour quiet), None if they don't.
        Each setting alone is refused at parse time; a program's own periods added to the global ones are checked
        here, where both are known."""
        if len(self.weekdays) == len(WEEKDAYS):
            return "every weekday is quiet"
        if len(_quiet_hours(self.hours)) == 24:
            return "every hour of the day is quiet"
        return None

    def _quiet_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays or any(first <= day <= last for first, last in self.blackouts)

    def _quiet_hours_ending(self, moment: datetime) -> int | None:
        """The end hour of a quiet hour range `moment` falls in, None when it falls in none."""
        hour = moment.hour
        for start, end in self.hours:
            if (start <= hour < end) if start < end else (hour >= start or hour < end):
                return end
        return None

    def next_open(self, local: datetime) -> datetime:
        """The first local moment at or after `local` outside every quiet period."""
        for _ in range(MAX_QUIET_DAYS * 2):
            if self._quiet_day(local.date()):
                local = datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo)
            elif (end_hour := self._quiet_hours_ending(local)) is not None:
                end = datetime.combine(local.date(), time(end_hour), local.tzinfo)
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


def _weekdays(text: str, label: str = "CSE_QUIET_WEEKDAYS") -> frozenset[int]:
    out = set()
    for part in (p.strip().lower()[:3] for p in text.split(",") if p.strip()):
        if part not in WEEKDAYS:
            raise ValueError(f"{label}: {part!r} is not a weekday (mon, tue, ..., sun)")
        out.add(WEEKDAYS.index(part))
    if len(out) == len(WEEKDAYS):
        raise ValueError(f"{label}: every weekday is quiet, so nothing would ever be sent")
    return frozenset(out)


def _hours(text: str, label: str = "CSE_QUIET_HOURS") -> tuple[tuple[int, int], ...]:
    """`20-8` or several ranges, `12-13,20-8`."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            start, end = (int(p) for p in part.split("-"))
        except ValueError:
            raise ValueError(f"{label}: {part!r} is not START-END in whole hours, e.g. 20-8") from None
        if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
            raise ValueError(f"{label}: {part!r} needs two different hours between 0 and 23")
        out.append((start, end))
    if len(_quiet_hours(out)) == 24:
        raise ValueError(f"{label}: every hour of the day is quiet, so nothing would ever be sent")
    return tuple(out)


def _quiet_hours(ranges) -> set[int]:
    """The hours of the day that [start, end) ranges cover (a range with start > end wraps past midnight)."""
    return {hour for start, end in ranges for hour in range(24)
            if ((start <= hour < end) if start < end else (hour >= start or hour < end))}  # fmt: skip


def _blackouts(text: str, label: str = "CSE_QUIET_BLACKOUTS") -> tuple[tuple[date, date], ...]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("..")
        try:
            start, end = date.fromisoformat(first.strip()), date.fromisoformat((last or first).strip())
        except ValueError:
            raise ValueError(f"{label}: {part!r} is not a date or FIRST..LAST (YYYY-MM-DD)") from None
        if end < start:
            raise ValueError(f"{label}: {part!r} ends before it starts")
        out.append((start, end))
    return tuple(out)


def parse_quiet(weekdays: str = "", hours: str = "", blackouts: str = "", default_timezone: str = "UTC") -> QuietRules:
    """Rules from their setting strings: `sat,sun`, `20-8`, `2026-12-24..2026-12-26,2027-01-01`, `Europe/Berlin`."""
    try:
        ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"CSE_DEFAULT_TIMEZONE: {default_timezone!r} is not an IANA timezone") from None
    return QuietRules(_weekdays(weekdays), _hours(hours), _blackouts(blackouts), default_timezone)


def own_rules(weekdays: str, hours: str, blackouts: str, default_timezone: str = "UTC") -> QuietRules:
    """A program's own quiet periods (same syntax as the settings; a ValueError names the field, not a setting)."""
    return QuietRules(_weekdays(weekdays, "weekdays"), _hours(hours, "hours"), _blackouts(blackouts, "blackouts"),
                      default_timezone)  # fmt: skip


def quiet_problems(weekdays: str, hours: str, blackouts: str) -> dict[str, str]:
    """A program's own quiet periods checked (same syntax as the settings): field -> what is wrong, empty if none."""
    problems = {}
    for name, parse, value in (("weekdays", _weekdays, weekdays), ("hours", _hours, hours),
                               ("blackouts", _blackouts, blackouts)):  # fmt: skip
        try:
            parse(value, name)
        except ValueError as error:
            problems[name] = str(error).removeprefix(f"{name}: ")
    return problems
