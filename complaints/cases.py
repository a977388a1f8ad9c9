"""The rules of a complaint case: submitting a draft, the receipt, following the case, what
officers may do, time limits, retention. Used by the LINE flow, the console and the CLI.

Identity: an anonymous case is written with no reference to the person (the draft's link to
the user lives only in ``conversation_states``, which the engine deletes in the same transaction).
A confidential or named case keeps name, contact and LINE user ID encrypted.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot import codes
from bot.crypto import DataCipher
from complaints import catalog, receipts
from models import (
    Complaint,
    ComplaintEvent,
    ComplaintEvidence,
    ComplaintSettings,
    ReceiptAttempts,
    utcnow,
)
from models.complaint import OPEN_STATUSES, OUTCOMES, REFERRED_TO, STATUSES

log = logging.getLogger("itabot.complaints")

RECEIPT_FAILURES = 5  # wrong codes within RECEIPT_WINDOW before a lock
RECEIPT_WINDOW = timedelta(minutes=15)
RECEIPT_LOCK = timedelta(minutes=15)
DRAFT_TTL = timedelta(hours=24)  # a draft untouched this long is deleted, with its evidence
# Evidence of a draft is deleted with the draft; this is the safety net for any left behind.
ORPHAN_TTL = timedelta(days=7)
TEXT_MAX = 4000  # characters per message kept in a report
DESCRIPTION_MAX = 10_000  # characters in all
DESCRIPTION_SEPARATOR = "\n\n"  # between the messages of a description
REPLY_MAX = 2000
# Events a reporter sees when following the case (never internal notes or reveals).
CLOSED_STATUSES = ("concluded", "referred", "closed")


class CaseError(ValueError):
    """An officer's action that the rules do not allow; the message says why."""


def settings_for(s: Session, office_id: int) -> ComplaintSettings:
    row = s.get(ComplaintSettings, office_id)
    if row is None:
        row = ComplaintSettings(office_id=office_id, first_action_days=15, conclude_days=60, retention_days=365)
    return row


def categories_for(s: Session, office_id: int) -> list[tuple[str, str, str]]:
    chosen = settings_for(s, office_id).categories
    if not chosen:
        return list(catalog.CATEGORIES)
    wanted = [c.strip() for c in chosen.split(",") if c.strip()]
    by_id = {c[0]: c for c in catalog.CATEGORIES}
    picked = [by_id[c] for c in wanted if c in by_id]
    return picked or list(catalog.CATEGORIES)


def receipt_hash(cipher: DataCipher, code: str) -> str:
    return cipher.keyed_hash("receipt", code)


def who_hash(cipher: DataCipher, office_id: int, line_user_id: str) -> str:
    """Who is guessing codes, as a keyed hash: enough to throttle, not a LINE user ID."""
    return cipher.keyed_hash("receipt-attempts", f"{office_id}:{line_user_id}")


def message_key(cipher: DataCipher, office_id: int, message_id: str) -> str:
    return cipher.keyed_hash("evidence-message", f"{office_id}:{message_id}")


# -- drafts -----------------------------------------------------------------------------


def add_draft_evidence(s: Session, office_id: int, draft_token: str, message_key_: str | None, *, kind: str,
                       content_type: str | None = None, data: bytes | None = None, sha256: str | None = None,
                       filename: str | None = None, latitude: float | None = None,
                       longitude: float | None = None, address: str | None = None) -> ComplaintEvidence:
    ev = ComplaintEvidence(office_id=office_id, draft_token=draft_token, message_key=message_key_, kind=kind,
                           content_type=content_type, data=data, size=len(data or b""), sha256=sha256,
                           filename=filename, latitude=latitude, longitude=longitude,
                           address=(address or None) and address[:300])
    s.add(ev)
    s.flush()
    return ev


def draft_evidence(s: Session, draft_token: str) -> list[ComplaintEvidence]:
    return list(s.scalars(select(ComplaintEvidence).where(ComplaintEvidence.draft_token == draft_token,
                                                          ComplaintEvidence.complaint_id.is_(None))
                          .order_by(ComplaintEvidence.id)))


def discard_draft(s: Session, draft_token: str | None) -> None:
    if draft_token:
        s.execute(delete(ComplaintEvidence).where(ComplaintEvidence.draft_token == draft_token,
                                                  ComplaintEvidence.complaint_id.is_(None)))


def forget_message(s: Session, office_id: int, key: str) -> int:
    """The reporter unsent a photo or file of a draft: remove it."""
    return s.execute(delete(ComplaintEvidence).where(ComplaintEvidence.office_id == office_id,
                                                     ComplaintEvidence.message_key == key,
                                                     ComplaintEvidence.complaint_id.is_(None))).rowcount


