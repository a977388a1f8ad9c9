"""The knowledge base in the database, per office, with revisions; answering; the queue of
questions for an officer; the gift register.

The TOML files in ``integrity/kb/`` are the shipped content. ``sync`` copies them into each
office's ``kb_entries`` (new entries added; entries nobody edited in the console follow the
files; entries edited in the console are left alone) and every change becomes a revision.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bot import codes
from bot.crypto import DataCipher
from models import GiftReport, KbEntry, KbRevision, Office, UnansweredQuestion, utcnow

QUESTION_MAX = 1000

log = logging.getLogger("itabot.integrity")


@dataclass(frozen=True)
class Answer:
    """An entry as the matcher and the handlers see it (from the database)."""

    id: str
    title_th: str
    title_en: str
    answer_th: str
    answer_en: str
    sources: list
    examples: dict
    related: list
    read_more: str | None = None
    reviewed: str | None = None
    needs_legal_review: bool = False

    def title(self, lang: str) -> str:
        return self.title_th if lang == "th" else self.title_en

    def answer(self, lang: str) -> str:
        return self.answer_th if lang == "th" else self.answer_en


def _content(entry) -> dict:
    """A KB file entry as JSON-safe content."""
    d = asdict(entry) if not isinstance(entry, dict) else dict(entry)
    for k, v in list(d.items()):
        if isinstance(v, date | datetime):
            d[k] = v.isoformat()
    return d


def as_answer(content: dict) -> Answer:
    fields = Answer.__dataclass_fields__
    return Answer(**{k: v for k, v in content.items() if k in fields})


def sync(s: Session, office_id: int, entries=None) -> dict[str, int]:
    """Bring an office's knowledge base in line with the files; returns counts."""
    if entries is None:
        from integrity.kb import load_entries

        entries = load_entries()
    have = {e.key: e for e in s.scalars(select(KbEntry).where(KbEntry.office_id == office_id))}
    added = updated = 0
    for entry in entries:
        content = _content(entry)
        row = have.get(content["id"])
        if row is None:
            row = KbEntry(office_id=office_id, key=content["id"], content=content, revision=1, edited=False)
            s.add(row)
            s.flush()
            s.add(KbRevision(entry_id=row.id, revision=1, content=content, source="file"))
            added += 1
        elif not row.edited and row.content != content:
            row.revision += 1
            row.content = content
            row.updated_at = utcnow()
            s.add(KbRevision(entry_id=row.id, revision=row.revision, content=content, source="file"))
            updated += 1
    return {"added": added, "updated": updated}


def sync_all(s: Session) -> dict[str, int]:
    from integrity.kb import load_entries

    entries = load_entries()
    total = {"added": 0, "updated": 0}
    for office_id in s.scalars(select(Office.id)):
        for k, v in sync(s, office_id, entries).items():
            total[k] += v
    return total


def edit(s: Session, office_id: int, key: str, content: dict, staff_id: int | None) -> KbEntry:
    """An officer's change: a new revision that the shipped files will no longer overwrite."""
    row = s.scalar(select(KbEntry).where(KbEntry.office_id == office_id, KbEntry.key == key).with_for_update())
    if row is None:
        raise KeyError(key)
    content = {**row.content, **content, "id": key}
    row.revision += 1
    row.content = content
    row.edited = True
    row.updated_at = utcnow()
    s.add(KbRevision(entry_id=row.id, revision=row.revision, content=content, staff_id=staff_id, source="console"))
    return row


def follow_file(s: Session, office_id: int, row: KbEntry, entry) -> bool:
    """Back to the shipped file ``entry``: the office's entry follows the files again (``sync``). False, and
    nothing written, when it already does and has the file's content."""
    if not row.edited and row.content == _content(entry):
        return False
    row.edited = False
    sync(s, office_id, [entry])
    return True


