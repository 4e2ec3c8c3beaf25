"""An event log read once into per-account, day and event-type sums, with distinct users per account and day.

The features an imported log feeds need nothing finer than these sums: the daily rollups (AccountDay: logins,
feature uses and features mask, API calls, ...) and the per-event-type 30/60/90-day windows and per-user rates of
the history panel. So the store keeps the sums (UsageDay), not the raw rows: 12 M events become ~3 M sums.

Each chunk of the file (pandas' C parser, `chunk_rows` rows) is reduced with integers only: account ids and user
ids are interned to integer keys, event types looked up once per distinct value, days taken from the timestamps
(read as fixed-width bytes, not a Python string per row: see _days), and (account, day, type) packed into one
int64 key whose counts one `value_counts` gives. Distinct users need the (account-day, user) pairs themselves,
since a day can straddle two chunks; they are deduplicated per chunk and once more at the end.

Every reduced chunk is saved to the import's folder (NumPy `.npz`, no pickles) with the ids it interned first, so
an import killed part way resumes after the last saved chunk without aggregating it again.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES

from app.history.mapping import EventsSpec
from engine.canonical import EventKind

CHECKPOINT_FILE = "checkpoint.json"
USER_DAY_COLUMN = "logins"  # with a user column, each user active on a day counts as one login that day
# The AccountDay count each kind of imported event adds to (app.store.load.USAGE_COUNTS; kinds without one, such
# as milestones, are kept in the per-type counts only).
COLUMN_OF_KIND = {
    EventKind.LOGIN.value: "logins", EventKind.FEATURE_USED.value: "feature_uses",
    EventKind.API_CALL.value: "api_calls", EventKind.TICKET_OPENED.value: "tickets_opened",
    EventKind.TICKET_CLOSED.value: "tickets_closed", EventKind.ESCALATION.value: "escalations",
    EventKind.SELF_SERVICE.value: "self_service", EventKind.OUTREACH.value: "outreach",
    EventKind.EMAIL_REPLIED.value: "replies", EventKind.MEETING.value: "meetings",
    EventKind.SURVEY_RESPONSE.value: "survey_count", EventKind.DATA_EXPORT.value: "churn_signals",
    EventKind.CANCELLATION_INQUIRY.value: "churn_signals", EventKind.COMPETITOR_MENTION.value: "churn_signals",
}  # fmt: skip
USAGE_COLUMNS = tuple(dict.fromkeys(COLUMN_OF_KIND.values()))
DAY_BITS, TYPE_BITS = 20, 10  # a day since 1970 fits in 20 bits until 4840; up to 1,024 event types
MAX_TYPES = 1 << TYPE_BITS
US_PER_DAY = 86_400 * 10**6
TIME_WIDTH = 40  # bytes a timestamp is read into; a longer one counts as unreadable

Progress = Callable[[str], None] | None


@dataclass(frozen=True)
class TypeLookup:
    """The mapped event types in a fixed order: raw value -> index, and each index's kind and feature."""

    index: dict[str, int]
    kinds: list[str]
    features: list[str]

    @classmethod
    def of(cls, spec: EventsSpec, names: dict[str, str] | None) -> TypeLookup:
        types = spec.event_types()
        if len(types) > MAX_TYPES:
            raise ValueError(f"at most {MAX_TYPES} event types can be mapped, got {len(types)}")
        raw_of = {name: raw for raw, name in names.items()} if names else {}
        index, kinds, features = {}, [], []
        for label, event_type in types.items():
            index[raw_of.get(label, label)] = len(kinds)
            kinds.append(event_type.kind.value)
            features.append(event_type.feature or label)
        return cls(index, kinds, features)


def id_texts(values) -> list[str]:
    """Ids as text whatever type the parser gave them: 42 and 42.0 (a numeric column with gaps) are both "42"."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return [str(int(v)) if float(v).is_integer() else str(v) for v in array]
    return [str(v) for v in array]


class Interner:
    """Strings to dense integer keys in first-seen order; a chunk's new strings are its delta for the checkpoint."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.keys: list[str] = []

    def codes(self, column: pd.Series) -> tuple[np.ndarray, list[str]]:
        """The column's integer keys (-1 for missing values) and the strings first seen in it."""
        local, uniques = pd.factorize(column, use_na_sentinel=True)
        texts = id_texts(uniques)
        new = [u for u in dict.fromkeys(texts) if u not in self.ids]
        self.extend(new)
        mapping = np.fromiter((self.ids[u] for u in texts), dtype=np.int64, count=len(texts))
        return np.where(local >= 0, mapping[np.maximum(local, 0)] if len(mapping) else -1, -1), new

    def extend(self, keys: list[str]) -> None:
        for key in keys:
            self.ids[key] = len(self.keys)
            self.keys.append(key)


