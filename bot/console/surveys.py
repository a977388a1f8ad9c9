"""Console pages for survey campaigns (survey coordinators): campaigns, sources and posters,
reach by source and day, answers against target, IIT participation by division, staff import."""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import date, timedelta

from flask import Response, abort, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from bot.console import access, audit
from bot.console.views import bp, text
from bot.thaidate import be_date, be_datetime, parse_typed_date
from bot.xlsx import inert
from handlers.context import utf16_len
from handlers.text import thai_digits_to_arabic, typed_whole_number
from models import LinkClicks, Office, StaffMember, SurveyAnswered, SurveyCampaign, TrackedLink
from surveys import campaigns as rules
from surveys.reminders import groups as registered_groups

log = logging.getLogger("itabot.console.surveys")

SUPPRESS_BELOW = 5  # a division smaller than this shows no IIT figure: answers must stay safe
CHART_DAYS = 30
PALETTE = ("#1f5f8b", "#c8962d", "#2e6b4f", "#8b3a3a", "#5a3e7a", "#3d7a8b", "#7a6b2e", "#555555")


def _services():
    return current_app.extensions["itabot"]


@bp.route("/surveys", methods=["GET", "POST"])
@access.requires("surveys")
def surveys():
    services = _services()
    error = None
    if request.method == "POST":
        raw_office = request.form.get("office_id") or ""
        office_id = int(raw_office) if raw_office.isdecimal() else 0
        if office_id not in access.office_ids():
            abort(404)
        fields, error = _campaign_form()
        if error is None:
            try:
                with services.db.session() as s:
                    c = rules.add_campaign(s, office_id, request.form.get("kind") or "", **fields)
                    audit.record(s, "survey.created", office_id=office_id, target=f"campaign:{c.id}",
                                 detail={"kind": c.kind, "fiscal_year": c.fiscal_year})
                return redirect(url_for("console.survey_detail", campaign_id=c.id))
            except rules.CampaignError as exc:
                error = _campaign_error(exc)
    with services.db.Session() as s:
        rows = s.execute(
            access.scoped(select(SurveyCampaign, Office.name).join(Office, Office.id == SurveyCampaign.office_id),
                          SurveyCampaign.office_id)
            .order_by(SurveyCampaign.opens_on.desc())
        ).all()
        clicks = dict(s.execute(
            select(TrackedLink.campaign_id, func.coalesce(func.sum(LinkClicks.clicks), 0))
            .join(LinkClicks, LinkClicks.link_id == TrackedLink.id)
            .where(TrackedLink.office_id.in_(access.office_ids()))
            .group_by(TrackedLink.campaign_id)).all())
        answered = {c.id: answered_count(s, c) for c, _ in rows}
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
    today = rules.today_bangkok()
    return render_template("console/surveys.html", rows=rows, clicks=clicks, answered=answered, offices=offices,
                           today=today, error=error), (400 if error else 200)


def _campaign_form() -> tuple[dict, str | None]:
    """A campaign form's link, dates and target, or the error to show. Dates CE or BE, ISO or D/M/YYYY (a BE
    year, 2569, typed into the date box is read as 2026); the target in Thai or Arabic digits, "1,200" too."""
    opens, closes = parse_typed_date(request.form.get("opens")), parse_typed_date(request.form.get("closes"))
    raw_internal = (request.form.get("internal_deadline") or "").strip()
    internal = parse_typed_date(raw_internal)
    raw_target = (request.form.get("target") or "").strip()
    target = typed_whole_number(raw_target)
    if opens is None or closes is None or (raw_internal and internal is None):
        return {}, text("survey_bad_dates")
    if raw_target and (target is None or not 1 <= target <= rules.MAX_TARGET):
        return {}, text("survey_err_target", max=f"{rules.MAX_TARGET:,}")
    return {"url": (request.form.get("url") or "").strip(), "opens": opens, "closes": closes,
            "internal_deadline": internal, "target": target}, None


