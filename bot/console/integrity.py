"""Console pages for the integrity Q&A and the gift register: the queue of questions people asked
an officer (answer on LINE, dismiss, teach the bot), the knowledge-base editor with its revisions,
and the gift register with its xlsx export for the 6- and 12-month reports.

The rules live in ``integrity/store.py`` (answers, revisions, the queue) and
``integrity/register.py`` (periods, the workbook); these pages check who may, keep to the user's
offices, and write an audit row for every action — with ids, never a question's or answer's text.
"""

from __future__ import annotations

import re
from datetime import date

from flask import Response, abort, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from bot.console import access, audit
from bot.console.views import bp, text
from bot.inbox import queue_push
from bot.thaidate import be_date, be_numeric, parse_thai_date
from handlers.context import text_message, utf16_len
from integrity import register, store
from models import GiftReport, KbEntry, KbRevision, Office, StaffUser, UnansweredQuestion
from surveys.campaigns import today_bangkok

QUEUE_LIMIT = 300
ANSWER_MAX = 2000
QUESTION_STATUSES = ("open", "answered", "dismissed")
BLANK_SOURCES = 2  # empty source rows offered under the entry's sources
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _services():
    return current_app.extensions["itabot"]


def _relearn() -> None:
    """The knowledge base changed: train the office's matcher now, off the request, so the next
    question on LINE does not wait for it (it would train it itself otherwise)."""
    store.MATCHERS.warm_in_background(_services().db)


def _lang() -> str:
    return g.get("lang", "th")


def _office_names(s) -> dict[int, str]:
    return dict(s.execute(select(Office.id, Office.name).where(Office.id.in_(access.office_ids()))).all())


def _office_param(default_first: bool = True) -> int | None:
    """``office_id`` from the query or form: one of the user's offices (404 otherwise); without it,
    the first of them (or None when ``default_first`` is off)."""
    ids = access.office_ids()
    raw = (request.values.get("office_id") or "").strip()
    if not raw:
        if not ids:
            abort(404)
        return ids[0] if default_first else None
    office_id = int(raw) if raw.isdecimal() else 0
    if office_id not in ids:
        abort(404)
    return office_id


# -- labels for templates --------------------------------------------------------------------------


@bp.app_template_filter("gift_giver")
def _giver_label(key: str | None) -> str:
    return register.label(register.GIVER_LABELS, key, _lang())


@bp.app_template_filter("gift_action")
def _action_label(key: str | None) -> str:
    return register.label(register.ACTION_LABELS, key, _lang())


@bp.app_template_filter("iso_be_date")
def _iso_be_date(value) -> str:
    """A stored ISO date (the knowledge base keeps ``reviewed`` as text) in the Buddhist Era."""
    if isinstance(value, date):
        return be_date(value, _lang())
    try:
        return be_date(date.fromisoformat(value), _lang()) if value else ""
    except (TypeError, ValueError):
        return str(value)


# -- the question queue ----------------------------------------------------------------------------


@bp.get("/questions")
@access.requires("qa")
def questions():
    status = request.args.get("status") or "open"
    if status not in (*QUESTION_STATUSES, "all"):
        status = "open"
    with _services().db.Session() as s:
        stmt = access.scoped(select(UnansweredQuestion), UnansweredQuestion.office_id)
        if status != "all":
            stmt = stmt.where(UnansweredQuestion.status == status)
        rows = s.scalars(stmt.order_by(UnansweredQuestion.asked_at.desc(), UnansweredQuestion.id.desc())
                         .limit(QUEUE_LIMIT + 1)).all()
        counts = dict(s.execute(access.scoped(
            select(UnansweredQuestion.status, func.count()).group_by(UnansweredQuestion.status),
            UnansweredQuestion.office_id)).all())
        office_names = _office_names(s)
    more = len(rows) > QUEUE_LIMIT
    return render_template("console/questions.html", rows=rows[:QUEUE_LIMIT], more=more, limit=QUEUE_LIMIT,
                           status=status, statuses=QUESTION_STATUSES, counts=counts, office_names=office_names,
                           several_offices=len(office_names) > 1, done=request.args.get("done"))


def _question_or_404(s, question_id: int, *, lock: bool = False) -> UnansweredQuestion:
    q = access.get_scoped_or_404(s, UnansweredQuestion, question_id)
    if lock:  # PostgreSQL: two officers acting at once take turns, so the second sees the first's answer
        s.refresh(q, with_for_update=True)
    return q