@dataclass
class Sums:
    """Counts per packed (account, day, type) key, and deduplicated (account-day, user) pairs."""

    keys: np.ndarray
    counts: np.ndarray
    user_days: np.ndarray
    users: np.ndarray


@dataclass
class ReadStats:
    events_read: int = 0
    chunks: int = 0
    chunks_skipped: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)


def _days(column: pd.Series) -> np.ndarray:
    """Whole days since 1970 of each timestamp, in the wall time it was written (tz-aware: UTC); -1 if unreadable.

    The parser hands the timestamps over as fixed-width bytes (TIME_WIDTH), not one Python string per row, which
    was half the cost of reading the log. A column of one ISO shape (`_uniform_iso`) is parsed by NumPy in C;
    anything else by pandas as before (`_parsed`)."""
    raw = np.asarray(column, dtype=f"S{TIME_WIDTH}")
    stamps = _uniform_iso(raw)
    if stamps is None:
        stamps = _parsed(raw)
    days = stamps.view(np.int64) // US_PER_DAY  # NaT: a large negative number
    return np.where((days < 0) | (days >= 1 << DAY_BITS), -1, days)


def _uniform_iso(raw: np.ndarray) -> np.ndarray | None:
    """The timestamps as datetime64[us] if every non-empty one has the shape of the first (same length, digits and
    separators at the same places) and that shape is an ISO date (`YYYY-MM-DD...`) NumPy reads without a time zone;
    else None. One shape is also what pandas infers its format from, so both read the same values the same way."""
    if not len(raw):
        return np.empty(0, dtype="datetime64[us]")
    width = np.char.str_len(raw)
    filled = width > 0
    if not filled.any():
        return np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[us]")
    length = int(width[filled][0])
    if length < 10 or length >= TIME_WIDTH or (width[filled] != length).any():
        return None
    grid = (raw if filled.all() else raw[filled]).view(np.uint8).reshape(-1, TIME_WIDTH)[:, :length]
    first = grid[0]
    if first[4] != ord("-") or first[7] != ord("-"):
        return None
    digit = first - np.uint8(ord("0")) <= 9  # bytes wrap around: anything below "0" is large
    if not ((grid[:, digit] - np.uint8(ord("0")) <= 9).all() and (grid[:, ~digit] == first[~digit]).all()):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a time zone (+05:00, Z): NumPy warns and drops it
            return raw.astype("datetime64[us]")
    except (ValueError, UserWarning, DeprecationWarning):
        return None


def _parsed(raw: np.ndarray) -> np.ndarray:
    """pandas' reading of the timestamps (format inferred, tz-aware as UTC, unreadable as NaT), with the parser's
    missing-value words (NA, null, ...) missing, as the C parser would have made them."""
    text = pd.Series(np.char.decode(raw, "utf-8", errors="replace"), dtype=object)
    text = text.where(~text.isin(STR_NA_VALUES) & (np.char.str_len(raw) < TIME_WIDTH), None)
    parsed = pd.to_datetime(text, errors="coerce", utc=True).dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[us]")


def reduce_chunk(chunk: pd.DataFrame, spec: EventsSpec, types: TypeLookup, accounts: Interner, users: Interner,
                 stats: ReadStats) -> tuple[Sums, list[str], list[str]]:  # fmt: skip
    """One chunk as Sums, plus the account and user ids it interned first (its checkpoint delta)."""
    raw = chunk[spec.type]
    local, uniques = pd.factorize(raw, use_na_sentinel=True)
    type_of = np.fromiter((types.index.get(u, -1) for u in id_texts(uniques)), dtype=np.int64, count=len(uniques))
    kind = np.where(local >= 0, type_of[np.maximum(local, 0)] if len(type_of) else -1, -1)
    if (kind < 0).any():
        for value, n in raw[kind < 0].value_counts(dropna=False).items():
            stats.unmapped[str(value)] = stats.unmapped.get(str(value), 0) + int(n)
    account, new_accounts = accounts.codes(chunk[spec.account])
    day = _days(chunk[spec.time])
    valid = (account >= 0) & (day >= 0)
    account_day = (account << DAY_BITS) | day
    mapped = valid & (kind >= 0)
    counts = pd.Series((account_day[mapped] << TYPE_BITS) | kind[mapped]).value_counts(sort=False)
    new_users: list[str] = []
    user_days = users_of = np.empty(0, dtype=np.int64)
    if spec.user:
        user, new_users = users.codes(chunk[spec.user])
        present = mapped & (user >= 0)
        user_days, users_of = unique_pairs(account_day[present], user[present])
    sums = Sums(counts.index.to_numpy(dtype=np.int64), counts.to_numpy(dtype=np.int64), user_days, users_of)
    return sums, new_accounts, new_users


