"""The knowledge base as versioned data: one TOML file per entry in ``integrity/kb/<id>.toml``.

An entry (every key required except ``read_more``)::

    id = "gift.limit"                      # the file's name without .toml
    title_th = "..."                       # ≤ 40 characters: titles label buttons and quick replies
    title_en = "..."
    answer_th = \"\"\"...\"\"\"                   # plain text for LINE (no markdown), a few lines
    answer_en = \"\"\"...\"\"\"
    read_more = "https://..."              # optional, https only
    related = ["gift.policy"]              # ids of other entries
    reviewed = 2026-11-22                  # a TOML date, not in the future
    needs_legal_review = true              # states legal figures the office's legal owner must confirm
    [[sources]]                            # at least one: law section, announcement, regulation
    th = "..."
    en = "..."
    [examples]                             # questions as people type them: ≥ 6 Thai, ≥ 3 English
    th = ["...", ...]
    en = ["...", ...]

``load_entries`` reads the files leniently (a file that is not TOML at all raises ``KBError``);
``validate`` lists every problem as one line of text, so ``itabot kb validate`` can print them and
the tests can require none. The content is data: the office's content owner edits the files (or
the console's copy of them), never code.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

KB_DIR = Path(__file__).resolve().parent / "kb"

#: The entries issue #7 asks for; ``validate`` reports any that are missing.
REQUIRED_IDS: tuple[str, ...] = (
    "gift.policy", "gift.limit", "gift.offered", "gift.festival", "gift.relatives", "gift.superior",
    "gift.benefits", "gift.report", "gift.penalty", "gift.citizen", "bribe.fee", "property.use",
    "coi.basics", "donation.conditions", "complaint.how", "complaint.anonymous", "complaint.protection",
    "complaint.status", "complaint.general", "ita.what", "survey.iit", "survey.eit", "survey.deadline",
    "survey.anonymous",
)

LANGS = ("th", "en")
KEYS = frozenset({"id", "title_th", "title_en", "answer_th", "answer_en", "read_more", "related", "reviewed",
                  "needs_legal_review", "sources", "examples"})
OPTIONAL_KEYS = frozenset({"read_more"})
MIN_EXAMPLES = {"th": 6, "en": 3}
MAX_TITLE = 40
MAX_ANSWER = 1000

_ID = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
# Markdown LINE would show literally: **bold**, __bold__, `code`, [text](url), "# heading" lines.
_MARKDOWN = re.compile(r"\*\*|__|`|\[[^\]\n]+\]\([^)\n]+\)|^\s{0,3}#{1,6}\s", re.MULTILINE)
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_NOISE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")


class KBError(Exception):
    """A knowledge-base file that cannot be read as TOML (or a folder that does not exist)."""


@dataclass
class Source:
    th: str
    en: str

    def text(self, lang: str) -> str:
        return self.th if lang == "th" else self.en


@dataclass
class Entry:
    """One entry, with exactly the keys of its file (``dataclasses.asdict`` gives its content).

    The file it came from and its raw TOML table are kept as ``entry.file`` and ``entry.raw``
    (plain attributes, not fields), so ``validate`` can report what the file really says.
    """

    id: str
    title_th: str
    title_en: str
    answer_th: str
    answer_en: str
    sources: list[Source]
    examples: dict[str, list[str]]
    related: list[str]
    reviewed: date | None
    needs_legal_review: bool
    read_more: str | None = None

    def __post_init__(self) -> None:
        self.file: Path | None = None
        self.raw: dict[str, Any] | None = None

    def title(self, lang: str) -> str:
        return self.title_th if lang == "th" else self.title_en

    def answer(self, lang: str) -> str:
        return self.answer_th if lang == "th" else self.answer_en

    def examples_for(self, lang: str) -> list[str]:
        return list(self.examples.get(lang, []))

    def to_dict(self) -> dict[str, Any]:
        """The entry as its TOML table would be (``read_more`` left out when there is none)."""
        d: dict[str, Any] = {
            "id": self.id, "title_th": self.title_th, "title_en": self.title_en,
            "answer_th": self.answer_th, "answer_en": self.answer_en,
            "related": list(self.related), "reviewed": self.reviewed,
            "needs_legal_review": self.needs_legal_review,
            "sources": [{"th": s.th, "en": s.en} for s in self.sources],
            "examples": {k: list(v) for k, v in self.examples.items()},
        }
        if self.read_more is not None:
            d["read_more"] = self.read_more
        return d


def normalize_question(text: str) -> str:
    """For comparing questions: NFC, Arabic digits, case folded, no spaces or zero-width characters,
    no trailing "?!.". (Matching has its own, richer folding in ``integrity.matcher``.)"""
    t = unicodedata.normalize("NFC", text).translate(_THAI_DIGITS).casefold()
    return _NOISE.sub("", t).rstrip("?!.？")


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _str_list(v: Any) -> list[str]:
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def entry_from_dict(data: Mapping[str, Any], file: Path | None = None) -> Entry:
    """An ``Entry`` from a TOML table, leniently: wrong or missing values become empty ones here
    and are reported by ``validate``, which looks at the table itself (``entry.raw``)."""
    raw_sources = data.get("sources")
    sources = [Source(th=_str(s.get("th")), en=_str(s.get("en")))
               for s in (raw_sources if isinstance(raw_sources, list) else []) if isinstance(s, dict)]
    ex = data.get("examples")
    examples = {lang: _str_list(ex.get(lang) if isinstance(ex, dict) else None) for lang in LANGS}
    reviewed = data.get("reviewed")
    read_more = data.get("read_more")
    entry = Entry(
        id=_str(data.get("id")),
        title_th=_str(data.get("title_th")), title_en=_str(data.get("title_en")),
        answer_th=_str(data.get("answer_th")), answer_en=_str(data.get("answer_en")),
        sources=sources, examples=examples, related=_str_list(data.get("related")),
        reviewed=reviewed if type(reviewed) is date else None,
        needs_legal_review=data.get("needs_legal_review") is True,
        read_more=read_more if isinstance(read_more, str) else None,
    )
    entry.file = file
    entry.raw = dict(data)
    return entry


def _files(path: str | Path | None) -> list[Path]:
    root = Path(path) if path is not None else KB_DIR
    if root.is_file():
        return [root]
    if root.is_dir():
        return sorted(root.glob("*.toml"))
    raise KBError(f"{root}: no such file or folder")


def _load(f: Path) -> Entry:
    try:
        data = tomllib.loads(f.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KBError(f"{f.name}: not valid TOML: {exc}") from exc
    return entry_from_dict(data, f)


def load_entries(path: str | Path | None = None) -> list[Entry]:
    """Every ``*.toml`` entry in ``path`` (default ``integrity/kb/``; a single file also works),
    sorted by file name. Raises ``KBError`` for a file that is not valid TOML."""
    return [_load(f) for f in _files(path)]


def check(path: str | Path | None = None, *, today: date | None = None,
          required_ids: Iterable[str] = REQUIRED_IDS) -> list[str]:
    """``load_entries`` then ``validate``: every problem, an unreadable file among them (the others are still
    checked; a required id is not reported missing when an unreadable file is named after it)."""
    try:
        files = _files(path)
    except KBError as exc:
        return [str(exc)]
    entries, unreadable = [], []
    for f in files:
        try:
            entries.append(_load(f))
        except KBError as exc:
            unreadable.append((f, str(exc)))
    unread_ids = {f.stem for f, _ in unreadable}
    return [line for _, line in unreadable] + validate(
        entries, today=today, required_ids=[i for i in required_ids if i not in unread_ids])


class Problem(str):
    """One problem: a line of English, "<where>: <what>", as ``itabot kb validate`` prints it. ``where`` is the
    file (or the entry's id), ``code`` and ``values`` say what is wrong so that the console can say it in Thai
    and English from its own catalog (``kb_problem_<code>``)."""

    where: str
    code: str
    values: dict[str, Any]

    def __new__(cls, where: str, code: str, english: str, **values: Any) -> Problem:
        line = super().__new__(cls, f"{where}: {english}")
        line.where, line.code, line.values = where, code, values
        return line


def validate(entries: Iterable[Entry], *, today: date | None = None,
             required_ids: Iterable[str] = REQUIRED_IDS) -> list[Problem]:
    """Every problem with these entries, one line each ("<file or id>: what is wrong"); empty when
    the knowledge base is sound. ``today`` (default: today) is the latest allowed review date;
    ``required_ids`` are the ids that must be present."""
    entries = list(entries)
    today = today or date.today()
    problems: list[Problem] = []
    ids = Counter(e.id for e in entries if e.id)
    known = set(ids)
    seen_examples: dict[str, str] = {}

    for e in entries:
        where = e.file.name if e.file is not None else (e.id or "<entry without id>")
        data = e.raw if e.raw is not None else e.to_dict()

        def bad(code: str, english: str, where: str = where, **values: Any) -> None:
            problems.append(Problem(where, code, english, **values))

        for k in sorted(KEYS - OPTIONAL_KEYS - data.keys()):
            bad("missing_key", f"missing key {k!r}", key=k)
        for k in sorted(data.keys() - KEYS):
            bad("unknown_key", f"unknown key {k!r}", key=k)

        # id
        eid = data.get("id")
        if "id" in data:
            if not isinstance(eid, str):
                bad("id_not_string", "'id' must be a string")
            elif not _ID.match(eid):
                bad("id_format", f"id {eid!r} must look like 'topic.name' (lower case letters, digits, _ and dots)",
                    id=eid)
            if e.file is not None and isinstance(eid, str) and eid != e.file.stem:
                bad("id_not_file_name", f"id {eid!r} does not match the file name {e.file.stem!r}", id=eid,
                    file=e.file.stem)
            if isinstance(eid, str) and ids[eid] > 1:
                bad("id_duplicate", f"duplicate id {eid!r} ({ids[eid]} entries)", id=eid, n=ids[eid])

        # titles and answers
        for lang in LANGS:
            for key, limit in ((f"title_{lang}", MAX_TITLE), (f"answer_{lang}", MAX_ANSWER)):
                if key not in data:
                    continue
                v = data[key]
                if not isinstance(v, str):
                    bad("not_string", f"{key!r} must be a string", key=key)
                elif not v.strip():
                    bad("empty", f"{key!r} is empty", key=key)
                elif len(v.strip()) > limit:
                    bad("too_long", f"{key!r} is {len(v.strip())} characters long (at most {limit})", key=key,
                        length=len(v.strip()), limit=limit)
                elif key.startswith("answer") and _MARKDOWN.search(v):
                    bad("markdown", f"{key!r} contains markdown; LINE shows plain text", key=key)
                elif key.startswith("title") and "\n" in v:
                    bad("title_lines", f"{key!r} must be one line", key=key)

        # read_more
        if "read_more" in data:
            url = data["read_more"]
            if not isinstance(url, str):
                bad("not_string", "'read_more' must be a string", key="read_more")
            elif not re.fullmatch(r"https://[^\s/]+\.[^\s]+", url):
                bad("read_more_not_https", f"'read_more' must be an https:// address, not {url!r}", url=url)

        # related
        if "related" in data:
            rel = data["related"]
            if not isinstance(rel, list) or not all(isinstance(r, str) for r in rel):
                bad("related_not_list", "'related' must be a list of entry ids")
            else:
                for r in rel:
                    if r not in known:
                        bad("related_unknown", f"related id {r!r} does not exist", id=r)
                    elif r == eid:
                        bad("related_self", "an entry cannot be related to itself")
                for r, n in Counter(rel).items():
                    if n > 1:
                        bad("related_repeated", f"related id {r!r} is listed {n} times", id=r, n=n)

        # reviewed
        if "reviewed" in data:
            rv = data["reviewed"]
            if type(rv) is not date:
                bad("reviewed_not_date", f"'reviewed' must be a TOML date such as 2026-11-22, not {rv!r}", value=rv)
            elif rv > today:
                bad("reviewed_future", f"'reviewed' {rv.isoformat()} is in the future", date=rv)

        if "needs_legal_review" in data and not isinstance(data["needs_legal_review"], bool):
            bad("legal_not_bool", "'needs_legal_review' must be true or false")

        # sources
        if "sources" in data:
            src = data["sources"]
            if not isinstance(src, list):
                bad("sources_not_list", "'sources' must be an array of tables ([[sources]] with th and en)")
            elif not src:
                bad("sources_none", "no sources: every answer needs at least one [[sources]]")
            else:
                for i, s in enumerate(src, 1):
                    if not isinstance(s, dict):
                        bad("source_not_table", f"source {i} must be a table with th and en", n=i)
                        continue
                    for k in sorted({"th", "en"} - s.keys()):
                        bad("source_missing_key", f"source {i}: missing key {k!r}", n=i, lang=k)
                    for k in sorted(s.keys() - {"th", "en"}):
                        bad("source_unknown_key", f"source {i}: unknown key {k!r}", n=i, key=k)
                    for k in ("th", "en"):
                        if k in s and (not isinstance(s[k], str) or not s[k].strip()):
                            bad("source_empty", f"source {i}: {k!r} must be a non-empty string", n=i, lang=k)

        # examples
        if "examples" in data:
            ex = data["examples"]
            if not isinstance(ex, dict):
                bad("examples_not_table", "'examples' must be a table with th and en lists")
            else:
                for k in sorted(ex.keys() - set(LANGS)):
                    bad("examples_unknown_key", f"examples: unknown key {k!r}", key=k)
                for lang in LANGS:
                    qs = ex.get(lang)
                    if qs is None:
                        bad("examples_missing_key", f"examples: missing key {lang!r}", lang=lang)
                        continue
                    if not isinstance(qs, list) or not all(isinstance(q, str) for q in qs):
                        bad("examples_not_list", f"examples.{lang} must be a list of strings", lang=lang)
                        continue
                    if any(not q.strip() for q in qs):
                        bad("examples_empty", f"examples.{lang} has an empty question", lang=lang)
                    good = [q for q in qs if q.strip()]
                    if len(good) < MIN_EXAMPLES[lang]:
                        bad("examples_too_few", f"examples.{lang} has {len(good)} questions (at least "
                            f"{MIN_EXAMPLES[lang]})", lang=lang, count=len(good), min=MIN_EXAMPLES[lang])
                    for q in good:
                        n = normalize_question(q)
                        owner = seen_examples.get(n)
                        if owner is None:
                            seen_examples[n] = where
                        elif owner == where:
                            bad("example_twice", f"example {q!r} appears twice", question=q)
                        else:
                            bad("example_elsewhere", f"example {q!r} is also an example of {owner}", question=q,
                                other=owner)

    missing = [r for r in required_ids if r not in known]
    if missing:
        problems.append(Problem("knowledge base", "required_missing", "required entries missing: " + ", ".join(missing),
                                ids=", ".join(missing)))
    return problems