def _campaign_error(exc: rules.CampaignError) -> str:
    """The rule's error in the console's language (its dates in BE)."""
    if exc.code is None:
        return str(exc)
    lang = g.get("lang", "th")
    values = {k: be_date(v, lang) if isinstance(v, date) else (f"{v:,}" if k == "max" else v)
              for k, v in exc.values.items()}
    return text(exc.code, **values)


def _campaign_or_404(s, campaign_id: int) -> SurveyCampaign:
    return access.get_scoped_or_404(s, SurveyCampaign, campaign_id)


def division_participation(s, campaign: SurveyCampaign) -> dict:
    """IIT: enrolled, eligible staff per division and how many said they answered — only as aggregates,
    and no figure at all for a division of fewer than SUPPRESS_BELOW eligible people.

    The small divisions are shown together as "other divisions" when that group reaches SUPPRESS_BELOW;
    otherwise they are left out of every figure, the headline too (``partial``), so that no total minus
    the divisions shown gives away a small division's count. Only eligible staff count: a "ตอบแล้ว" from
    anyone else (the public, staff under a year) changes nothing here."""
    members = s.scalars(select(StaffMember).where(StaffMember.office_id == campaign.office_id)).all()
    said = set(s.scalars(select(SurveyAnswered.line_user_id).where(SurveyAnswered.campaign_id == campaign.id)))
    by_division: dict[str, list[StaffMember]] = {}
    for m in members:
        if rules.served_a_year(m.started_on):
            by_division.setdefault(m.division, []).append(m)

    def figures(people: list[StaffMember]) -> dict:
        answered = sum(1 for m in people if m.line_user_id and m.line_user_id in said)
        return {"suppressed": False, "eligible": len(people), "enrolled": sum(1 for m in people if m.line_user_id),
                "answered": answered, "percent": round(100 * answered / len(people))}

    rows, hidden = [], []
    for division, people in sorted(by_division.items()):
        if len(people) < SUPPRESS_BELOW:
            rows.append({"division": division, "suppressed": True})
            hidden += people
        else:
            rows.append({"division": division, **figures(people)})
    small = sum(1 for r in rows if r["suppressed"])
    others = {"divisions": small, **figures(hidden)} if len(hidden) >= SUPPRESS_BELOW else None
    counted = [r for r in rows if not r["suppressed"]] + ([others] if others else [])
    return {"rows": rows, "others": others, "hidden": small if others is None else 0,
            "answered": sum(r["answered"] for r in counted)}


def answered_count(s, campaign: SurveyCampaign) -> tuple[int, int]:
    """The headline "said they answered" and how many small divisions it leaves out (IIT, see
    :func:`division_participation`); for the EIT everyone who said so."""
    if campaign.kind == "IIT":
        p = division_participation(s, campaign)
        return p["answered"], p["hidden"]
    return s.scalar(select(func.count()).select_from(SurveyAnswered)
                    .where(SurveyAnswered.campaign_id == campaign.id)), 0


@bp.get("/surveys/<int:campaign_id>")
@access.requires("surveys")
def survey_detail(campaign_id: int, error: str | None = None):
    services = _services()
    today = rules.today_bangkok()
    start = today - timedelta(days=CHART_DAYS - 1)
    with services.db.Session() as s:
        c = _campaign_or_404(s, campaign_id)
        links = s.scalars(select(TrackedLink).where(TrackedLink.campaign_id == c.id).order_by(TrackedLink.id)).all()
        per_link = dict(s.execute(
            select(LinkClicks.link_id, func.sum(LinkClicks.clicks))
            .where(LinkClicks.link_id.in_([link.id for link in links])).group_by(LinkClicks.link_id)).all())
        per_day_link = {(day, link_id): n for link_id, day, n in s.execute(
            select(LinkClicks.link_id, LinkClicks.day, LinkClicks.clicks)
            .where(LinkClicks.link_id.in_([link.id for link in links]), LinkClicks.day >= start)).all()}
        participation = division_participation(s, c) if c.kind == "IIT" else None
        answered, hidden = answered_count(s, c)
    days = [start + timedelta(days=i) for i in range(CHART_DAYS)]
    # Clicks by source over time: one stacked bar a day, one colour a source.
    colours = {link.id: PALETTE[i % len(PALETTE)] for i, link in enumerate(links)}
    chart = []
    for d in days:
        y, segments = 0, []
        for link in links:
            n = int(per_day_link.get((d, link.id), 0))
            if n:
                segments.append({"source": link.source, "n": n, "y0": y, "colour": colours[link.id]})
                y += n
        chart.append({"day": d, "total": y, "segments": segments})
    return render_template(
        "console/survey.html", c=c, links=links, per_link=per_link, answered=answered, hidden=hidden,
        participation=participation,
        chart=chart, chart_max=max([day["total"] for day in chart] + [1]), colours=colours,
        base=services.settings.public_base_url, suppress_below=SUPPRESS_BELOW, error=error,
    ), (400 if error else 200)


