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


def split_code(text: str) -> tuple[str | None, str]:
    """A code at the start of ``text`` and what follows it: ("K7QP…", "the rest")."""
    t = text.strip()
    for m in _CANDIDATE.finditer(t):
        if m.start() != 0:
            break
        chunk = m.group(0)
        # The longest prefix of the chunk that is a whole code.
        count = 0
        for i, ch in enumerate(chunk):
            if ch.isalnum():
                count += 1
                if count == LENGTH:
                    code = normalize(chunk[: i + 1])
                    if code is not None:
                        return code, t[i + 1 :].strip(" -–:\n")
                    return None, t
    return None, t


def pretty(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