def purge_abandoned_drafts(s: Session, now: datetime | None = None) -> int:
    """Evidence left behind by drafts that are long gone (drafts normally take theirs with them;
    a draft may stay alive past a day while the person keeps writing, hence the longer wait)."""
    now = now or utcnow()
    return s.execute(delete(ComplaintEvidence).where(ComplaintEvidence.complaint_id.is_(None),
                                                     ComplaintEvidence.created_at < now - ORPHAN_TTL)).rowcount


# -- submit ------------------------------------------------------------------------------


def description_parts(draft: dict) -> list[str]:
    """The messages of a draft's description, in the order they were sent (unsent ones are gone)."""
    return [p["text"] for p in (draft.get("_messages") or {}).values()
            if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]]


def has_description(draft: dict) -> bool:
    """Whether ``submit`` would find something described (else it refuses the draft)."""
    return bool(DESCRIPTION_SEPARATOR.join(description_parts(draft)).strip())


@dataclass(frozen=True)
class Submitted:
    complaint: Complaint
    code: str  # the receipt code, shown once to the reporter, never stored


def submit(s: Session, office_id: int, draft: dict, cipher: DataCipher, line_user_id: str | None) -> Submitted:
    identity = draft.get("identity")
    if identity not in ("anonymous", "confidential", "named"):
        raise CaseError("identity missing")
    description = DESCRIPTION_SEPARATOR.join(description_parts(draft))[:DESCRIPTION_MAX]
    if not description.strip():
        raise CaseError("description missing")
    code = receipts.normalize(receipts.new_code())
    assert code is not None  # nosec B101 # type narrowing: a fresh code always normalises
    occurred = draft.get("occurred_on")
    complaint = Complaint(
        office_id=office_id,
        receipt_hash=receipt_hash(cipher, code),
        reference=codes.unique_reference(s, Complaint.reference, "C-"),
        channel="line",
        category=str(draft.get("category") or "other")[:32],
        description=description,
        occurred_on=date.fromisoformat(occurred) if occurred else None,
        occurred_text=(draft.get("occurred_text") or None) and str(draft["occurred_text"])[:200],
        place=(draft.get("place") or None) and str(draft["place"])[:200],
        identity=identity,
        status="received",
        spam=False,
    )
    if identity != "anonymous":
        who = {"name": str(draft.get("name") or "")[:200], "contact": str(draft.get("contact") or "")[:200]}
        complaint.reporter_enc = cipher.encrypt(json.dumps(who, ensure_ascii=False))
        if line_user_id:
            complaint.reporter_line_enc = cipher.encrypt(line_user_id)
    s.add(complaint)
    s.flush()
    token = draft.get("draft_token")
    if token:
        s.execute(update(ComplaintEvidence)
                  .where(ComplaintEvidence.draft_token == token, ComplaintEvidence.complaint_id.is_(None))
                  .values(complaint_id=complaint.id, draft_token=None, message_key=None))
    s.add(ComplaintEvent(complaint_id=complaint.id, kind="created", status="received"))
    return Submitted(complaint, receipts.pretty(code))


# -- following the case -------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    result: str  # ok | wrong | locked
    complaint: Complaint | None = None
    locked_until: datetime | None = None


def lookup(s: Session, office_id: int, code_text: str, cipher: DataCipher, line_user_id: str | None) -> Lookup:
    """Find a case by its receipt code, throttling whoever guesses wrong."""
    now = utcnow()
    who = who_hash(cipher, office_id, line_user_id or "-")
    attempts = s.get(ReceiptAttempts, (office_id, who))
    if attempts is not None and attempts.locked_until is not None and attempts.locked_until > now:
        return Lookup("locked", locked_until=attempts.locked_until)
    code = receipts.normalize(code_text)
    found = None
    if code is not None:
        wanted = receipt_hash(cipher, code)
        row = s.scalar(select(Complaint).where(Complaint.office_id == office_id, Complaint.receipt_hash == wanted))
        if row is not None and hmac.compare_digest(row.receipt_hash, wanted):
            found = row
    if found is not None:
        return Lookup("ok", found)
    if attempts is None:
        attempts = ReceiptAttempts(office_id=office_id, who=who, failures=0, window_start=now)
        s.add(attempts)
    if attempts.window_start is None or attempts.window_start < now - RECEIPT_WINDOW:
        attempts.window_start = now
        attempts.failures = 0
    attempts.failures += 1
    if attempts.failures >= RECEIPT_FAILURES:
        attempts.locked_until = now + RECEIPT_LOCK
        attempts.failures = 0
        return Lookup("locked", locked_until=attempts.locked_until)
    return Lookup("wrong")


