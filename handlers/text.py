"""Normalising what people type, so keywords match Thai as it is really written.

Thai has no spaces between words, uses Thai or Arabic digits, and ends sentences with polite
particles (ครับ/ค่ะ/คะ/จ้า…); LINE users also paste zero-width characters and mix in English.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")
# Longest first so "ครับผม" is removed whole, not as "ครับ" + "ผม".
PARTICLES = ("ครับผม", "ค่ะ", "คะ", "ครับ", "คับ", "ค่า", "จ้ะ", "จ้า", "จ๊ะ", "นะคะ", "นะครับ", "น้า", "นะ")
_TRAILING = re.compile(r"(?:\s*(?:{}))+[\s!?.~]*$".format("|".join(sorted(PARTICLES, key=len, reverse=True))))


def thai_digits_to_arabic(text: str) -> str:
    return text.translate(THAI_DIGITS)


# 1000 or 1,000 (groups of three); no more digits than any count an officer types (int() of thousands would raise)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}|[0-9]{1,3}(?:,[0-9]{3}){1,2}")


def typed_whole_number(raw: str | None) -> int | None:
    """A count an officer types into a form: Thai or Arabic digits, spaces around, "1,000" with its thousands
    separator; None for anything else ("1,00", "1.000", "10 วัน")."""
    value = thai_digits_to_arabic((raw or "").strip())
    return int(value.replace(",", "")) if _WHOLE_NUMBER.fullmatch(value) else None


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


# Politeness around a command or a code: a leading please/ขอ (not ขอบคุณ), and after it particles, please,
# หน่อย/ด้วย, thanks, emoji and punctuation ("cancel please", "ขอยกเลิกนะคะ", "ติดตาม <code> ค่ะ 🙏").
_POLITE_AFTER = ("ค้าบ", "คร้าบ", "please", "pls", "plz", "หน่อย", "ด้วย", "ขอบคุณ", "thanks", "thank you",
                 *PARTICLES)
_POLITE = re.compile(r"^(?:please|pls|plz|ขอ(?!บ))\s*|(?:\s*(?:{})|[^\w\u0e00-\u0e7f])+$".format(
    "|".join(sorted(_POLITE_AFTER, key=len, reverse=True))))


def without_politeness(text: str) -> str:
    """``normalize``d text without the politeness around it (see ``_POLITE``); "" if that is all it was."""
    t = normalize(text)
    for _ in range(3):  # "please … please", "ขอ … หน่อยค่ะ"
        stripped = _POLITE.sub("", t).strip()
        if stripped == t:
            break
        t = stripped
    return t


def keywords(*words: str) -> frozenset[str]:
    return frozenset(normalize(w) for w in words)


# -- amounts of money as people type them --------------------------------------------------------

_DIGIT_WORDS = {"ศูนย์": 0, "หนึ่ง": 1, "สอง": 2, "สาม": 3, "สี่": 4, "ห้า": 5, "หก": 6, "เจ็ด": 7, "แปด": 8, "เก้า": 9}
_PLACES = {"สิบ": 10, "ร้อย": 100, "พัน": 1_000, "หมื่น": 10_000, "แสน": 100_000, "ล้าน": 1_000_000,
           "k": 1_000, "hundred": 100, "thousand": 1_000}
# A number with its thousands separators ("2,000") or its satang ("1,500.50"). More than two decimals
# ("1.500": European grouping, or a typo) is not an amount of baht.
_AMOUNT_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d{{1,2}})?(?![\d.,]))|(?P<word>{}|ยี่|เอ็ด|นึ่ง|นึง)"
    r"|(?P<place>{}))".format("|".join(_DIGIT_WORDS), "|".join(sorted(_PLACES, key=len, reverse=True))))
_AMOUNT_PREFIXES = ("มูลค่า", "ราคา", "น่าจะ", "ประมาณ", "โดยประมาณ", "ราวๆ", "ราว ๆ", "ราว", "about", "around",
                    "approximately", "approx.", "approx", "roughly", "~", "≈", "฿", "thb")
_AMOUNT_SUFFIXES = ("โดยประมาณ", "ประมาณ", "บาทถ้วน", "บาท", "บ.", "baht", "bht", "thb", "฿", ".-", "-", ".")
MAX_BAHT = 999_999_999


def _strip_affixes(t: str) -> str:
    """``t`` without the words around an amount: "ประมาณ 2,000 บาท" → "2,000"."""
    while True:
        before = t
        for p in _AMOUNT_PREFIXES:
            # an English word must end there: "about2000" yes, "aboutx" no
            if t.startswith(p) and not (p[-1].isascii() and p[-1].isalpha() and t[len(p):][:1].isalpha()):
                t = t[len(p):].lstrip()
        for s in _AMOUNT_SUFFIXES:
            if t.endswith(s) and len(t) > len(s):
                t = t[: -len(s)].rstrip()
        if t == before:
            return t


def parse_amount(text: str | None) -> Decimal | None:
    """An amount of baht as people type it, exactly; None unless it is plainly one amount.

    Arabic or Thai digits, thousands separators and satang ("2,000", "1,500.50"), baht/฿/THB,
    "ประมาณ"/"about"/"~", Thai places after digits or number words ("5 พัน", "1.5 หมื่น",
    "สามพันห้าร้อย", "ยี่สิบเอ็ด"), k ("2.5k"). As Thai is spoken, a digit after พัน/หมื่น/แสน/ล้าน/k is
    the next place down ("สองพันห้า" is 2,500) and นึง after a place is one of it ("พันนึง" is 1,000);
    after ร้อย a digit could be either (105 or 150), so it is not read. Ranges, "more than", other
    words around the number and negative amounts are not read either.
    """
    t = _strip_affixes(normalize(text or "").rstrip(" !?"))
    if not t:
        return None
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(t):
        m = _AMOUNT_TOKEN.match(t, pos)
        if not m or m.end() == pos:
            return None
        kind = next(k for k in ("num", "word", "place") if m[k] is not None)
        tokens.append((kind, m[kind]))
        pos = m.end()
    total, pending, last = Decimal(0), None, None  # last: the place of the previous term
    implied = False  # the previous place had no number before it ("พัน", not "สองพัน")
    for i, (kind, tok) in enumerate(tokens):
        is_last = i == len(tokens) - 1
        if kind != "place":
            if pending is not None:
                return None  # two numbers in a row: "2 3", "สองสาม"
            if tok == "ยี่":  # only in ยี่สิบ
                if is_last or tokens[i + 1][1] != "สิบ":
                    return None
                pending = Decimal(2)
            elif tok in ("เอ็ด", "นึ่ง", "นึง"):  # only last, after a place: สิบเอ็ด; พันนึง
                if not is_last or last is None or (tok != "เอ็ด" and not implied):
                    return None
                total += 1 if tok == "เอ็ด" else 0
            else:
                pending = Decimal(_DIGIT_WORDS[tok]) if kind == "word" else Decimal(tok.replace(",", ""))
            continue
        place = _PLACES[tok]
        if pending is None and tok in ("k", "hundred", "thousand"):
            return None  # "k" alone is not an amount
        implied = pending is None
        if place == 1_000_000:  # ล้าน multiplies everything before it: "หนึ่งล้านห้าแสน", "สิบล้าน"
            if last == 1_000_000:
                return None
            total = ((total + (pending or 0)) or Decimal(1)) * place
        else:
            term = (Decimal(1) if pending is None else pending) * place
            if last is not None and (place >= last or term >= last):
                return None  # "ห้าร้อยสองพัน", "2 พัน 15 ร้อย"
            total += term
        last, pending = place, None
    if pending is not None:
        whole = pending == pending.to_integral_value()
        if last is None:
            total = pending
        elif whole and 1 <= pending <= 9 and last >= 1_000:
            total += pending * last / 10  # สองพันห้า, 2k5: the next place down
        elif whole and 1 <= pending <= 9 and last == 100:
            return None  # ร้อยห้า: 105 or 150?
        elif whole and pending < last:
            total += pending  # สิบห้า, 3 พัน 500, ห้าร้อย 50
        else:
            return None
    elif last is None:
        return None
    if total > MAX_BAHT:
        return None
    return total


def parse_baht(text: str | None) -> int | None:
    """:func:`parse_amount` in whole baht, satang rounded half up (1,500.50 → 1,501; 3000.00 → 3000)."""
    amount = parse_amount(text)
    return None if amount is None else int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))