def as_entry(content: dict):
    """Stored content as a ``kb.Entry`` whose raw table is what the TOML file would say (a date for
    ``reviewed``, no ``read_more`` when there is none), for ``kb.validate``."""
    from integrity.kb import entry_from_dict

    raw = dict(content)
    if isinstance(raw.get("reviewed"), str):
        with contextlib.suppress(ValueError):  # otherwise left as text: validate reports it
            raw["reviewed"] = date.fromisoformat(raw["reviewed"])
    if raw.get("read_more") is None:
        raw.pop("read_more", None)
    return entry_from_dict(raw)


def problems(s: Session, office_id: int, content: dict, today: date | None = None) -> list:
    """What ``itabot kb validate`` would say about this content as entry ``content["id"]`` of the
    office's knowledge base (related ids must exist there, examples must not repeat another entry's):
    ``kb.Problem``s, whose ``code`` and ``values`` the console words in Thai and English. Problems of
    other entries are not reported."""
    from integrity.kb import validate

    key = content["id"]
    others = [as_entry(r.content) for r in s.scalars(
        select(KbEntry).where(KbEntry.office_id == office_id, KbEntry.key != key).order_by(KbEntry.key))]
    # Last, so an example it shares with another entry is reported against this one.
    found = validate([*others, as_entry(content)], today=today, required_ids=())
    return [p for p in found if p.where == key]


def answers(s: Session, office_id: int) -> list[Answer]:
    rows = s.scalars(select(KbEntry).where(KbEntry.office_id == office_id).order_by(KbEntry.key)).all()
    return [as_answer(r.content) for r in rows]


# What changes when any of an office's entries does: how many there are and the sum of their revisions.
_SIGNATURE = (select(func.count(KbEntry.id), func.sum(KbEntry.revision))
              .where(KbEntry.office_id == bindparam("office")))


class MatcherCache:
    """One matcher per office, rebuilt when any of its entries changes (checked by a cheap query).

    Training a matcher takes about a second, so offices whose knowledge base is the same (most of
    them: the shipped files, unedited) share one, found by a fingerprint of the content; the last
    ``SHARED`` distinct contents are kept.
    """

    SHARED = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[int, tuple[tuple, object, dict[str, Answer]]] = {}
        self._by_content: dict[str, tuple[object, dict[str, Answer]]] = {}

    @staticmethod
    def _signature(s: Session, office_id: int) -> tuple:
        # Core, on the session's own connection (and transaction): the check runs once per batch of events, and
        # through the ORM it cost 118 µs against 18 (one process, a warm SQLite file).
        return tuple(s.connection().execute(_SIGNATURE, {"office": office_id}).one())

    def get(self, s: Session, office_id: int):
        # A session that cannot change the knowledge base (the worker's batches) may keep the check's
        # answer for its own length in ``s.info["kb_signatures"]``.
        known = s.info.get("kb_signatures")
        sig = known.get(office_id) if known is not None else None
        if sig is None:
            sig = self._signature(s, office_id)
            if known is not None and sig[0]:
                known[office_id] = sig
        if sig[0] == 0:  # a new office: the shipped answers first
            sync(s, office_id)
            s.flush()
            sig = self._signature(s, office_id)
        with self._lock:
            cached = self._built.get(office_id)
            if cached is not None and cached[0] == sig:
                return cached[1], cached[2]
        items = answers(s, office_id)
        fingerprint = hashlib.sha256(json.dumps([asdict(a) for a in items], sort_keys=True,
                                                ensure_ascii=False, default=str).encode()).hexdigest()
        with self._lock:
            shared = self._by_content.get(fingerprint)
        if shared is None:
            from integrity.matcher import Matcher

            shared = (Matcher(items), {a.id: a for a in items})
            with self._lock:
                self._by_content[fingerprint] = shared
                while len(self._by_content) > self.SHARED:
                    self._by_content.pop(next(iter(self._by_content)))
        with self._lock:
            self._built[office_id] = (sig, *shared)
        return shared

    def warm(self, db) -> None:
        """Build every office's matcher now (a start-up thread), so no person's first question waits."""
        try:
            with db.Session() as s:
                for office_id in s.scalars(select(Office.id)):
                    if self._signature(s, office_id)[0]:
                        self.get(s, office_id)
        except Exception as exc:  # only a head start: the first question builds it anyway
            log.info("matcher warm-up skipped", extra={"error": exc.__class__.__name__})

    def warm_in_background(self, db) -> None:
        threading.Thread(target=self.warm, args=(db,), name="itabot-matcher-warm", daemon=True).start()