def latest_for_reporter(s: Session, complaint: Complaint) -> ComplaintEvent | None:
    return s.scalar(select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id == complaint.id,
                           ComplaintEvent.kind.in_(("status", "to_reporter", "created")))
                    .order_by(ComplaintEvent.at.desc(), ComplaintEvent.id.desc()).limit(1))


def open_question(s: Session, complaint: Complaint) -> ComplaintEvent | None:
    """The officers' last message to the reporter, if the reporter has not answered since."""
    last = s.scalar(select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id == complaint.id,
                           ComplaintEvent.kind.in_(("to_reporter", "from_reporter")))
                    .order_by(ComplaintEvent.at.desc(), ComplaintEvent.id.desc()).limit(1))
    return last if last is not None and last.kind == "to_reporter" else None


def reporter_says(s: Session, complaint: Complaint, text: str) -> ComplaintEvent:
    ev = ComplaintEvent(complaint_id=complaint.id, kind="from_reporter", body=text[:REPLY_MAX])
    s.add(ev)
    return ev


# -- officers ---------------------------------------------------------------------------


def _first_action(complaint: Complaint, now: datetime) -> None:
    if complaint.first_action_at is None:
        complaint.first_action_at = now


def change_status(s: Session, complaint: Complaint, staff_id: int | None, status: str, *,
                  outcome: str | None = None, referred_to: str | None = None,
                  note: str | None = None) -> ComplaintEvent:
    if status not in STATUSES:
        raise CaseError(f"unknown status {status!r}")
    if status == "concluded" and outcome not in OUTCOMES:
        raise CaseError("a concluded case needs an outcome (substantiated or unsubstantiated)")
    if status == "referred" and referred_to not in REFERRED_TO:
        raise CaseError("a referred case needs the body it went to")
    outcome = outcome if status == "concluded" else None
    referred_to = referred_to if status == "referred" else None
    # The same status again is refused; a concluded or referred case may change its outcome or the body it went to.
    if (status, outcome, referred_to) == (complaint.status, complaint.outcome, complaint.referred_to):
        raise CaseError("the case already has this status")
    now = utcnow()
    complaint.status = status
    complaint.outcome = outcome
    complaint.referred_to = referred_to
    if status != "received":
        _first_action(complaint, now)
    complaint.closed_at = now if status in CLOSED_STATUSES else None
    ev = ComplaintEvent(complaint_id=complaint.id, kind="status", staff_id=staff_id, status=status,
                        body=(note or None) and note[:REPLY_MAX], at=now)
    s.add(ev)
    return ev


def assign(s: Session, complaint: Complaint, staff_id: int | None, assignee_id: int | None) -> None:
    complaint.assigned_to = assignee_id
    s.add(ComplaintEvent(complaint_id=complaint.id, kind="assigned", staff_id=staff_id,
                         body=str(assignee_id) if assignee_id else None))


def add_note(s: Session, complaint: Complaint, staff_id: int | None, text: str) -> None:
    if not text.strip():
        raise CaseError("the note is empty")
    s.add(ComplaintEvent(complaint_id=complaint.id, kind="note", staff_id=staff_id, body=text[:TEXT_MAX]))


def message_reporter(s: Session, complaint: Complaint, staff_id: int | None, text: str) -> ComplaintEvent:
    """A question or update for the reporter, who sees it when following the case with the code
    (and, for named and confidential cases, gets it pushed)."""
    if not text.strip():
        raise CaseError("the message is empty")
    now = utcnow()
    _first_action(complaint, now)
    ev = ComplaintEvent(complaint_id=complaint.id, kind="to_reporter", staff_id=staff_id, body=text[:REPLY_MAX], at=now)
    s.add(ev)
    return ev


def mark_spam(s: Session, complaint: Complaint, staff_id: int | None, spam: bool = True) -> None:
    complaint.spam = spam
    s.add(ComplaintEvent(complaint_id=complaint.id, kind="spam", staff_id=staff_id, body="1" if spam else "0"))


def reveal(s: Session, complaint: Complaint, staff_id: int | None, cipher: DataCipher) -> dict:
    """The reporter's name and contact, for a confidential or named case (the caller audits)."""
    if complaint.identity == "anonymous" or complaint.reporter_enc is None:
        raise CaseError("this case has no identity to show")
    s.add(ComplaintEvent(complaint_id=complaint.id, kind="reveal", staff_id=staff_id))
    return json.loads(cipher.decrypt(complaint.reporter_enc))