def _target(q: UnansweredQuestion) -> str:
    return f"question:{q.id}"


def _question_page(s, q: UnansweredQuestion, *, error: str | None = None, answer: str = "", status: int = 200):
    entries = [store.as_answer(r.content) for r in s.scalars(
        select(KbEntry).where(KbEntry.office_id == q.office_id).order_by(KbEntry.key))]
    by = s.get(StaffUser, q.answered_by) if q.answered_by else None
    office = s.get(Office, q.office_id)
    return render_template("console/question.html", q=q, entries=entries, answered_by=by.email if by else None,
                           office=office, error=error, answer=answer, answer_max=ANSWER_MAX,
                           done=request.args.get("done")), status


@bp.get("/questions/<int:question_id>")
@access.requires("qa")
def question_detail(question_id: int):
    with _services().db.Session() as s:
        return _question_page(s, _question_or_404(s, question_id))


@bp.post("/questions/<int:question_id>/answer")
@access.requires("qa")
def question_answer(question_id: int):
    from handlers.i18n import t as line_text

    body = (request.form.get("answer") or "").replace("\r\n", "\n").strip()
    services = _services()
    with services.db.session() as s:
        q = _question_or_404(s, question_id, lock=True)
        error = None
        if q.status != "open":
            error = text("qa_not_open")
        elif not body:
            error = text("qa_answer_empty")
        elif utf16_len(body) > ANSWER_MAX:  # as LINE counts, so that the question and answer fit one message
            error = text("qa_answer_long", n=ANSWER_MAX)
        if error is None:
            try:
                to = store.answer_question(s, q, body, g.staff.id, services.cipher)
            except ValueError:  # the asker's ID was encrypted under another key: nobody to send it to
                q.asker_enc = None
                to = store.answer_question(s, q, body, g.staff.id, services.cipher)
        if error is not None:
            return _question_page(s, q, error=error, answer=body, status=409 if q.status != "open" else 400)
        if to:
            message = line_text("qa_officer_answer", q.asker_lang, question=q.question, answer=body)
            queue_push(s, q.office_id, to, [text_message(message)])
        audit.record(s, "question.answered", office_id=q.office_id, target=_target(q), detail={"pushed": bool(to)})
    return redirect(url_for("console.questions", done="answered" if to else "answered_not_sent"))


@bp.post("/questions/<int:question_id>/dismiss")
@access.requires("qa")
def question_dismiss(question_id: int):
    with _services().db.session() as s:
        q = _question_or_404(s, question_id, lock=True)
        if q.status != "open":
            return _question_page(s, q, error=text("qa_not_open"), status=409)
        store.dismiss_question(q, g.staff.id)
        audit.record(s, "question.dismissed", office_id=q.office_id, target=_target(q))
    return redirect(url_for("console.questions", done="dismissed"))


@bp.post("/questions/<int:question_id>/example")
@access.requires("qa")
def question_example(question_id: int):
    from integrity.kb import normalize_question

    key = (request.form.get("entry") or "").strip()
    with _services().db.session() as s:
        q = _question_or_404(s, question_id, lock=True)
        rows = {r.key: r for r in s.scalars(select(KbEntry).where(KbEntry.office_id == q.office_id))}
        if key not in rows:
            abort(400)
        wanted = normalize_question(q.question)
        owner = next((k for k, r in sorted(rows.items())
                      for qs in (r.content.get("examples") or {}).values() for x in qs
                      if normalize_question(x) == wanted), None)
        error = None
        if q.added_to:
            error = text("qa_example_done_already", entry=q.added_to)
        elif owner is not None:
            error = text("qa_example_exists", entry=owner)
        if error is not None:
            return _question_page(s, q, error=error, status=409)
        store.add_example(s, q.office_id, q, key, g.staff.id)
        audit.record(s, "question.added_as_example", office_id=q.office_id, target=_target(q),
                     detail={"entry": key, "revision": rows[key].revision})
    _relearn()
    return redirect(url_for("console.question_detail", question_id=question_id, done="example"))


# -- the knowledge base ------------------------------------------------------------------------------


