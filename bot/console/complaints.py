"""Console pages for complaint officers: the inbox, a case (content, evidence, timeline, actions,
the reporter's identity), the office's complaint settings and the statistics download.

The rules themselves live in ``complaints/cases.py``; these pages only call them, check who may,
and write an audit row for every view and action. Nothing here logs a complaint's text or a
reporter's identity. A confidential reporter's name and contact are shown only in the response
to a "reveal" POST (never cached), to a complaint officer whose session passed TOTP.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps

from flask import (
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from sqlalchemy import func, select

from bot.console import access, audit
from bot.console.surveys import PALETTE
from bot.console.views import _catalog, bp, text
from bot.inbox import queue_push
from bot.thaidate import BANGKOK, BE_OFFSET, MONTHS_TH
from complaints import cases, catalog, officers
from handlers.context import text_message, utf16_len
from models import (
    Complaint,
    ComplaintEvent,
    ComplaintEvidence,
    LineGroup,
    Office,
    StaffOffice,
    StaffUser,
    utcnow,
)
from models.complaint import OPEN_STATUSES, OUTCOMES, REFERRED_TO, STATUSES

INBOX_LIMIT = 300  # rows shown at once; filters narrow the rest
CHART_MONTHS = 12
DAYS_MAX = 3650  # a time limit or retention period longer than ten years is a typing mistake
GENERAL_TEXT_MAX = 2000
# Evidence shown inside the page; everything else is only ever downloaded.
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
EXPORT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def _services():
    return current_app.extensions["itabot"]


def _lang() -> str:
    return g.get("lang", "th")


def _both(key: str, sep: str = "\n\n", **values) -> str:
    """A text for LINE, Thai then English (reporters get both, whatever the officer reads).
    A value named ``x_th``/``x_en`` fills ``{x}`` in that language only."""
    entry = _catalog()[key]
    out = []
    for lang in ("th", "en"):
        mine = {k.removesuffix(f"_{lang}"): v for k, v in values.items() if not k.endswith(("_th", "_en"))
                or k.endswith(f"_{lang}")}
        out.append(entry[lang].format(**mine))
    return sep.join(out)


def _int(raw: str | None) -> int:
    raw = (raw or "").strip()
    return int(raw) if raw.isdecimal() else 0


# -- labels for templates --------------------------------------------------------------------


@bp.app_template_filter("complaint_category")
def _category_label(cid: str | None) -> str:
    return catalog.category_label(cid or "", _lang())


@bp.app_template_filter("complaint_status")
def _status_label(key: str | None) -> str:
    return catalog.label(catalog.STATUSES, key, _lang())


@bp.app_template_filter("complaint_outcome")
def _outcome_label(key: str | None) -> str:
    return catalog.label(catalog.OUTCOMES, key, _lang())


@bp.app_template_filter("complaint_referral")
def _referral_label(key: str | None) -> str:
    return catalog.label(catalog.REFERRALS, key, _lang())


@bp.app_template_filter("complaint_identity")
def _identity_label(key: str | None) -> str:
    return catalog.label(catalog.IDENTITIES, key, _lang())


# -- who may -------------------------------------------------------------------------------------


def _officer_or_admin(view: Callable) -> Callable:
    """The complaint settings: complaint officers run them, admins may look after them too."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.get("staff") is None:
            abort(401)
        if not (access.can("complaints") or access.can("settings")):
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _passed_2fa() -> bool:
    """This session was completed with a second factor (TOTP or a recovery code).

    ``session["mfa"]`` is also set for roles that need no second factor, so it counts only
    for an account that has an authenticator enrolled (and then it was set by the TOTP step)."""
    user = g.get("staff")
    return bool(session.get("mfa")) and user is not None and bool(user.totp_enabled)


def _case_or_404(s, complaint_id: int) -> Complaint:
    return access.get_scoped_or_404(s, Complaint, complaint_id)


def _target(c: Complaint) -> str:
    return f"complaint:{c.id}"


# -- inbox ---------------------------------------------------------------------------------------


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _months_back(n: int) -> list[date]:
    """The first day of this month (Bangkok) and of the n-1 months before it, oldest first."""
    first = _month_start(datetime.now(BANGKOK).date())
    months = [first]
    for _ in range(n - 1):
        months.append(_month_start(months[-1] - timedelta(days=1)))
    return list(reversed(months))