def reporter_line_id(complaint: Complaint, cipher: DataCipher) -> str | None:
    if complaint.identity == "anonymous" or complaint.reporter_line_enc is None:
        return None
    return cipher.decrypt(complaint.reporter_line_enc)


# -- time limits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadlines:
    first_action_due: datetime
    conclude_due: datetime
    first_action_overdue: bool
    conclude_overdue: bool

    @property
    def overdue(self) -> bool:
        return self.first_action_overdue or self.conclude_overdue


def deadlines(complaint: Complaint, settings: ComplaintSettings, now: datetime | None = None) -> Deadlines:
    now = now or utcnow()
    first_due = complaint.created_at + timedelta(days=settings.first_action_days)
    conclude_due = complaint.created_at + timedelta(days=settings.conclude_days)
    open_ = complaint.status in OPEN_STATUSES and not complaint.spam
    return Deadlines(first_due, conclude_due,
                     open_ and complaint.first_action_at is None and now > first_due,
                     open_ and now > conclude_due)


def overdue_counts(s: Session, office_id: int, now: datetime | None = None) -> tuple[int, int]:
    """(open cases, overdue cases) of an office: what the daily digest says."""
    now = now or utcnow()
    st = settings_for(s, office_id)
    open_rows = s.scalars(select(Complaint).where(Complaint.office_id == office_id,
                                                  Complaint.status.in_(OPEN_STATUSES),
                                                  Complaint.spam.is_(False))).all()
    return len(open_rows), sum(1 for c in open_rows if deadlines(c, st, now).overdue)


# -- retention ---------------------------------------------------------------------------


def purge(s: Session, now: datetime | None = None, office_id: int | None = None) -> list[dict]:
    """Remove evidence and identity of cases closed longer ago than their office keeps them.
    Returns what was removed (case reference and counts; no content), for the log."""
    now = now or utcnow()
    removed: list[dict] = []
    stmt = select(Complaint).where(Complaint.status.in_(CLOSED_STATUSES), Complaint.closed_at.is_not(None),
                                   Complaint.purged_at.is_(None))
    if office_id is not None:
        stmt = stmt.where(Complaint.office_id == office_id)
    for c in s.scalars(stmt).all():
        st = settings_for(s, c.office_id)
        if c.closed_at > now - timedelta(days=st.retention_days):
            continue
        # Claim the case first: of two workers purging at once, only one goes on (the other's
        # UPDATE waits for the row and then matches nothing).
        claimed = s.execute(update(Complaint).where(Complaint.id == c.id, Complaint.purged_at.is_(None))
                            .values(purged_at=now).execution_options(synchronize_session=False)).rowcount
        if not claimed:
            continue
        files = s.scalar(select(func.count()).select_from(ComplaintEvidence)
                         .where(ComplaintEvidence.complaint_id == c.id)) or 0
        s.execute(delete(ComplaintEvidence).where(ComplaintEvidence.complaint_id == c.id))
        had_identity = c.reporter_enc is not None or c.reporter_line_enc is not None
        c.reporter_enc = None
        c.reporter_line_enc = None
        c.purged_at = now  # (already set by the claim; keeps the loaded object in step)
        s.add(ComplaintEvent(complaint_id=c.id, kind="purged", body=f"evidence={files} identity={int(had_identity)}"))
        removed.append({"office_id": c.office_id, "reference": c.reference, "evidence": files,
                        "identity": had_identity})
    return removed


def inbox_query(office_ids: list[int], *, status: str | None = None, category: str | None = None,
                spam: bool | None = False, q: str | None = None):
    stmt = select(Complaint).where(Complaint.office_id.in_(office_ids))
    if status == "open":
        stmt = stmt.where(Complaint.status.in_(OPEN_STATUSES))
    elif status:
        stmt = stmt.where(Complaint.status == status)
    if category:
        stmt = stmt.where(Complaint.category == category)
    if spam is not None:
        stmt = stmt.where(Complaint.spam.is_(spam))
    q = (q or "").replace("\x00", "")  # PostgreSQL refuses a NUL in text (a 500 for a pasted one)
    if q:
        # The officer's words as they are: "%" and "_" are characters to find, not wildcards.
        like = "%{}%".format(q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
        stmt = stmt.where(or_(Complaint.reference.ilike(like, escape="\\"),
                              Complaint.description.ilike(like, escape="\\")))
    return stmt.order_by(Complaint.created_at.desc())