MATCHERS = MatcherCache()


# -- questions for an officer ----------------------------------------------------------------


def message_key(cipher: DataCipher, office_id: int, message_id: str) -> str:
    return cipher.keyed_hash("question-message", f"{office_id}:{message_id}")


def ask_officer(s: Session, office_id: int, question: str, asker: str | None, lang: str,
                cipher: DataCipher, message_id: str | None = None) -> UnansweredQuestion:
    q = UnansweredQuestion(office_id=office_id, question=question[:QUESTION_MAX],
                           asker_enc=cipher.encrypt(asker) if asker else None, asker_lang=lang, status="open",
                           message_key=message_key(cipher, office_id, message_id) if message_id else None)
    s.add(q)
    s.flush()
    return q


def forget_message(s: Session, office_id: int, key: str) -> int:
    """The person unsent the message a question came from: the question goes, whatever its status (an
    officer's answer has been sent already; an example an officer added is the knowledge base's own)."""
    rows = s.scalars(select(UnansweredQuestion).where(UnansweredQuestion.office_id == office_id,
                                                      UnansweredQuestion.message_key == key)).all()
    for q in rows:
        s.delete(q)
    return len(rows)


def answer_question(s: Session, q: UnansweredQuestion, answer: str, staff_id: int | None,
                    cipher: DataCipher) -> str | None:
    """Record the officer's answer; returns the asker's LINE ID to send it to (then forgotten)."""
    if q.status != "open":
        raise ValueError("this question is no longer open")
    if not answer.strip():
        raise ValueError("the answer is empty")
    to = cipher.decrypt(q.asker_enc) if q.asker_enc else None
    q.answer = answer.strip()
    q.answered_by = staff_id
    q.answered_at = utcnow()
    q.status = "answered"
    q.asker_enc = None
    return to


def dismiss_question(q: UnansweredQuestion, staff_id: int | None) -> None:
    q.status = "dismissed"
    q.answered_by = staff_id
    q.answered_at = utcnow()
    q.asker_enc = None


def add_example(s: Session, office_id: int, q: UnansweredQuestion, key: str, staff_id: int | None) -> None:
    """Teach the bot: the question becomes an example of an entry (a new revision)."""
    row = s.scalar(select(KbEntry).where(KbEntry.office_id == office_id, KbEntry.key == key))
    if row is None:
        raise KeyError(key)
    lang = "th" if any("\u0e00" <= ch <= "\u0e7f" for ch in q.question) else "en"
    question = " ".join(q.question.split())  # one example, one line: the editor keeps one per line
    examples = {k: list(v) for k, v in (row.content.get("examples") or {}).items()}
    if question not in examples.setdefault(lang, []):
        examples[lang].append(question)
    edit(s, office_id, key, {"examples": examples}, staff_id)
    q.added_to = key


# -- gift register ------------------------------------------------------------------------------

GIVER_TYPES = ("relative", "served", "contractor", "colleague", "other")
GIFT_ACTIONS = ("declined", "returned", "handed_over", "kept_reported")


def report_gift(s: Session, office_id: int, staff_member_id: int | None, *, giver_type: str, item: str,
                value_baht: int | None, received_on: date | None, action: str) -> GiftReport:
    if giver_type not in GIVER_TYPES or action not in GIFT_ACTIONS:
        raise ValueError("unknown giver type or action")
    if not item.strip():
        raise ValueError("what was given is missing")
    report = GiftReport(office_id=office_id, reference=codes.unique_reference(s, GiftReport.reference, "G-"),
                        staff_member_id=staff_member_id, giver_type=giver_type,
                        item=item.strip()[:300], value_baht=value_baht, received_on=received_on, action=action)
    s.add(report)
    s.flush()
    return report