def _month_label(m: date) -> str:
    year = (m.year + BE_OFFSET) % 100
    return f"{MONTHS_TH[m.month - 1]} {year:02d}" if _lang() == "th" else f"{m.strftime('%b')} {year:02d}"


def _category_chart(s, ids: list[int]) -> dict:
    """Cases received per month over the last 12 months (Bangkok), stacked by category."""
    months = _months_back(CHART_MONTHS)
    since = datetime(months[0].year, months[0].month, 1, tzinfo=BANGKOK)
    rows = s.execute(select(Complaint.category, Complaint.created_at)
                     .where(Complaint.office_id.in_(ids), Complaint.spam.is_(False),
                            Complaint.created_at >= since)).all()
    counts: dict[tuple[date, str], int] = {}
    totals: dict[str, int] = {}
    for category, created in rows:
        m = _month_start(created.astimezone(BANGKOK).date())
        counts[(m, category)] = counts.get((m, category), 0) + 1
        totals[category] = totals.get(category, 0) + 1
    known = [c for c in catalog.CATEGORY_IDS if c in totals]
    order = known + sorted(c for c in totals if c not in catalog.CATEGORY_IDS)
    colours = {cid: PALETTE[i % len(PALETTE)] for i, cid in enumerate(catalog.CATEGORY_IDS)}
    bars = []
    for m in months:
        y, segments = 0, []
        for cid in order:
            n = counts.get((m, cid), 0)
            if n:
                segments.append({"category": cid, "n": n, "y0": y, "colour": colours.get(cid, "#777777")})
                y += n
        bars.append({"label": _month_label(m), "total": y, "segments": segments})
    legend = [{"category": cid, "n": totals[cid], "colour": colours.get(cid, "#777777")} for cid in order]
    return {"bars": bars, "max": max([b["total"] for b in bars] + [1]), "legend": legend, "total": len(rows)}


@bp.get("/complaints")
@access.requires("complaints")
def complaints():
    ids = access.office_ids()
    status = request.args.get("status") or ""
    if status not in ("", "open", *STATUSES):
        status = ""
    category = request.args.get("category") or ""
    if category not in catalog.CATEGORY_IDS:
        category = ""
    spam_choice = request.args.get("spam") or "hide"
    if spam_choice not in ("hide", "show", "only"):
        spam_choice = "hide"
    spam = {"hide": False, "show": None, "only": True}[spam_choice]
    q = (request.args.get("q") or "").strip()[:100]
    overdue_only = request.args.get("overdue") == "1"
    now = utcnow()
    with _services().db.Session() as s:
        stmt = cases.inbox_query(ids, status=status or None, category=category or None, spam=spam, q=q or None)
        if overdue_only:  # only open cases can be late: take them all, keep the late ones
            stmt = stmt.where(Complaint.status.in_(OPEN_STATUSES), Complaint.spam.is_(False))
            found = s.scalars(stmt).all()
            rules = {oid: cases.settings_for(s, oid) for oid in {c.office_id for c in found}}
            found = [c for c in found if cases.deadlines(c, rules[c.office_id], now).overdue]
        else:
            found = s.scalars(stmt.limit(INBOX_LIMIT + 1)).all()
        more = len(found) > INBOX_LIMIT
        found = found[:INBOX_LIMIT]
        rules = {oid: cases.settings_for(s, oid) for oid in {c.office_id for c in found}}
        case_ids = [c.id for c in found]
        evidence = dict(s.execute(select(ComplaintEvidence.complaint_id, func.count())
                                  .where(ComplaintEvidence.complaint_id.in_(case_ids))
                                  .group_by(ComplaintEvidence.complaint_id)).all()) if case_ids else {}
        assignees = {c.assigned_to for c in found if c.assigned_to}
        emails = dict(s.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(assignees))).all()) \
            if assignees else {}
        by_status = dict(s.execute(select(Complaint.status, func.count())
                                   .where(Complaint.office_id.in_(ids), Complaint.spam.is_(False))
                                   .group_by(Complaint.status)).all())
        spam_count = s.scalar(select(func.count()).select_from(Complaint)
                              .where(Complaint.office_id.in_(ids), Complaint.spam.is_(True))) or 0
        chart = _category_chart(s, ids)
        counts = [cases.overdue_counts(s, oid, now) for oid in ids]
        open_total, overdue_total = sum(n for n, _ in counts), sum(n for _, n in counts)
        several_offices = len(ids) > 1
        office_names = dict(s.execute(select(Office.id, Office.name).where(Office.id.in_(ids))).all())
    rows = []
    for c in found:
        due = cases.deadlines(c, rules[c.office_id], now)
        rows.append({"c": c, "due": due, "open": c.status in OPEN_STATUSES and not c.spam,
                     "evidence": evidence.get(c.id, 0), "assignee": emails.get(c.assigned_to)})
    status_counts = [(key, by_status.get(key, 0)) for key in STATUSES]
    filters = {"status": status, "category": category, "spam": spam_choice, "q": q, "overdue": overdue_only}
    return render_template("console/complaints.html", rows=rows, more=more, limit=INBOX_LIMIT, filters=filters,
                           statuses=STATUSES, categories=catalog.CATEGORY_IDS, status_counts=status_counts,
                           open_total=open_total, overdue_total=overdue_total, spam_count=spam_count,
                           chart=chart, several_offices=several_offices, office_names=office_names)