def _entries(s, office_id: int) -> list[KbEntry]:
    rows = s.scalars(select(KbEntry).where(KbEntry.office_id == office_id).order_by(KbEntry.key)).all()
    if not rows:  # an office nobody has asked anything yet: the shipped answers first
        store.sync(s, office_id)
        s.flush()
        rows = s.scalars(select(KbEntry).where(KbEntry.office_id == office_id).order_by(KbEntry.key)).all()
    return list(rows)


def _entry_or_404(s, office_id: int, key: str) -> KbEntry:
    row = s.scalar(select(KbEntry).where(KbEntry.office_id == office_id, KbEntry.key == key))
    if row is None:
        abort(404)
    return row


def _kb_target(office_id: int, key: str) -> str:
    return f"kb:{office_id}:{key}"


@bp.get("/kb")
@access.requires("qa")
def kb():
    office_id = _office_param()
    with _services().db.session() as s:
        rows = _entries(s, office_id)
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
        entries = [{"key": r.key, "c": r.content, "edited": r.edited, "revision": r.revision,
                    "updated_at": r.updated_at} for r in rows]
    return render_template("console/kb.html", entries=entries, office_id=office_id, offices=offices)


def _form_values(content: dict) -> dict:
    """An entry's content as the edit form shows it."""
    sources = [(x.get("th", ""), x.get("en", "")) for x in content.get("sources") or [] if isinstance(x, dict)]
    examples = content.get("examples") or {}
    return {
        "title_th": content.get("title_th", ""), "title_en": content.get("title_en", ""),
        "answer_th": content.get("answer_th", ""), "answer_en": content.get("answer_en", ""),
        "read_more": content.get("read_more") or "",
        "sources": sources + [("", "")] * BLANK_SOURCES,
        "examples_th": "\n".join(examples.get("th") or []), "examples_en": "\n".join(examples.get("en") or []),
        "related": ", ".join(content.get("related") or []),
        "reviewed": _be_typed(content.get("reviewed")),
        "needs_legal_review": bool(content.get("needs_legal_review")),
    }


def _be_typed(iso: str | None) -> str:
    """The stored review date (ISO, CE) as the form shows it: day/month/BE year; anything else as it is."""
    try:
        return be_numeric(date.fromisoformat(iso)) if iso else ""
    except ValueError:
        return iso or ""