class Checkpoint:
    """The reduced chunks saved so far for one file, so a re-run resumes after them; another file starts over."""

    def __init__(self, folder: Path, path: Path, spec: EventsSpec, types: TypeLookup) -> None:
        stat = path.stat()
        self.folder = folder
        self.file = folder / CHECKPOINT_FILE
        self.fingerprint = _as_json({"path": str(path), "size": stat.st_size, "mtime": stat.st_mtime,
                            "columns": [spec.account, spec.time, spec.type, spec.user], "chunk_rows": spec.chunk_rows,
                            "types": [sorted(types.index.items()), types.kinds, types.features]})  # fmt: skip
        saved = json.loads(self.file.read_text()) if self.file.exists() else {}
        self.same_file = saved.get("fingerprint") == self.fingerprint
        self.done = int(saved.get("chunks_done", 0)) if self.same_file else 0
        self.complete = bool(saved.get("complete")) and self.same_file

    def _chunk_file(self, number: int) -> Path:
        return self.folder / f"usage-{number:06d}.npz"

    def save_chunk(self, number: int, sums: Sums, new_accounts: list[str], new_users: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ids = {"new_accounts": np.array(new_accounts, dtype=str), "new_users": np.array(new_users, dtype=str)}
        with open(self._chunk_file(number), "wb") as out:  # np.savez would add ".npz" to a temporary name
            np.savez(out, keys=sums.keys, counts=sums.counts, user_days=sums.user_days, users=sums.users, **ids)
        self._write(number, complete=False)

    def load_chunk(self, number: int) -> tuple[Sums, list[str], list[str]]:
        with np.load(self._chunk_file(number), allow_pickle=False) as saved:
            sums = Sums(saved["keys"], saved["counts"], saved["user_days"], saved["users"])
            return sums, saved["new_accounts"].tolist(), saved["new_users"].tolist()

    def finish(self, chunks: int) -> None:
        self._write(chunks, complete=True)

    def restart(self) -> None:
        self.done, self.complete = 0, False

    def _write(self, chunks_done: int, complete: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "chunks_done": chunks_done, "complete": complete}))
        os.replace(tmp, self.file)


def _as_json(value: dict) -> dict:
    """The value as it reads back from JSON (tuples become lists), so a saved fingerprint compares equal."""
    return json.loads(json.dumps(value))