# -- one case ------------------------------------------------------------------------------------


def _officers_of(s, office_id: int) -> list[StaffUser]:
    return list(s.scalars(select(StaffUser).join(StaffOffice, StaffOffice.user_id == StaffUser.id)
                          .where(StaffOffice.office_id == office_id, StaffUser.active.is_(True),
                                 StaffUser.role == "complaint_officer").order_by(StaffUser.email)))


def _identity_of(c: Complaint) -> dict | None:
    """A named reporter's name and contact (a named reporter chose to be known to the office)."""
    if c.identity != "named" or c.reporter_enc is None:
        return None
    try:
        return json.loads(_services().cipher.decrypt(c.reporter_enc))
    except ValueError:
        return {"name": "?", "contact": "?"}


def _case_page(s, c: Complaint, *, error: str | None = None, revealed: dict | None = None, status: int = 200):
    """Everything the case page shows; ``s`` is the session ``c`` came from."""
    evidence = s.scalars(select(ComplaintEvidence).where(ComplaintEvidence.complaint_id == c.id)
                         .order_by(ComplaintEvidence.id)).all()
    events = s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == c.id)
                       .order_by(ComplaintEvent.at, ComplaintEvent.id)).all()
    staff_ids = {e.staff_id for e in events if e.staff_id} | ({c.assigned_to} if c.assigned_to else set())
    staff_ids |= {int(e.body) for e in events if e.kind == "assigned" and e.body and e.body.isdecimal()}
    emails = dict(s.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids))).all()) \
        if staff_ids else {}
    rules = cases.settings_for(s, c.office_id)
    named = _identity_of(c)
    if named is not None:
        audit.record(s, "complaint.identity_viewed", office_id=c.office_id, target=_target(c),
                     detail={"identity": "named"})
    audit.record(s, "complaint.viewed", office_id=c.office_id, target=_target(c))
    office = s.get(Office, c.office_id)
    page = render_template(
        "console/complaint.html", c=c, evidence=evidence, events=events, emails=emails,
        due=cases.deadlines(c, rules), open=c.status in OPEN_STATUSES and not c.spam,
        officers=_officers_of(s, c.office_id), named=named, revealed=revealed, error=error,
        statuses=STATUSES, outcomes=OUTCOMES, referrals=REFERRED_TO, office=office,
        can_reveal=access.can("complaints.reveal") and _passed_2fa(),
        inline_images=INLINE_IMAGES, done=request.args.get("done"),
    )
    return page, status


@bp.get("/complaints/<int:complaint_id>")
@access.requires("complaints")
def complaint_detail(complaint_id: int):
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        return _case_page(s, c)


def _push_to_reporter(s, c: Complaint, message: str) -> bool:
    """Named and confidential reporters hear about their case on LINE (anonymous ones only when
    they follow it with their receipt code)."""
    try:
        to = cases.reporter_line_id(c, _services().cipher)
    except ValueError:  # encrypted under another key: nobody to tell
        return False
    if not to:
        return False
    queue_push(s, c.office_id, to, [text_message(message)])
    return True


def _done(complaint_id: int, what: str):
    return redirect(url_for("console.complaint_detail", complaint_id=complaint_id, done=what))


