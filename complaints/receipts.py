"""Receipt codes: the reporter's only key back to a case.

20 characters from a 31-letter alphabet without 0/O and 1/I/L (≈99 bits of randomness), shown
in five groups of four so it can be read aloud and copied: ``K7QP-2MDX-HT4C-9WZR-E3NB``.
Only a keyed hash is stored; lookups go by that hash and end with a constant-time compare.
"""

from __future__ import annotations

import re

from bot.codes import ALPHABET, random_code

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
LENGTH = 20
_CANDIDATE = re.compile(r"[A-Za-z0-9๐-๙][A-Za-z0-9๐-๙\s\-–]{18,40}[A-Za-z0-9๐-๙]")


def new_code() -> str:
    raw = random_code(LENGTH)
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def normalize(text: str) -> str | None:
    """The code's 20 letters, however it was typed (spaces, dashes, lower case, Thai digits), or None."""
    t = text.translate(_THAI_DIGITS).upper()
    letters = "".join(ch for ch in t if ch.isalnum())
    if len(letters) != LENGTH or any(ch not in ALPHABET for ch in letters):
        return None
    return letters


def _code_at(t: str, pos: int) -> tuple[str | None, int]:
    """A whole code starting at ``pos`` of ``t`` and where it ends."""
    m = _CANDIDATE.match(t, pos)
    if m is None:
        return None, pos
    count = 0
    for i, ch in enumerate(m.group(0)):
        if ch.isalnum():
            count += 1
            if count == LENGTH:  # the chunk's shortest prefix holding 20 letters or digits
                code = normalize(m.group(0)[: i + 1])
                return (code, pos + i + 1) if code is not None else (None, pos)
    return None, pos


def split_code(text: str) -> tuple[str | None, str]:
    """A code at the start of ``text`` and what follows it: ("K7QP…", "the rest")."""
    t = text.strip()
    code, end = _code_at(t, 0)
    return (code, t[end:].strip(" -–:\n")) if code is not None else (None, t)


_WORD_START = re.compile(r"(?<![A-Za-z0-9๐-๙])[A-Za-z0-9๐-๙]")


def find_code(text: str) -> str | None:
    """A receipt code anywhere in ``text`` ("ติดตามเรื่อง K7QP-… หน่อยค่ะ"), or None. Words or numbers alone
    (a long account number) are not taken for one: undashed, a code has letters and digits (all but 0.3 %
    of them do); written in its dashed groups, it is taken as it is."""
    for m in _WORD_START.finditer(text):
        code, end = _code_at(text, m.start())
        if code is not None and ("-" in text[m.start():end]
                                 or (any(ch.isdigit() for ch in code) and any(ch.isalpha() for ch in code))):
            return code
    return None


def pretty(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