@bp.post("/surveys/<int:campaign_id>/edit")
@access.requires("surveys")
def edit_survey(campaign_id: int):
    """Change a campaign's link, dates or target. When the dates change, its scheduled reminders nobody edited
    are planned again from the new dates (``surveys.reminders.replan``); the page says how many, and how many
    edited ones were kept as they were."""
    from surveys import reminders as rem

    services = _services()
    fields, error = _campaign_form()
    if error is not None:
        return survey_detail(campaign_id, error=error)
    try:
        with services.db.session() as s:
            c = _campaign_or_404(s, campaign_id)
            before = rem.planned(s, c)
            dates_changed = rules.edit_campaign(s, c, **fields)
            made, kept = rem.replan(s, c, before) if dates_changed else (0, 0)
            audit.record(s, "survey.edited", office_id=c.office_id, target=f"campaign:{c.id}",
                         detail={"dates_changed": dates_changed, "reminders_planned": made, "reminders_kept": kept})
    except rules.CampaignError as exc:
        return survey_detail(campaign_id, error=_campaign_error(exc))
    return redirect(url_for("console.survey_detail", campaign_id=campaign_id, edited=1,
                            **({"replanned": made, "kept": kept} if dates_changed else {})))


@bp.post("/surveys/<int:campaign_id>/sources")
@access.requires("surveys")
def add_source(campaign_id: int):
    name = (request.form.get("source") or "").strip()
    if not name or len(name) > 60:
        abort(400)
    with _services().db.session() as s:
        c = _campaign_or_404(s, campaign_id)
        link = rules.link_for(s, c, name)
        audit.record(s, "survey.source_added", office_id=c.office_id, target=f"campaign:{c.id}",
                     detail={"source": link.source})
    return redirect(url_for("console.survey_detail", campaign_id=campaign_id))


@bp.get("/surveys/<int:campaign_id>/poster/<int:link_id>.<fmt>")
@access.requires("surveys")
def poster(campaign_id: int, link_id: int, fmt: str):
    from surveys.poster import render_poster_pdf, render_poster_png

    if fmt not in ("pdf", "png"):
        abort(404)
    services = _services()
    with services.db.session() as s:
        c = _campaign_or_404(s, campaign_id)
        link = s.get(TrackedLink, link_id)
        if link is None or link.campaign_id != c.id:
            abort(404)
        content = rules.poster_content(s, c, link, services.settings.public_base_url)
        audit.record(s, "survey.poster_downloaded", office_id=c.office_id, target=f"campaign:{c.id}",
                     detail={"source": link.source, "format": fmt})
    if not content.link.startswith("https://"):  # a printed http link would not be trusted or opened
        return render_template("console/error.html", title=text("poster"), message=text("poster_needs_https")), 409
    data = render_poster_pdf(content) if fmt == "pdf" else render_poster_png(content)
    return Response(data, mimetype="application/pdf" if fmt == "pdf" else "image/png",
                    headers={"Content-Disposition": attachment(f"poster-{c.kind}-{link.source}.{fmt}",
                                                               f"poster-{c.kind}-{link.id}.{fmt}")})