@bp.post("/complaints/<int:complaint_id>/status")
@access.requires("complaints")
def complaint_status(complaint_id: int):
    status = request.form.get("status") or ""
    outcome = request.form.get("outcome") or None
    referred_to = request.form.get("referred_to") or None
    note = (request.form.get("note") or "").strip() or None
    if status not in STATUSES:
        abort(400)
    error = None
    if status == "concluded" and outcome not in OUTCOMES:
        error = text("complaint_needs_outcome")
    elif status == "referred" and referred_to not in REFERRED_TO:
        error = text("complaint_needs_referral")
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        s.refresh(c, with_for_update=True)  # PostgreSQL: a form sent twice at once is seen twice, in turn
        if error is None:
            old = c.status
            try:
                cases.change_status(s, c, g.staff.id, status, outcome=outcome, referred_to=referred_to, note=note)
            except cases.CaseError:
                error = text("complaint_same_status")
        if error is not None:
            return _case_page(s, c, error=error, status=400)
        audit.record(s, "complaint.status_changed", office_id=c.office_id, target=_target(c),
                     detail={"from": old, "to": status, "outcome": c.outcome, "referred_to": c.referred_to,
                             "note": note is not None})
        if status != old:  # the push names the status only: a changed outcome or referral would tell them nothing new
            _push_to_reporter(s, c, _both("complaint_push_status", sep=" / ", reference=c.reference,
                                          status_th=catalog.label(catalog.STATUSES, status, "th"),
                                          status_en=catalog.label(catalog.STATUSES, status, "en")))
    return _done(complaint_id, "status")


@bp.post("/complaints/<int:complaint_id>/assign")
@access.requires("complaints")
def complaint_assign(complaint_id: int):
    raw = request.form.get("assignee") or ""
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        assignee = None
        if raw:
            assignee = _int(raw)
            if assignee not in {o.id for o in _officers_of(s, c.office_id)}:
                abort(400)
        cases.assign(s, c, g.staff.id, assignee)
        audit.record(s, "complaint.assigned", office_id=c.office_id, target=_target(c),
                     detail={"to": f"user:{assignee}" if assignee else None})
    return _done(complaint_id, "assigned")


@bp.post("/complaints/<int:complaint_id>/note")
@access.requires("complaints")
def complaint_note(complaint_id: int):
    note = (request.form.get("note") or "").strip()
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        if not note:
            return _case_page(s, c, error=text("complaint_empty_text"), status=400)
        cases.add_note(s, c, g.staff.id, note)
        audit.record(s, "complaint.note_added", office_id=c.office_id, target=_target(c))
    return _done(complaint_id, "note")


@bp.post("/complaints/<int:complaint_id>/message")
@access.requires("complaints")
def complaint_message(complaint_id: int):
    body = (request.form.get("message") or "").strip()
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        if not body:
            return _case_page(s, c, error=text("complaint_empty_text"), status=400)
        if utf16_len(body) > cases.REPLY_MAX:  # as LINE counts: pushed in Thai and English, it must fit twice
            return _case_page(s, c, error=text("complaint_message_long", n=cases.REPLY_MAX), status=400)
        cases.message_reporter(s, c, g.staff.id, body)
        pushed = _push_to_reporter(s, c, _both("complaint_push_message", reference=c.reference, message=body))
        audit.record(s, "complaint.message_sent", office_id=c.office_id, target=_target(c),
                     detail={"pushed": pushed})
    return _done(complaint_id, "message_pushed" if pushed else "message")


@bp.post("/complaints/<int:complaint_id>/spam")
@access.requires("complaints")
def complaint_spam(complaint_id: int):
    spam = request.form.get("spam") == "1"
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        cases.mark_spam(s, c, g.staff.id, spam)
        audit.record(s, "complaint.spam_marked" if spam else "complaint.spam_unmarked", office_id=c.office_id,
                     target=_target(c))
    return _done(complaint_id, "spam" if spam else "not_spam")


@bp.post("/complaints/<int:complaint_id>/reveal")
@access.requires("complaints")
@access.requires("complaints.reveal")
def complaint_reveal(complaint_id: int):
    services = _services()
    with services.db.session() as s:
        c = _case_or_404(s, complaint_id)
        if not _passed_2fa():
            audit.record(s, "complaint.reveal_refused", office_id=c.office_id, target=_target(c),
                         detail={"reason": "no_2fa"})
            refused = True
        else:
            refused = False
            try:
                who = cases.reveal(s, c, g.staff.id, services.cipher)
            except cases.CaseError:
                return _case_page(s, c, error=text("complaint_nothing_to_reveal"), status=400)
            audit.record(s, "complaint.identity_revealed", office_id=c.office_id, target=_target(c),
                         detail={"identity": c.identity})
            page = _case_page(s, c, revealed=who)
    if refused:
        abort(403)
    return page


