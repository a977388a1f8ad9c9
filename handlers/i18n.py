"""The message catalog: every user-facing text in Thai and English, as data (messages.toml)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

LANGS = ("th", "en")
CATALOG_FILE = Path(__file__).with_name("messages.toml")


class MissingText(KeyError):
    pass


@cache
def catalog() -> dict[str, dict[str, str]]:
    with CATALOG_FILE.open("rb") as fh:
        return tomllib.load(fh)


def t(key: str, lang: str = "th", /, **values: object) -> str:
    entry = catalog().get(key)
    if entry is None:
        raise MissingText(key)
    text = entry.get(lang) or entry["th"]
    return text.format(**values) if values else text


def both(key: str, /, **values: object) -> str:
    """Thai first, English after: for texts that must be read before a language is chosen."""
    return f"{t(key, 'th', **values)}\n\n{t(key, 'en', **values)}"