def _lines(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").replace("\r\n", "\n").split("\n") if x.strip()]


def _one(raw: str | None) -> str:
    return (raw or "").replace("\r\n", "\n").strip()


def _content_from_form(key: str) -> tuple[dict, dict, list[str]]:
    """The posted form as stored content, the values to show again, and the problems found before
    the knowledge-base rules are applied (a date that is not one)."""
    f = request.form
    pairs = list(zip(f.getlist("source_th"), f.getlist("source_en"), strict=False))
    sources = [{"th": th.strip(), "en": en.strip()} for th, en in pairs if th.strip() or en.strip()]
    related = [x for x in re.split(r"[\s,]+", f.get("related") or "") if x]
    typed_date = (f.get("reviewed") or "").strip()
    reviewed = parse_thai_date(typed_date)
    content = {
        "id": key,
        "title_th": _one(f.get("title_th")), "title_en": _one(f.get("title_en")),
        "answer_th": _one(f.get("answer_th")), "answer_en": _one(f.get("answer_en")),
        "read_more": _one(f.get("read_more")) or None,
        "sources": sources,
        "examples": {"th": _lines(f.get("examples_th")), "en": _lines(f.get("examples_en"))},
        "related": related,
        "reviewed": reviewed.isoformat() if reviewed else typed_date,
        "needs_legal_review": f.get("needs_legal_review") == "1",
    }
    values = _form_values(content)
    values["reviewed"] = typed_date
    early = [] if reviewed else [text("kb_bad_reviewed")]
    return content, values, early


def _entry_page(s, office_id: int, row: KbEntry, *, values: dict | None = None, problems: list[str] | None = None,
                status: int = 200):
    shipped = _shipped(row.key) is not None
    others = [(r.key, r.content.get("title_th", ""), r.content.get("title_en", "")) for r in s.scalars(
        select(KbEntry).where(KbEntry.office_id == office_id, KbEntry.key != row.key).order_by(KbEntry.key))]
    return render_template("console/kb_entry.html", row=row, office_id=office_id, values=values or _form_values(
        row.content), problems=problems or [], others=others, shipped=shipped,
        several_offices=len(access.office_ids()) > 1, office=s.get(Office, office_id),
        done=request.args.get("done")), status


# The form's label for each field of an entry, for the knowledge base's problems (``kb_problem_*``).
FIELD_LABELS = {
    "id": "kb_id", "title_th": "kb_title_th", "title_en": "kb_title_en", "answer_th": "kb_answer_th",
    "answer_en": "kb_answer_en", "read_more": "kb_read_more", "related": "kb_related", "reviewed": "kb_reviewed",
    "needs_legal_review": "kb_legal", "sources": "kb_sources", "examples": "kb_examples",
}


def _problem_text(p) -> str:
    """A ``kb.Problem`` in the console's language: what is wrong with which field, as the form names it."""
    values = dict(p.values)
    if "key" in values:
        label = FIELD_LABELS.get(values.pop("key"))
        values["field"] = text(label) if label else repr(p.values["key"])
    if "lang" in values:
        lang = values.pop("lang")
        prefix = "kb_source_" if p.code.startswith("source") else "kb_examples_"
        values["field"] = text(prefix + lang) if lang in ("th", "en") else repr(lang)
    if isinstance(values.get("date"), date):
        values["date"] = be_date(values["date"], _lang())
    if "value" in values:
        values["value"] = repr(values["value"])
    return text(f"kb_problem_{p.code}", **values)


def _shipped(key: str):
    from integrity.kb import KBError, load_entries

    try:
        return next((e for e in load_entries() if e.id == key), None)
    except KBError:
        return None


@bp.route("/kb/<key>", methods=["GET", "POST"])
@access.requires("qa")
def kb_entry(key: str):
    office_id = _office_param()
    with _services().db.session() as s:
        row = _entry_or_404(s, office_id, key)
        if request.method == "GET":
            return _entry_page(s, office_id, row)
        content, values, problems = _content_from_form(key)
        s.refresh(row, with_for_update=True)  # PostgreSQL: saves of one entry take turns
        seen = request.form.get("revision", "")
        if seen.isdecimal() and int(seen) != row.revision:  # someone saved (or an example came) meanwhile
            return _entry_page(s, office_id, row, values=values, status=409,
                               problems=[text("kb_conflict", revision=row.revision)])
        found = store.problems(s, office_id, content, today=today_bangkok())
        if problems:  # our own words for a date that is not one; the rule's text would repeat it
            found = [p for p in found if p.code != "reviewed_not_date"]
        problems += [_problem_text(p) for p in found]
        if problems:
            return _entry_page(s, office_id, row, values=values, problems=problems, status=400)
        old = row.content
        changed = sorted(k for k in content if old.get(k) != content[k])
        if not changed:
            return redirect(url_for("console.kb_entry", key=key, office_id=office_id, done="unchanged"))
        store.edit(s, office_id, key, content, g.staff.id)
        audit.record(s, "kb.edited", office_id=office_id, target=_kb_target(office_id, key),
                     detail={"revision": row.revision, "fields": changed})
    _relearn()
    return redirect(url_for("console.kb_entry", key=key, office_id=office_id, done="saved"))


def _history_page(s, office_id: int, row: KbEntry, *, problems: list[str] | None = None, status: int = 200):
    revisions = s.execute(select(KbRevision, StaffUser.email).outerjoin(StaffUser, StaffUser.id == KbRevision.staff_id)
                          .where(KbRevision.entry_id == row.id).order_by(KbRevision.revision.desc())).all()
    raw = request.values.get("rev") or ""
    shown = None
    if raw.isdecimal():
        shown = next((r for r, _ in revisions if r.revision == int(raw)), None)
        if shown is None:
            abort(404)
    return render_template("console/kb_history.html", row=row, office_id=office_id, revisions=revisions,
                           shown=shown, problems=problems or [], shipped=_shipped(row.key) is not None,
                           done=request.args.get("done")), status


@bp.get("/kb/<key>/history")
@access.requires("qa")
def kb_history(key: str):
    office_id = _office_param()
    with _services().db.Session() as s:
        return _history_page(s, office_id, _entry_or_404(s, office_id, key))


@bp.post("/kb/<key>/restore")
@access.requires("qa")
def kb_restore(key: str):
    office_id = _office_param()
    raw = request.form.get("rev") or ""
    with _services().db.session() as s:
        row = _entry_or_404(s, office_id, key)
        rev = s.scalar(select(KbRevision).where(KbRevision.entry_id == row.id,
                                                KbRevision.revision == (int(raw) if raw.isdecimal() else -1)))
        if rev is None:
            abort(404)
        content = {**rev.content, "id": key}
        problems = store.problems(s, office_id, content, today=today_bangkok())
        if problems:
            return _history_page(s, office_id, row, problems=[_problem_text(p) for p in problems], status=400)
        if content == row.content:
            return redirect(url_for("console.kb_history", key=key, office_id=office_id, done="unchanged"))
        store.edit(s, office_id, key, content, g.staff.id)
        audit.record(s, "kb.restored", office_id=office_id, target=_kb_target(office_id, key),
                     detail={"from_revision": rev.revision, "revision": row.revision})
    _relearn()
    return redirect(url_for("console.kb_history", key=key, office_id=office_id, done="restored"))


@bp.post("/kb/<key>/revert")
@access.requires("qa")
def kb_revert(key: str):
    """Back to the shipped file: the entry follows the files again (``itabot kb load``)."""
    office_id = _office_param()
    shipped = _shipped(key)
    with _services().db.session() as s:
        row = _entry_or_404(s, office_id, key)
        if shipped is None:
            abort(404)
        if not store.follow_file(s, office_id, row, shipped):  # e.g. a second click, or another tab
            return redirect(url_for("console.kb_history", key=key, office_id=office_id, done="unchanged"))
        audit.record(s, "kb.reverted_to_file", office_id=office_id, target=_kb_target(office_id, key),
                     detail={"revision": row.revision})
    _relearn()
    return redirect(url_for("console.kb_history", key=key, office_id=office_id, done="reverted"))


# -- the gift register -------------------------------------------------------------------------------


def _gift_query() -> tuple[list[int], date | None, date | None, dict, str | None]:
    """The offices and the period asked for: a preset period (``period=2569-6``) or ``from``/``to``
    (as the date fields send them; BE and Thai digits work too). Default: this fiscal year."""
    office_id = _office_param(default_first=False)
    ids = [office_id] if office_id else access.office_ids()
    args = request.args
    presets = register.reporting_periods(today_bangkok())
    chosen = next((p for p in presets if p.key == args.get("period")), None)
    if chosen is None and not (args.get("from") or args.get("to")):
        chosen = presets[0]
    if chosen is not None:
        start, end = chosen.start, chosen.end
        values = {"from": start.isoformat(), "to": end.isoformat(), "period": chosen.key}
    else:
        start, end = parse_thai_date(args.get("from")), parse_thai_date(args.get("to"))
        values = {"from": args.get("from") or "", "to": args.get("to") or "", "period": ""}
    values["office_id"] = office_id or ""
    if start is None or end is None or start > end:
        return ids, None, None, values, text("gift_bad_dates")
    return ids, start, end, values, None


@bp.get("/gifts")
@access.requires("gifts")
def gifts():
    ids, start, end, values, error = _gift_query()
    rows = []
    with _services().db.Session() as s:
        if error is None:
            rows = register.reports(s, ids, start, end)
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
        total = s.scalar(access.scoped(select(func.count(GiftReport.id)), GiftReport.office_id))
    known = [r.report.value_baht for r in rows if r.report.value_baht is not None]
    presets = register.reporting_periods(today_bangkok())
    return render_template("console/gifts.html", rows=rows, values=values, error=error, start=start, end=end,
                           presets=presets, offices=offices, several_offices=len(offices) > 1,
                           value_total=sum(known), total_ever=total), (400 if error else 200)


@bp.get("/gifts.xlsx")
@access.requires("gifts")
def gifts_export():
    ids, start, end, values, error = _gift_query()
    if error is not None:
        abort(400)
    with _services().db.session() as s:
        rows = register.reports(s, ids, start, end)
        names = [name for oid, name in sorted(_office_names(s).items()) if oid in ids]
        audit.record(s, "gifts.exported", office_id=ids[0] if len(ids) == 1 else None,
                     detail={"from": start.isoformat(), "to": end.isoformat(), "offices": ids, "reports": len(rows)})
    body = register.to_xlsx(rows, start, end, names)
    name = f"gift-register-{start.isoformat()}-{end.isoformat()}.xlsx"
    return Response(body, mimetype=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})
