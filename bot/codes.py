"""Codes people read aloud and type on a phone — staff invite codes, receipt codes, console link
codes, case and gift references — from one alphabet without 0/O and 1/I/L."""

from __future__ import annotations

import secrets

from sqlalchemy import select

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def random_code(length: int, *, with_digit: bool = False) -> str:
    """``with_digit``: at least one digit, so the code is never an ordinary word ("FEEDBACK")."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if not with_digit or any(ch.isdigit() for ch in code):
            return code


def code_letters(text: str) -> str:
    """The code's letters however it was typed (lower case, spaces, dashes dropped, Thai digits)."""
    return "".join(ch for ch in text.translate(THAI_DIGITS).upper() if ch in ALPHABET)


def unique_reference(session, column, prefix: str, length: int = 6) -> str:
    """A short random reference ("C-7KQ2M9") not yet in ``column``: says nothing about time or order."""
    for _ in range(20):
        ref = prefix + random_code(length)
        if session.scalar(select(column).where(column == ref)) is None:
            return ref
    raise RuntimeError("could not find a free reference")
