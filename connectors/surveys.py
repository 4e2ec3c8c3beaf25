"""Survey answers as a vendor reports them (NPS 0-10, CSAT 1-5), in one shape whatever the vendor.

A vendor with surveys names a reader in its registry record (`surveys`): `from_settings(settings)` gives an object
whose `answers(message_ids, since)` returns the answers to the survey messages we sent (by the vendor's message
id) and the ratings given since `since`. The app stores them per contact and account (app/programs/surveys.py).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

KINDS = ("nps", "csat")
_TAGS = re.compile(r"<[^>]+>")
_SCORE = re.compile(r"(?<![\d.,/-])(10|[0-9])(?!\d)(?![.,]\d)")


@dataclass(frozen=True)
class SurveyAnswer:
    kind: str  # nps | csat
    score: float
    answered_at: datetime  # naive UTC
    external_id: str  # the vendor's id of the answer (dedupes a re-read)
    contact_email: str | None
    message_id: str | None = None  # the survey message it answers (NPS replies)
    remark: str | None = None


class SurveyReader(Protocol):
    """What a vendor's survey reader offers (named by its registry record's `surveys`)."""

    def answers(self, message_ids: list[str], since: datetime | None) -> list[SurveyAnswer]: ...

    def close(self) -> None: ...


def nps_score(body: str | None) -> int | None:
    """The score in a reply to "how likely ... (0-10)": the first whole number 0-10 in its text (HTML stripped),
    e.g. "9", "<p>I'd say 8/10</p>", "10 - great"; None when there is none ("not now")."""
    if not body:
        return None
    text = html.unescape(_TAGS.sub(" ", body))
    found = _SCORE.search(text)
    return int(found.group(1)) if found else None
