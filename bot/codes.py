"""Codes people read aloud and type on a phone — staff invite codes, receipt codes, console link
codes, case and gift references — from one alphabet without 0/O and 1/I/L."""

from __future__ import annotations

import secrets

from sqlalchemy import select

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def random_code(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def code_letters(text: str) -> str:
    """The code's letters however it was typed (lower case, spaces, dashes dropped)."""
    return "".join(ch for ch in text.upper() if ch in ALPHABET)


def unique_reference(session, column, prefix: str, length: int = 6) -> str:
    """A short random reference ("C-7KQ2M9") not yet in ``column``: says nothing about time or order."""
    for _ in range(20):
        ref = prefix + random_code(length)
        if session.scalar(select(column).where(column == ref)) is None:
            return ref
    raise RuntimeError("could not find a free reference")
