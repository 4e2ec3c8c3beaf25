"""Numbers typed by people (query strings, form fields, CLI arguments) read without surprises."""

from __future__ import annotations

MAX_DIGITS = 18  # below 2**63: fits every store's integer column


def whole_number(text: str | None) -> int | None:
    """`text` as a non-negative integer when it is 1–18 ASCII digits, else None.

    `str.isdigit` also accepts '²' and '٣', which `int` then refuses or reads as another digit, and a long enough
    digit string overflows the stores' 64-bit integers: both turned typed input into a server error.
    """
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS):
        return None
    return int(text)
