"""Normalising what people type, so keywords match Thai as it is really written.

Thai has no spaces between words, uses Thai or Arabic digits, and ends sentences with polite
particles (ครับ/ค่ะ/คะ/จ้า…); LINE users also paste zero-width characters and mix in English.
"""

from __future__ import annotations

import re
import unicodedata

THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")
# Longest first so "ครับผม" is removed whole, not as "ครับ" + "ผม".
PARTICLES = ("ครับผม", "ค่ะ", "คะ", "ครับ", "คับ", "ค่า", "จ้ะ", "จ้า", "จ๊ะ", "นะคะ", "นะครับ", "น้า", "นะ")
_TRAILING = re.compile(r"(?:\s*(?:{}))+[\s!?.~]*$".format("|".join(sorted(PARTICLES, key=len, reverse=True))))


def thai_digits_to_arabic(text: str) -> str:
    return text.translate(THAI_DIGITS)


def normalize(text: str, particles: bool = True) -> str:
    """Lower-cased, NFC, Arabic digits, no zero-width characters, single spaces, no particles.

    Trailing particles are cut without looking for a word boundary (Thai has none to look for), so
    "เมนูค่า" and "ยกเลิกนะ" meet their keywords — and หัวหน้า or มูลค่า lose their ends too. That is
    harmless when both sides of a comparison are normalised (keywords, choices); text that is read
    for its meaning (the Q&A matcher) passes ``particles=False`` and drops particles its own way.
    """
    t = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    t = thai_digits_to_arabic(t).casefold()
    t = _SPACES.sub(" ", t).strip()
    if not particles:
        return t
    stripped = _TRAILING.sub("", t).strip()
    return stripped or t


def keywords(*words: str) -> frozenset[str]:
    return frozenset(normalize(w) for w in words)