def attachment(name: str, fallback: str) -> str:
    """A Content-Disposition for a download named after what people typed (Thai, quotes): RFC 6266
    with the real name as RFC 5987 ``filename*`` and a plain ASCII ``filename`` (``fallback``) for
    old clients. Only ASCII letters, digits, dots, dashes and underscores go in the quoted part."""
    from urllib.parse import quote

    name = re.sub(r"[\x00-\x1f\x7f/\\:]+", "-", name).strip()
    if re.fullmatch(r"[A-Za-z0-9._-]+", name):
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.get("/surveys/<int:campaign_id>/reach.csv")
@access.requires("surveys")
def reach_csv(campaign_id: int):
    services = _services()
    with services.db.session() as s:
        c = _campaign_or_404(s, campaign_id)
        rows = s.execute(
            select(TrackedLink.source, LinkClicks.day, LinkClicks.clicks)
            .join(LinkClicks, LinkClicks.link_id == TrackedLink.id)
            .where(TrackedLink.campaign_id == c.id).order_by(LinkClicks.day, TrackedLink.source)).all()
        audit.record(s, "survey.reach_exported", office_id=c.office_id, target=f"campaign:{c.id}")

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["วันที่ (พ.ศ.) / date (BE)", "วันที่ / date (ISO)", "ช่องทาง / source", "จำนวนคลิก / clicks"])
    for source, day, clicks in rows:
        w.writerow(inert([be_date(day), day.isoformat(), source, clicks]))
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=reach-campaign-{c.id}.csv"})


# -- staff ---------------------------------------------------------------------------------------


CSV_LIMIT = 1024 * 512


STAFF_FIELD_MAX = 200  # staff_members.name and .division


