"""Console page for No Gift festival reminders (survey coordinators): the office's festivals — dates,
audience, on/off, texts, its own festivals — and the festival reminders themselves: when each goes
out (BE, Bangkok), to whom, what it costs in quota, its progress, and a cancel button."""

from __future__ import annotations

from flask import abort, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import select

from bot.console import access, audit
from bot.console.views import bp, text
from models import Office, Reminder
from surveys import festivals as fest
from surveys import reminders as rem

FIELDS = ("name_th", "name_en", "text_th", "text_en")


def _services():
    return current_app.extensions["itabot"]


def _office_id() -> int:
    ids = access.office_ids()
    if not ids:
        abort(404)
    raw = request.values.get("office_id") or str(ids[0])
    office_id = int(raw) if raw.isdecimal() else 0
    if office_id not in ids:
        abort(404)
    return office_id


def _form_values() -> dict | str:
    """The festival fields of the posted form, or the catalog key of what is wrong with them."""
    values: dict = {name: (request.form.get(name) or "").strip() for name in FIELDS}
    for name in ("day", "send"):
        values[name] = fest.parse_day(request.form.get(name))
        if values[name] is None:
            return "festival_bad_date"
    audience = request.form.get("audience") or "staff"
    if audience not in fest.AUDIENCES:
        abort(400)
    values.update(audience=audience, on=request.form.get("on") == "1", groups=request.form.get("groups") == "1")
    return values


@bp.route("/festivals", methods=["GET", "POST"])
@access.requires("reminders")
def festival_reminders():
    services = _services()
    office_id = _office_id()
    error = None
    if request.method == "POST":
        action = request.form.get("action")
        key = request.form.get("key") or None
        with services.db.session() as s:
            office = s.get(Office, office_id)
            if action == "cancel":
                raw = request.form.get("reminder_id") or ""
                r = s.get(Reminder, int(raw)) if raw.isdecimal() else None
                if r is None or r.office_id != office_id or r.festival is None:
                    abort(404)
                if r.status != "scheduled":
                    error = "reminder_not_editable"
                else:
                    r.status = "cancelled"
                    audit.record(s, "reminder.cancelled", office_id=office_id, target=f"reminder:{r.id}",
                                 detail={"festival": r.festival, "year": r.label})
            elif action == "remove":
                error = fest.remove(s, office, key or "")
                if error is None:
                    audit.record(s, "festival.removed", office_id=office_id, target=f"office:{office_id}",
                                 detail={"festival": key})
            elif action in ("save", "add"):
                values = _form_values()
                if isinstance(values, str):
                    error = values
                else:
                    if action == "add":
                        values["on"] = True
                    error = fest.change(s, office, key if action == "save" else None, **values)
                    if error is None:
                        audit.record(s, "festival.changed", office_id=office_id, target=f"office:{office_id}",
                                     detail={"festival": key or values["name_en"], "day": values["day"],
                                             "send": values["send"], "audience": values["audience"],
                                             "on": values["on"], "groups": values["groups"]})
            else:
                abort(400)
        if error is None:
            return redirect(url_for("console.festival_reminders", office_id=office_id))
        error = text(error)
    with services.db.Session() as s:
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
        office = s.get(Office, office_id)
        festivals = fest.of_office(office)
        rows = fest.upcoming(s, office_id)
        chats = [(grp.group_id, grp.kind) for grp in rem.groups(s, office_id)]
        wants_groups = any(r.include_groups and r.status == "scheduled" for r in rows)
        sizes = rem.group_sizes(services, office_id, chats) if wants_groups else {}
        progress = rem.progress_of(s, [r.id for r in rows if r.status in ("sending", "sent")])
        preview = []
        for r in rows:
            cost = (len(rem.audience(s, r, None)) + (sum(sizes.values()) if r.include_groups else 0)
                    if r.status == "scheduled" else r.recipients)
            preview.append({"r": r, "name": fest.name_of(office, r, g.get("lang", "th")), "cost": cost,
                            "progress": progress.get(r.id)})
    try:
        quota = services.gateway(office_id).quota()
    except Exception:  # LINE unreachable: the page still shows the schedule
        quota = None
    defaults = {a: fest.default_texts(a) for a in fest.AUDIENCES}
    builtin = {f.key for f in fest.defaults()}
    return render_template(
        "console/festivals.html", office=office, offices=offices, festivals=festivals, preview=preview,
        quota=quota, remaining_cost=sum(p["cost"] for p in preview if p["r"].status == "scheduled"),
        sending=any(p["r"].status == "sending" for p in preview), groups=len(chats), defaults=defaults,
        builtin=builtin, day_text=fest.day_text, window=tuple(rem.clock(m) for m in rem.window_of(office)),
        error=error), (400 if error else 200)