def unique_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs of two non-negative int64 arrays, hashed as one packed int64 when the
    values leave room for it (the usual case), else as a two-column frame."""
    if not len(first):
        return first, second
    shift = int(second.max()).bit_length()
    if int(first.max()).bit_length() + shift < 63:
        packed = pd.unique((first << shift) | second)
        return packed >> shift, packed & ((1 << shift) - 1)
    pairs = pd.DataFrame({"a": first, "b": second}).drop_duplicates()
    return pairs["a"].to_numpy(), pairs["b"].to_numpy()


def _chunks(path: Path, sep: str, spec: EventsSpec) -> Iterator[pd.DataFrame]:
    """The log in chunks of `chunk_rows`; ids keep the parser's types (numbers parse far faster than text) and are
    made text once per distinct value (id_texts); timestamps come as fixed-width bytes (see _days)."""
    columns = [c for c in (spec.account, spec.time, spec.type, spec.user) if c]
    return pd.read_csv(path, sep=sep, usecols=columns, dtype={spec.time: f"S{TIME_WIDTH}"}, chunksize=spec.chunk_rows)


def read_usage(spec: EventsSpec, path: Path, sep: str, types: TypeLookup, feature_bits: dict[str, int],
               checkpoint: Checkpoint, stats: ReadStats, progress: Progress = None) -> pd.DataFrame:  # fmt: skip
    """The whole log as one row per account and day (see _usage_rows), in one pass (see the module doc)."""
    accounts, users = Interner(), Interner()
    parts: list[Sums] = []
    number = 0
    for number, chunk in enumerate(_chunks(path, sep, spec), start=1):
        if number <= checkpoint.done:
            sums, new_accounts, new_users = checkpoint.load_chunk(number)
            accounts.extend(new_accounts)
            users.extend(new_users)
            stats.chunks_skipped += 1
        else:
            sums, new_accounts, new_users = reduce_chunk(chunk, spec, types, accounts, users, stats)
            checkpoint.save_chunk(number, sums, new_accounts, new_users)
            stats.chunks += 1
        stats.events_read += len(chunk)
        parts.append(sums)
        if progress:
            progress(f"chunk {number}: {stats.events_read:,} events read")
    checkpoint.finish(number)
    return _usage_rows(parts, types, accounts, feature_bits)


def _usage_rows(parts: list[Sums], types: TypeLookup, accounts: Interner, feature_bits: dict[str, int]) -> pd.DataFrame:
    """The chunks' sums added up into one row per account and day: AccountDay counts, features mask, distinct
    users and the per-type counts as text (see app.store.models.UsageDay). Integer arrays throughout, each chunk's
    arrays let go once merged, and the text built a block of days at a time, to keep the peak memory low."""
    users = _distinct_users(parts)
    empty = np.empty(0, dtype=np.int64)
    keys = np.concatenate([p.keys for p in parts]) if parts else empty
    counts = np.concatenate([p.counts for p in parts]) if parts else empty
    parts.clear()
    order = np.argsort(keys, kind="stable")  # sorted: each account-day's types are together
    keys, counts = keys[order], counts[order]
    del order
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else empty
    packed, n = keys[first], np.add.reduceat(counts, first) if len(first) else empty  # the chunks' sums added up
    del keys, counts, first
    type_index, day_key = packed & (MAX_TYPES - 1), packed >> TYPE_BITS
    del packed
    days, row = np.unique(day_key, return_inverse=True)
    del day_key
    columns: dict[str, np.ndarray] = {}
    column_code = np.array([USAGE_COLUMNS.index(COLUMN_OF_KIND[k]) if k in COLUMN_OF_KIND else -1
                            for k in types.kinds], dtype=np.int64)[type_index]  # fmt: skip
    for i, column in enumerate(USAGE_COLUMNS):
        hit = column_code == i
        columns[column] = np.bincount(row[hit], weights=n[hit], minlength=len(days)).astype(np.int64)
    del column_code
    type_bits = [feature_bits.get(f, -1) if k == EventKind.FEATURE_USED.value else -1
                 for k, f in zip(types.kinds, types.features, strict=True)]  # fmt: skip
    bit_of = np.array(type_bits, dtype=np.int64)[type_index]
    masks = np.zeros(len(days), dtype=np.int64)
    np.bitwise_or.at(masks, row[bit_of >= 0], np.left_shift(1, bit_of[bit_of >= 0]))
    del bit_of
    columns["features_mask"] = masks
    columns["active_users"] = users.reindex(days, fill_value=0).to_numpy(dtype=np.int64)
    columns[USER_DAY_COLUMN] = columns[USER_DAY_COLUMN] + columns["active_users"]  # each user-day: one login
    columns["types"] = _type_text(row, type_index, n, types)
    keys_of = np.asarray(accounts.keys, dtype=object)
    account_key = keys_of[days >> DAY_BITS] if len(days) else np.empty(0, dtype=object)
    day = (days & ((1 << DAY_BITS) - 1)).astype("datetime64[D]")
    return pd.DataFrame({"account_key": account_key, "day": day, **columns})


def _distinct_users(parts: list[Sums]) -> pd.Series:
    """Distinct users per account-day key over all chunks (a day may straddle two)."""
    if not any(len(p.user_days) for p in parts):
        return pd.Series(dtype=np.int64)
    days, _ = unique_pairs(np.concatenate([p.user_days for p in parts]), np.concatenate([p.users for p in parts]))
    for p in parts:
        p.user_days = p.users = np.empty(0, dtype=np.int64)
    return pd.Series(days).value_counts(sort=False)


TEXT_BLOCK = 200_000  # (account-day, type) counts turned into text at a time


def _type_text(row: np.ndarray, type_index: np.ndarray, counts: np.ndarray, types: TypeLookup) -> np.ndarray:
    """'feature:count,...' per account-day (`row`: its sorted position), features in mapping order."""
    feature_codes, feature_names = pd.factorize(np.asarray(types.features, dtype=object))
    feature = feature_codes[type_index]
    if len(feature_names) < len(types.features):  # two raw types share a feature: add them up
        summed = pd.Series(counts).groupby([row, feature], sort=True).sum()
        row, feature = (summed.index.get_level_values(i).to_numpy() for i in (0, 1))
        counts = summed.to_numpy()
    labels = np.asarray([f"{name}:" for name in feature_names], dtype=object)
    texts = np.empty(int(row[-1]) + 1 if len(row) else 0, dtype=object)
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else np.empty(0, dtype=np.int64)
    for block in range(0, len(starts), TEXT_BLOCK):
        first = starts[block]
        stop = starts[block + TEXT_BLOCK] if block + TEXT_BLOCK < len(starts) else len(row)
        pairs = labels[feature[first:stop]] + counts[first:stop].astype(str).astype(object) + ","
        joined = np.add.reduceat(pairs, starts[block : block + TEXT_BLOCK] - first)  # concatenation per day
        texts[row[starts[block : block + TEXT_BLOCK]]] = [text[:-1] for text in joined]
    return texts