def decode_csv(data: bytes) -> str | None:
    """A CSV's text: UTF-8 (with or without Excel's BOM), else Thai Windows (cp874/TIS-620, what Excel
    writes as "CSV" on Thai Windows); None if it is neither (UTF-16, a spreadsheet, an image)."""
    for encoding in ("utf-8-sig", "cp874"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return None if "\x00" in text else text
    return None


def csv_delimiter(raw: str) -> str:
    """The separator of an uploaded CSV, guessed from its first lines: a comma, or a semicolon (what Excel writes
    where the comma is the decimal mark), or a tab (copied from a sheet); a comma when it cannot tell."""
    try:
        return csv.Sniffer().sniff("\n".join(raw.splitlines()[:20]), delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _staff_rows(raw: str) -> tuple[list[tuple[str, str, object]], str | None]:
    """(name, division, start date) rows of an uploaded CSV, or the error to show (in the console's language).
    An error names the row as Excel numbers it: the header and blank lines count."""
    reader = csv.reader(io.StringIO(raw), delimiter=csv_delimiter(raw))
    rows = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
    if rows and not rules.parse_start_date(rows[0][1][2] if len(rows[0][1]) > 2 else None):
        rows = rows[1:]  # a header row
    today = rules.today_bangkok()
    parsed = []
    for n, r in rows:
        started = rules.parse_start_date(r[2]) if len(r) > 2 else None
        if len(r) < 3 or not r[0].strip() or not r[1].strip() or started is None:
            return [], text("staff_bad_row", row=n)
        if started > today:
            return [], text("staff_future_row", row=n, date=be_date(started, g.get("lang", "th")))
        if len(r[0].strip()) > STAFF_FIELD_MAX or len(r[1].strip()) > STAFF_FIELD_MAX:  # the columns' size
            return [], text("staff_long_row", row=n, max=STAFF_FIELD_MAX)
        parsed.append((r[0].strip(), r[1].strip(), started))
    return parsed, (None if parsed else text("staff_empty"))


@bp.route("/staff", methods=["GET", "POST"])
@access.requires("staff")
def staff():
    """Staff list; import a CSV of (name, division, start date) and print invite slips. Someone already
    on the list (same name and division) is updated, not added again."""
    services = _services()
    if not access.office_ids():
        abort(404)
    office_id = access.office_ids()[0]
    error = None
    if request.method == "POST":
        upload = request.files.get("file")
        data = upload.read(CSV_LIMIT + 1) if upload else b""
        raw = decode_csv(data) if len(data) <= CSV_LIMIT else None
        if len(data) > CSV_LIMIT:
            error = text("staff_too_big")
        elif raw is None:
            error = text("staff_bad_encoding")
        else:
            parsed, error = _staff_rows(raw)
        if error is None:
            try:
                with services.db.session() as s:
                    done = [rules.register_staff(s, office_id, name, division, started)
                            for name, division, started in parsed]
                    slips = [(i.member.name, i.member.division, i.code) for i in done if i.code]
                    counts = {k: sum(1 for i in done if i.status == k)
                              for k in ("new", "renewed", "has_code", "enrolled")}
                    audit.record(s, "staff.imported", office_id=office_id,
                                 detail={"count": len(done), **counts})
                    office = s.get(Office, office_id)
                    return render_template("console/slips.html", slips=slips, office=office,
                                           summary=text("staff_import_summary", rows=len(done),
                                                        new=counts["new"], updated=len(done) - counts["new"],
                                                        renewed=counts["renewed"], has_code=counts["has_code"],
                                                        enrolled=counts["enrolled"]))
            except rules.CampaignError:
                error = text("staff_bad_file")
    return _staff_page(office_id, error)


def _staff_page(office_id: int, error: str | None):
    from models import StaffInviteCode

    with _services().db.Session() as s:
        members = s.scalars(select(StaffMember).where(StaffMember.office_id == office_id)
                            .order_by(StaffMember.division, StaffMember.name)).all()
        code_until = dict(s.execute(
            select(StaffInviteCode.staff_id, func.max(StaffInviteCode.expires_at))
            .where(StaffInviteCode.office_id == office_id, StaffInviteCode.used_at.is_(None),
                   StaffInviteCode.expires_at > rules.utcnow())
            .group_by(StaffInviteCode.staff_id)).all())
        office = s.get(Office, office_id)
    return render_template("console/staff.html", members=members, error=error, office=office,
                           code_until=code_until, lang=g.get("lang", "th")), (400 if error else 200)


@bp.post("/staff/<int:member_id>/reissue")
@access.requires("staff")
def staff_reissue(member_id: int):
    """A new invite code for someone not yet on LINE whose slip was lost or whose code expired."""
    services = _services()
    with services.db.session() as s:
        member = access.get_scoped_or_404(s, StaffMember, member_id)
        if member.line_user_id is not None:
            office_id = member.office_id
            error = text("staff_already_enrolled")
        else:
            code = rules.reissue_code(s, member)
            audit.record(s, "staff.code_reissued", office_id=member.office_id, target=f"staff:{member.id}")
            office = s.get(Office, member.office_id)
            return render_template("console/slips.html", slips=[(member.name, member.division, code)],
                                   office=office, summary=text("staff_reissued"))
    return _staff_page(office_id, error)


# -- LINE groups ---------------------------------------------------------------------------------


@bp.route("/groups", methods=["GET", "POST"])
@access.requires("surveys")
def groups():
    """LINE groups the bot was added to (divisions use them); attach each to a division."""
    from models import LineGroup

    services = _services()
    if request.method == "POST":
        raw = request.form.get("group_id") or ""
        with services.db.session() as s:
            group = access.get_scoped_or_404(s, LineGroup, int(raw) if raw.isdecimal() else 0)
            group.division = (request.form.get("division") or "").strip()[:200] or None
            audit.record(s, "group.division_set", office_id=group.office_id, target=f"group:{group.id}",
                         detail={"division": group.division})
        return redirect(url_for("console.groups"))
    with services.db.Session() as s:
        rows = s.scalars(access.scoped(select(LineGroup), LineGroup.office_id)
                         .where(LineGroup.active.is_(True)).order_by(LineGroup.id)).all()
    return render_template("console/groups.html", groups=rows)


@bp.post("/surveys/<int:campaign_id>/announce")
@access.requires("surveys")
def announce(campaign_id: int):
    """Send the survey card to every registered LINE group of the office (costs quota: one message per member).
    Not sent at all when this month's quota left is less than that; the page says how many groups got it and
    how many could not be reached."""
    from handlers.context import Context
    from handlers.surveys import survey_card
    from surveys import reminders as rem

    services = _services()
    with services.db.Session() as s:
        c = _campaign_or_404(s, campaign_id)
        chats = [(grp.group_id, grp.kind) for grp in registered_groups(s, c.office_id)]
    cost = sum(rem.group_sizes(services, c.office_id, chats).values())
    try:
        left = services.quota_remaining(c.office_id)
    except Exception as exc:  # LINE did not say: sending is still LINE's to refuse, group by group
        log.warning("quota unavailable before an announcement", extra={"error": exc.__class__.__name__})
        left = None
    if left is not None and cost > left:
        return redirect(url_for("console.survey_detail", campaign_id=campaign_id, announce_cost=cost,
                                quota_left=left))
    with services.db.session() as s:
        c = _campaign_or_404(s, campaign_id)
        office = s.get(Office, c.office_id)
        targets = registered_groups(s, c.office_id)
        cards = []
        for group in targets:
            ctx = Context(session=s, office_id=office.id, office_name=office.name, event={}, user=None,
                          public_base_url=services.settings.public_base_url)
            source = f"group:{group.division or group.group_id[-6:]}"
            cards.append((group.group_id, survey_card(ctx, c, source, in_group=True).to_dict()))
        audit.record(s, "survey.announced", office_id=c.office_id, target=f"campaign:{c.id}",
                     detail={"groups": len(cards), "cost": cost})
    gateway = services.gateway(c.office_id)
    sent = failed = 0
    for group_id, card in cards:
        try:
            gateway.push(group_id, [card])
            sent += 1
        except Exception as exc:  # one group that left or blocked the bot does not stop the others
            failed += 1
            log.warning("announcement to a group failed", extra={"error": exc.__class__.__name__})
    return redirect(url_for("console.survey_detail", campaign_id=campaign_id, announced=sent,
                            **({"announce_failed": failed} if failed else {})))


# -- reminders -----------------------------------------------------------------------------------


@bp.app_template_filter("reminder_note")
def _reminder_note(note) -> str:
    from surveys.reminders import note_text

    return note_text(note, g.get("lang", "th"))


def _audiences(kind: str) -> tuple[str, ...]:
    return ("iit_staff",) if kind == "IIT" else ("eit_followers", "eit_askers")


@bp.route("/surveys/<int:campaign_id>/reminders", methods=["GET", "POST"])
@access.requires("reminders")
def campaign_reminders(campaign_id: int):
    """The campaign's reminder schedule: preview (who, what, when, cost), this month's quota, edits,
    and the progress of a send under way (the page refreshes itself while one is)."""
    from datetime import datetime as dt

    from models import Reminder
    from surveys import reminders as rem

    services = _services()
    error = typed = None
    if request.method == "POST":
        action = request.form.get("action")
        with services.db.session() as s:
            c = _campaign_or_404(s, campaign_id)
            window = rem.window_of(s.get(Office, c.office_id))
            if action == "schedule":
                made = rem.schedule(s, c, include_groups=request.form.get("include_groups") == "1")
                audit.record(s, "reminders.scheduled", office_id=c.office_id, target=f"campaign:{c.id}",
                             detail={"count": len(made), "groups": request.form.get("include_groups") == "1"})
            elif action in ("edit", "cancel"):
                raw = request.form.get("reminder_id") or ""
                r = s.get(Reminder, int(raw)) if raw.isdecimal() else None
                if r is None or r.campaign_id != c.id:
                    abort(404)
                if r.status != "scheduled":
                    error = text("reminder_not_editable")
                elif action == "cancel":
                    r.status = "cancelled"
                    audit.record(s, "reminder.cancelled", office_id=c.office_id, target=f"reminder:{r.id}")
                else:
                    when = thai_digits_to_arabic((request.form.get("send_at") or "").strip())
                    try:
                        local = dt.fromisoformat(when).replace(tzinfo=rem.BANGKOK)
                    except ValueError:
                        local = None
                    th, en = (request.form.get("text_th") or "").strip(), (request.form.get("text_en") or "").strip()
                    chosen = request.form.get("audience") or r.audience
                    if local is None or not th or not en or chosen not in _audiences(c.kind):
                        error = text("reminder_bad_edit")
                    elif _passed(local, r.send_at):
                        error = text("reminder_past", when=be_datetime(local, g.get("lang", "th")))
                    elif utf16_len(th) > 4000 or utf16_len(en) > 4000:  # a LINE text message's limit
                        error = text("reminder_text_long", n="4,000")
                    elif rem.LINK not in th or rem.LINK not in en:  # a survey reminder with no way to the survey
                        error = text("reminder_no_link")
                    else:
                        r.send_at = rem.out_of_quiet_hours(local, window)
                        r.text_th, r.text_en, r.audience = th, en, chosen
                        r.include_groups = request.form.get("include_groups") == "1"
                        r.retry_at = None  # an edited reminder is looked at afresh
                        audit.record(s, "reminder.edited", office_id=c.office_id, target=f"reminder:{r.id}",
                                     detail={"audience": r.audience, "groups": r.include_groups})
            else:
                abort(400)
        if error is None:
            return redirect(url_for("console.campaign_reminders", campaign_id=campaign_id))
        if action == "edit":  # the form comes back as it was typed, not as it was stored
            typed = {"id": int(request.form["reminder_id"]), "send_at": request.form.get("send_at") or "",
                     "audience": request.form.get("audience") or "", "text_th": request.form.get("text_th") or "",
                     "text_en": request.form.get("text_en") or "",
                     "include_groups": request.form.get("include_groups") == "1"}
    with services.db.Session() as s:
        c = _campaign_or_404(s, campaign_id)
        office = s.get(Office, c.office_id)
        rows = s.scalars(select(Reminder).where(Reminder.campaign_id == c.id).order_by(Reminder.send_at)).all()
        chats = [(grp.group_id, grp.kind) for grp in rem.groups(s, c.office_id)]
        wants_groups = any(r.include_groups and r.status == "scheduled" for r in rows)
        sizes = rem.group_sizes(services, c.office_id, chats) if wants_groups else {}
        progress = rem.progress_of(s, [r.id for r in rows if r.status in ("sending", "sent")])
        preview = []
        for r in rows:
            if r.status == "scheduled":
                # Who is counted is judged on the sending day, as the sending will (a year's service for IIT).
                day = r.send_at.astimezone(rem.BANGKOK).date()
                cost = len(rem.audience(s, r, c, day)) + (sum(sizes.values()) if r.include_groups else 0)
            else:
                cost = r.recipients
            preview.append({"r": r, "cost": cost, "progress": progress.get(r.id)})
    remaining_cost = sum(p["cost"] for p in preview if p["r"].status == "scheduled")
    try:
        quota = services.gateway(c.office_id).quota()
    except Exception:  # LINE unreachable: the page still shows the schedule
        quota = None
    sending = any(p["r"].status == "sending" for p in preview)
    return render_template("console/reminders.html", c=c, preview=preview, quota=quota, office=office,
                           window=tuple(rem.clock(m) for m in rem.window_of(office)), groups=len(chats),
                           audiences=_audiences(c.kind), remaining_cost=remaining_cost, sending=sending,
                           error=error, typed=typed), (400 if error else 200)


def _passed(local, current) -> bool:
    """A send time typed into the edit form that has gone by (before this minute). The reminder's own time
    sent back unchanged is not refused: a reminder that waited for quota past its time can still be mended."""
    if local.replace(second=0, microsecond=0) == current.astimezone(local.tzinfo).replace(second=0, microsecond=0):
        return False
    return local < rules.utcnow().replace(second=0, microsecond=0)