@bp.get("/complaints/<int:complaint_id>/evidence/<int:evidence_id>")
@access.requires("complaints")
def complaint_evidence(complaint_id: int, evidence_id: int):
    with _services().db.session() as s:
        c = _case_or_404(s, complaint_id)
        ev = s.get(ComplaintEvidence, evidence_id)
        if ev is None or ev.complaint_id != c.id or ev.kind == "location" or ev.data is None:
            abort(404)
        data, kind, content_type, filename = ev.data, ev.kind, ev.content_type, ev.filename
        audit.record(s, "complaint.evidence_downloaded", office_id=c.office_id, target=_target(c),
                     detail={"evidence": ev.id, "kind": kind})
    inline = kind == "image" and content_type in INLINE_IMAGES
    name = filename or f"evidence-{evidence_id}"
    resp = send_file(io.BytesIO(data), mimetype=content_type or "application/octet-stream",
                     as_attachment=not inline, download_name=name, etag=False, conditional=False, max_age=None)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- settings --------------------------------------------------------------------------------------


def _days(raw: str | None) -> int | None:
    """A number of days as typed: Thai or Arabic digits, spaces around, "1,000" with its thousands separator."""
    from handlers.text import typed_whole_number

    n = typed_whole_number(raw)
    return n if n is not None and 1 <= n <= DAYS_MAX else None


def _settings_office() -> int:
    ids = access.office_ids()
    if not ids:
        abort(404)
    raw = request.values.get("office_id")
    office_id = _int(raw) if raw else ids[0]
    if office_id not in ids:
        abort(404)
    return office_id


def _link_state(user: StaffUser, office_id: int) -> str:
    if user.line_user_id_enc:
        return "linked"
    if (user.line_link_hash and user.line_link_office_id == office_id and user.line_link_expires_at
            and user.line_link_expires_at > utcnow()):
        return "pending"
    return "none"


def _settings_page(office_id: int, *, message: str | None = None, error: str | None = None,
                   link_code: str | None = None, form: dict | None = None, status: int = 200):
    with _services().db.Session() as s:
        rules = cases.settings_for(s, office_id)
        chosen = [c[0] for c in cases.categories_for(s, office_id)]
        groups = s.scalars(select(LineGroup).where(LineGroup.office_id == office_id, LineGroup.active.is_(True))
                           .order_by(LineGroup.id)).all()
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
        me = s.get(StaffUser, g.staff.id)
        link = _link_state(me, office_id)
        link_expires = me.line_link_expires_at
    values = {
        "first_action_days": str(rules.first_action_days), "conclude_days": str(rules.conclude_days),
        "retention_days": str(rules.retention_days), "categories": chosen,
        "general_text_th": rules.general_text_th or "", "general_text_en": rules.general_text_en or "",
    }
    values.update(form or {})
    return render_template("console/complaint_settings.html", office_id=office_id, offices=offices, values=values,
                           categories=catalog.CATEGORIES, groups=groups, link=link, link_expires=link_expires,
                           link_code=link_code, message=message, error=error,
                           is_officer=access.can("complaints")), status


@bp.route("/complaints/settings", methods=["GET", "POST"])
@_officer_or_admin
def complaint_settings():
    office_id = _settings_office()
    if request.method == "GET":
        return _settings_page(office_id)
    if request.form.get("form") == "groups":
        wanted = {_int(v) for v in request.form.getlist("alerts")}
        with _services().db.session() as s:
            groups = s.scalars(select(LineGroup).where(LineGroup.office_id == office_id,
                                                       LineGroup.active.is_(True))).all()
            changed = []
            for grp in groups:
                on = grp.id in wanted
                if bool(grp.complaint_alerts) != on:
                    grp.complaint_alerts = on
                    changed.append(grp.id)
            if changed:
                audit.record(s, "complaint.alert_groups_changed", office_id=office_id, target=f"office:{office_id}",
                             detail={"groups": sorted(changed),
                                     "alerting": sorted(grp.id for grp in groups if grp.complaint_alerts)})
        return _settings_page(office_id, message=text("saved"))
    form = {key: request.form.get(key) or "" for key in ("first_action_days", "conclude_days", "retention_days",
                                                          "general_text_th", "general_text_en")}
    chosen = [cid for cid in catalog.CATEGORY_IDS if cid in request.form.getlist("categories")]
    form["categories"] = chosen
    first, conclude, retention = (_days(form[k]) for k in ("first_action_days", "conclude_days", "retention_days"))
    th, en = form["general_text_th"].strip(), form["general_text_en"].strip()
    error = None
    if first is None or conclude is None or retention is None:
        error = text("complaint_bad_days", n=DAYS_MAX)
    elif first > conclude:
        error = text("complaint_first_after_conclude")
    elif not chosen:
        error = text("complaint_no_categories")
    elif len(th) > GENERAL_TEXT_MAX or len(en) > GENERAL_TEXT_MAX:
        error = text("complaint_general_long", n=GENERAL_TEXT_MAX)
    if error is not None:
        return _settings_page(office_id, error=error, form=form, status=400)
    with _services().db.session() as s:
        row = cases.settings_for(s, office_id)
        if row not in s:  # the defaults applied until now: the office gets its own row
            s.add(row)
        new = {"first_action_days": first, "conclude_days": conclude, "retention_days": retention,
               "categories": ",".join(chosen), "general_text_th": th or None, "general_text_en": en or None}
        changed = [k for k, v in new.items() if getattr(row, k) != v]
        for k, v in new.items():
            setattr(row, k, v)
        if changed:
            shown = {k: new[k] for k in changed if k not in ("general_text_th", "general_text_en")}
            audit.record(s, "complaint.settings_changed", office_id=office_id, target=f"office:{office_id}",
                         detail={"fields": changed, **shown})
    return _settings_page(office_id, message=text("saved"))


@bp.post("/complaints/settings/link")
@access.requires("complaints")
def complaint_link():
    office_id = _settings_office()
    services = _services()
    with services.db.session() as s:
        me = s.get(StaffUser, g.staff.id)
        code = officers.new_link_code(s, me, office_id, services.cipher)
        audit.record(s, "complaint.line_link_started", office_id=office_id, target=f"user:{me.id}")
    return _settings_page(office_id, link_code=code)


@bp.post("/complaints/settings/unlink")
@access.requires("complaints")
def complaint_unlink():
    office_id = _settings_office()
    with _services().db.session() as s:
        me = s.get(StaffUser, g.staff.id)
        officers.unlink(me)
        audit.record(s, "complaint.line_unlinked", office_id=office_id, target=f"user:{me.id}")
    return _settings_page(office_id, message=text("complaint_unlinked"))


# -- statistics download ---------------------------------------------------------------------------


@bp.get("/complaints/export")
@access.requires("complaints")
def complaint_export():
    args = request.args
    today = datetime.now(BANGKOK).date()
    defaults = {"from": today.replace(day=1).isoformat(), "to": today.isoformat(), "format": "xlsx"}
    if not any(k in args for k in ("from", "to", "format")):
        return render_template("console/complaint_export.html", values=defaults, error=None)
    from complaints import stats

    fmt = args.get("format") or "xlsx"
    values = {"from": args.get("from") or "", "to": args.get("to") or "", "format": fmt}
    try:  # 2026-11-30 as the date field sends it; typed BE dates and Thai digits work too
        start, end = stats.parse_day(values["from"]), stats.parse_day(values["to"])
    except ValueError:
        start = end = None
    if start is None or end is None or start > end:
        return render_template("console/complaint_export.html", values=values,
                               error=text("complaint_export_bad_dates")), 400
    if fmt not in EXPORT_TYPES:
        abort(400)
    ids = access.office_ids()
    with _services().db.session() as s:
        summary = stats.summary(s, ids, start, end)
        audit.record(s, "complaint.exported", office_id=ids[0] if len(ids) == 1 else None,
                     detail={"from": start.isoformat(), "to": end.isoformat(), "format": fmt, "offices": ids})
    if fmt == "xlsx":
        body: bytes | str = stats.to_xlsx(summary)
    else:
        body = stats.to_csv(summary)
        if not body.startswith("\ufeff"):  # Excel reads Thai headers right only with the BOM
            body = "\ufeff" + body
    name = f"complaints-{start.isoformat()}-{end.isoformat()}.{fmt}"
    return Response(body, mimetype=EXPORT_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
