"""``/console``: sign-in with Argon2id passwords and TOTP, roles, office isolation, audit trail.

Sessions live in Flask's signed cookie (Secure when served over https, HttpOnly,
SameSite=Lax) and end after ``IDLE`` without activity or ``ABSOLUTE`` after sign-in, and at
once when the user's password, role or 2FA changes (``session_epoch``). Every form carries a
CSRF token (Flask-WTF).
"""

from __future__ import annotations

import csv
import io
import json
import time
import tomllib
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select

from bot.console import access, audit, security
from bot.xlsx import inert
from models import (
    AuditEntry,
    Delivery,
    LineGroup,
    LineUser,
    Office,
    StaffInvite,
    StaffMember,
    StaffOffice,
    StaffUser,
    SurveyCampaign,
    UnansweredQuestion,
    WebhookEvent,
    utcnow,
)
from models.event import FAILED, PENDING
from models.staff import ROLES

bp = Blueprint("console", __name__, url_prefix="/console")

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=10)
INVITE_TTL = timedelta(days=3)
CATALOG = Path(__file__).with_name("messages.toml")


@cache
def _catalog() -> dict[str, dict[str, str]]:
    with CATALOG.open("rb") as fh:
        return tomllib.load(fh)


def text(key: str, **values) -> str:
    entry = _catalog().get(key, {"th": key, "en": key})
    value = entry.get(g.get("lang", "th")) or entry["th"]
    return value.format(**values) if values else value


def _services():
    return current_app.extensions["itabot"]


# -- session handling ----------------------------------------------------------------------


@bp.before_request
def _load_user() -> Response | None:
    g.lang = session.get("lang", "th")
    g.staff = None
    g.staff_offices = []
    uid = session.get("uid")
    if uid is None:
        return None
    now = time.time()
    if now - session.get("t0", 0) > ABSOLUTE.total_seconds() or now - session.get("seen", 0) > IDLE.total_seconds():
        _end_session()
        return None
    with _services().db.Session() as s:
        user = s.get(StaffUser, uid)
        if user is None or not user.active or user.session_epoch != session.get("epoch"):
            _end_session()
            return None
        offices = list(s.scalars(select(StaffOffice.office_id).where(StaffOffice.user_id == uid)))
        s.expunge(user)
    session["seen"] = now
    if not session.get("mfa"):
        g.pending = user  # password done, TOTP not yet
        return None
    g.staff = user
    g.staff_offices = offices
    return None


def _end_session() -> None:
    lang = session.get("lang", "th")
    session.clear()
    session["lang"] = lang


def _start_session(user: StaffUser, mfa_done: bool) -> None:
    lang = session.get("lang", "th")
    session.clear()  # a new session id, so nothing from before sign-in carries over
    session.update(uid=user.id, epoch=user.session_epoch, mfa=mfa_done, t0=time.time(), seen=time.time(), lang=lang)
    session.permanent = False


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    resp.headers["Cache-Control"] = "no-store"
    if request.is_secure or _services().settings.public_base_url.startswith("https://"):
        resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return resp


@bp.app_template_global("_")
def _template_text(key: str, **values) -> str:
    return text(key, **values)


@bp.app_template_filter("be_datetime")
def _be_datetime(value) -> str:
    from bot.thaidate import be_datetime

    return be_datetime(value, g.get("lang", "th")) if value else ""


@bp.app_template_filter("be_date")
def _be_date(value) -> str:
    from bot.thaidate import be_date

    return be_date(value, g.get("lang", "th")) if value else ""


@bp.app_template_filter("bkk_local")
def _bkk_local(value) -> str:
    """For <input type="datetime-local">: the Bangkok wall-clock time."""
    return value.astimezone(ZoneInfo("Asia/Bangkok")).strftime("%Y-%m-%dT%H:%M") if value else ""


@bp.get("/font/<weight>.ttf")
def font(weight: str):
    """Sarabun for devices without a Thai font (the same package the printed material uses)."""
    from flask import send_file

    from bot.richmenu_image import sarabun_path

    if weight not in ("Regular", "Bold"):
        abort(404)
    return send_file(sarabun_path(weight), mimetype="font/ttf", max_age=86400)


@bp.app_template_global("can")
def _template_can(permission: str) -> bool:
    return access.can(permission)


@bp.errorhandler(401)
def _unauthorized(_e):
    if g.get("pending") is not None:
        return redirect(url_for("console.mfa"))
    return redirect(url_for("console.login", next=request.path if request.method == "GET" else None))


@bp.errorhandler(403)
def _forbidden(_e):
    return render_template("console/error.html", title=text("forbidden_title"), message=text("forbidden")), 403


@bp.errorhandler(CSRFError)
def _expired_form(_e):
    """A form sent after its session ended (signed out in another tab, 30 minutes idle): say so in the
    console's words and hand back what was typed, so an officer's long answer is not lost."""
    kept = [(k, v) for k, v in request.form.items() if k != "csrf_token" and len(v.strip()) > 20]
    if "lang" not in g:  # refused before the console's own before_request, which sets it
        g.lang = session.get("lang", "th")
    return render_template("console/expired.html", kept=kept), 400


@bp.errorhandler(404)
def _not_found(_e):
    return render_template("console/error.html", title=text("not_found_title"), message=text("not_found")), 404


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.dashboard")


# -- sign-in -------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        email = (request.form.get("email") or "").strip().lower()
        password = request.form.get("password") or ""
        services = _services()
        with services.db.session() as s:
            user = s.scalar(select(StaffUser).where(StaffUser.email == email))
            now = utcnow()
            # What was typed as the email is kept only if it looks like one (not a mistyped password).
            typed = email[:254] if "@" in email and " " not in email else "(not an email)"
            # An address with no account locks as an account would, so that the answers do not tell which exist.
            locked_until = user.locked_until if user is not None else _unknown_locked_until(s, typed, now)
            if security.is_locked(locked_until, now):
                security.verify_password(None, password)  # same work either way
                audit.record(s, "signin.locked", target=f"user:{user.id}" if user else None,
                             detail=None if user else {"email": typed}, actor=user)
                error = text("locked")
            # The password is checked (the same work) whether or not the account exists or is active.
            elif not security.verify_password(user.password_hash if user is not None else None, password) \
                    or user is None or not user.active:
                if user is not None:
                    user.failed_logins += 1
                    lock = security.lock_for(user.failed_logins)
                    if lock is not None:
                        user.locked_until = now + lock
                audit.record(s, "signin.failed", target=f"user:{user.id}" if user else None,
                             detail={"email": typed}, actor=user)
                error = text("bad_credentials")
            else:
                needs_mfa = user.totp_enabled or user.role in access.NEEDS_2FA
                if not needs_mfa:  # with 2FA the counter is reset only once the code is right
                    user.failed_logins = 0
                    user.locked_until = None
                    user.last_login_at = now
                    audit.record(s, "signin", target=f"user:{user.id}", actor=user)
                s.flush()
                s.expunge(user)
        if error is None:
            _start_session(user, mfa_done=not needs_mfa)
            if needs_mfa:
                return redirect(url_for("console.mfa", next=request.args.get("next")))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("console/login.html", error=error), (401 if error else 200)


def _unknown_locked_until(s, typed: str, now):
    """When an address with no account is "locked": as ``security.lock_for`` would lock an account after the failed
    sign-ins recorded for it in the last ``security.UNKNOWN_WINDOW`` (read from the audit log, newest first)."""
    rows = s.execute(select(AuditEntry.at, AuditEntry.detail).where(
        AuditEntry.action == "signin.failed", AuditEntry.actor_id.is_(None), AuditEntry.office_id.is_(None),
        AuditEntry.at > now - security.UNKNOWN_WINDOW).order_by(AuditEntry.id.desc()).limit(1000)).all()
    failed = [at for at, detail in rows if (detail or {}).get("email") == typed]
    lock = security.lock_for(len(failed))
    return failed[0] + lock if failed and lock is not None else None


@bp.route("/2fa", methods=["GET", "POST"])
def mfa():
    user = g.get("pending")
    if user is None:
        return redirect(url_for("console.dashboard" if g.get("staff") else "console.login"))
    if not user.totp_enabled:
        return redirect(url_for("console.mfa_setup"))
    error = None
    if request.method == "POST":
        code = request.form.get("code") or ""
        services = _services()
        with services.db.session() as s:
            row = s.get(StaffUser, user.id)
            now = utcnow()
            ok = False
            if security.is_locked(row.locked_until, now):
                error = text("locked")
            else:
                step = security.verify_totp(services.cipher.decrypt(row.totp_secret_enc), code, row.totp_last_step)
                if step is not None:
                    row.totp_last_step = step
                    ok = True
                else:
                    remaining = security.use_recovery_code(list(row.recovery_codes or []), code)
                    if remaining is not None:
                        row.recovery_codes = remaining
                        ok = True
                        audit.record(s, "signin.recovery_code", target=f"user:{row.id}", actor=row,
                                     detail={"codes_left": len(remaining)})
                if ok:
                    row.failed_logins = 0
                    row.locked_until = None
                    row.last_login_at = now
                    audit.record(s, "signin", target=f"user:{row.id}", actor=row, detail={"2fa": True})
                else:
                    row.failed_logins += 1
                    lock = security.lock_for(row.failed_logins)
                    if lock is not None:
                        row.locked_until = now + lock
                    audit.record(s, "signin.failed_2fa", target=f"user:{row.id}", actor=row)
                    error = error or text("bad_code")
        if ok:
            session["mfa"] = True
            return redirect(_safe_next(request.args.get("next")))
    return render_template("console/mfa.html", error=error), (401 if error else 200)


@bp.route("/2fa/setup", methods=["GET", "POST"])
def mfa_setup():
    user = g.get("pending") or g.get("staff")
    if user is None:
        return redirect(url_for("console.login"))
    if user.totp_enabled:
        # An enrolled authenticator is not replaced from here: not with a password alone, and not
        # by a signed-in session someone else may be using (an admin resets it, #later).
        return redirect(url_for("console.mfa" if g.get("pending") is not None else "console.dashboard"))
    services = _services()
    error = None
    if request.method == "POST":
        secret = session.get("totp_setup")
        step = security.verify_totp(secret, request.form.get("code") or "", None) if secret else None
        if step is None:
            error = text("bad_code")
        else:
            codes, hashes = security.new_recovery_codes()
            with services.db.session() as s:
                row = s.get(StaffUser, user.id)
                row.totp_secret_enc = services.cipher.encrypt(secret)
                row.totp_enabled = True
                row.totp_last_step = step
                row.recovery_codes = hashes
                row.session_epoch += 1
                audit.record(s, "2fa.enabled", target=f"user:{row.id}", actor=row)
                if g.get("pending") is not None:  # enrolling was the second step of signing in
                    row.last_login_at = utcnow()
                    row.failed_logins = 0
                    audit.record(s, "signin", target=f"user:{row.id}", actor=row, detail={"2fa": "enrolled"})
                epoch = row.session_epoch
                s.flush()
                s.expunge(row)
            session.pop("totp_setup", None)
            session.update(epoch=epoch, mfa=True)
            return render_template("console/recovery_codes.html", codes=codes)
    secret = session.get("totp_setup") or security.new_totp_secret()
    session["totp_setup"] = secret
    uri = security.totp_uri(secret, user.email)
    return render_template("console/mfa_setup.html", secret=secret, qr=_qr_data_uri(uri), error=error), (
        400 if error else 200
    )


def _qr_data_uri(data: str) -> str:
    import base64

    import qrcode
    import qrcode.image.svg

    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return "data:image/svg+xml;base64," + base64.b64encode(img.to_string()).decode()


@bp.post("/logout")
def logout():
    user = g.get("staff") or g.get("pending")
    if user is not None:
        with _services().db.session() as s:
            s.get(StaffUser, user.id).session_epoch += 1  # a copied cookie ends here too
            audit.record(s, "signout", target=f"user:{user.id}", actor=user)
    _end_session()
    return redirect(url_for("console.login"))


@bp.get("/lang/<lang>")
def switch_language(lang: str):
    if lang in ("th", "en"):
        session["lang"] = lang
    return redirect(_safe_next(request.args.get("next")))


# -- invitations -------------------------------------------------------------------------------


def create_invite(s, user: StaffUser) -> str:
    token, digest = security.new_token()
    s.add(StaffInvite(user_id=user.id, token_hash=digest, expires_at=utcnow() + INVITE_TTL))
    return token


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    services = _services()
    with services.db.Session() as s:
        invite = s.scalar(select(StaffInvite).where(StaffInvite.token_hash == security.token_hash(token)))
        if invite is None or invite.used_at is not None or invite.expires_at < utcnow():
            abort(404)
        user = s.get(StaffUser, invite.user_id)
        email = user.email
    error = None
    if request.method == "POST":
        password = request.form.get("password") or ""
        if password != request.form.get("password2"):
            error = text("password_mismatch")
        else:
            problem = security.password_problem(password, email)
            error = text(problem) if problem else None
        if error is None:
            with services.db.session() as s:
                invite = s.scalar(select(StaffInvite).where(StaffInvite.token_hash == security.token_hash(token)))
                if invite.used_at is not None:
                    abort(404)
                invite.used_at = utcnow()
                row = s.get(StaffUser, invite.user_id)
                row.password_hash = security.hash_password(password)
                row.session_epoch += 1
                audit.record(s, "password.set", target=f"user:{row.id}", actor=row)
            return redirect(url_for("console.login"))
    return render_template("console/invite.html", email=email, error=error), (400 if error else 200)


# -- pages -------------------------------------------------------------------------------------


@bp.get("/")
@access.requires("dashboard")
def dashboard():
    services = _services()
    month = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = []
    with services.db.Session() as s:
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
        for o in offices:
            followers = s.scalar(select(func.count()).select_from(LineUser).where(
                LineUser.office_id == o.id, LineUser.following.is_(True)))
            groups = s.scalar(select(func.count()).select_from(LineGroup).where(
                LineGroup.office_id == o.id, LineGroup.active.is_(True)))
            sent = dict(s.execute(
                select(Delivery.kind, func.coalesce(func.sum(Delivery.recipients * Delivery.messages), 0))
                .where(Delivery.office_id == o.id, Delivery.sent_at >= month, Delivery.status == "sent")
                .group_by(Delivery.kind)).all())
            backlog = dict(s.execute(
                select(WebhookEvent.status, func.count()).where(
                    WebhookEvent.office_id == o.id, WebhookEvent.status.in_((PENDING, FAILED)))
                .group_by(WebhookEvent.status)).all())
            today = datetime.now(ZoneInfo("Asia/Bangkok")).date()
            surveys_open = s.scalar(select(func.count()).select_from(SurveyCampaign).where(
                SurveyCampaign.office_id == o.id, SurveyCampaign.opens_on <= today, SurveyCampaign.closes_on >= today))
            staff_enrolled = s.scalar(select(func.count()).select_from(StaffMember).where(
                StaffMember.office_id == o.id, StaffMember.line_user_id.is_not(None)))
            complaints = None
            if access.can("complaints"):  # counts only, and only for those who handle complaints
                from complaints.cases import overdue_counts

                complaints = overdue_counts(s, o.id)
            questions = None
            if access.can("qa"):  # people waiting for an officer's answer (the queue's "open" tab)
                questions = s.scalar(select(func.count()).select_from(UnansweredQuestion).where(
                    UnansweredQuestion.office_id == o.id, UnansweredQuestion.status == "open"))
            rows.append({
                "office": o, "followers": followers, "groups": groups, "complaints": complaints,
                "questions": questions,
                "surveys_open": surveys_open, "staff_enrolled": staff_enrolled,
                "replies": int(sent.get("reply", 0)),
                "quota_used": int(sum(v for k, v in sent.items() if k != "reply")),
                "pending": backlog.get(PENDING, 0), "failed": backlog.get(FAILED, 0),
            })
    return render_template("console/dashboard.html", rows=rows)


@bp.get("/users")
@access.requires("users")
def users():
    return _users_page()


def _users_page(*, error: str | None = None, email: str = "", status: int = 200):
    services = _services()
    ids = access.office_ids()
    with services.db.Session() as s:
        members = s.execute(
            select(StaffUser, StaffOffice.office_id, Office.slug)
            .join(StaffOffice, StaffOffice.user_id == StaffUser.id)
            .join(Office, Office.id == StaffOffice.office_id)
            .where(StaffOffice.office_id.in_(ids))
            .order_by(StaffUser.email)
        ).all()
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
    return render_template("console/users.html", members=members, offices=offices, roles=ROLES, now=utcnow(),
                           labels=access.ROLE_LABELS, invite_link=session.pop("invite_link", None),
                           error=error, email=email), status


@bp.post("/users/invite")
@access.requires("users")
def invite_user():
    email = (request.form.get("email") or "").strip().lower()
    role = request.form.get("role") or ""
    raw = request.form.get("office_id") or ""
    office_id = int(raw) if raw.isdecimal() else 0
    if office_id not in access.office_ids():
        abort(404)
    if role not in ROLES:
        abort(400)
    if "@" not in email or len(email) > 254:
        return _users_page(error=text("invite_bad_email"), email=email[:254], status=400)
    services = _services()
    with services.db.session() as s:
        if s.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
            return _users_page(error=text("invite_email_taken", email=email), email=email, status=409)
        user = StaffUser(email=email, role=role)
        s.add(user)
        s.flush()
        s.add(StaffOffice(user_id=user.id, office_id=office_id))
        token = create_invite(s, user)
        audit.record(s, "user.invited", target=f"user:{user.id}", office_id=office_id,
                     detail={"email": email, "role": role})
    session["invite_link"] = f"{services.settings.public_base_url}/console/invite/{token}"
    return redirect(url_for("console.users"))


def _member_or_404(s, user_id: int) -> StaffUser:
    """A user this admin may manage: one working only for offices the admin also runs."""
    user = s.get(StaffUser, user_id)
    if user is None:
        abort(404)
    theirs = set(s.scalars(select(StaffOffice.office_id).where(StaffOffice.user_id == user_id)))
    mine = set(access.office_ids())
    if not theirs & mine:
        abort(404)
    if not theirs <= mine:  # e.g. a supervisor who also works for another office
        abort(403)
    return user


@bp.post("/users/<int:user_id>/role")
@access.requires("users")
def change_role(user_id: int):
    role = request.form.get("role") or ""
    if role not in ROLES:
        abort(400)
    with _services().db.session() as s:
        user = _member_or_404(s, user_id)
        if user.id == g.staff.id:
            abort(403)  # nobody changes their own role
        old = user.role
        user.role = role
        user.session_epoch += 1  # their sessions end; the new role applies at next sign-in
        audit.record(s, "user.role_changed", target=f"user:{user.id}", detail={"from": old, "to": role})
    return redirect(url_for("console.users"))


@bp.post("/users/<int:user_id>/deactivate")
@access.requires("users")
def deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/users/<int:user_id>/reactivate")
@access.requires("users")
def reactivate(user_id: int):
    """Undo a deactivation (someone back from leave, a mistaken click): they sign in again with their own
    password and second factor, under the same limits as deactivation."""
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool):
    """Deactivate or reactivate a member of the admin's offices (never oneself); their sessions end, audited.
    Reactivated, they start with no failed sign-ins: tries made while deactivated (which always fail) would
    otherwise leave them locked out on their first day back."""
    with _services().db.session() as s:
        user = _member_or_404(s, user_id)
        if user.id == g.staff.id:
            abort(403)
        if user.active != active:
            user.active = active
            user.session_epoch += 1
            if active:
                user.failed_logins, user.locked_until = 0, None
            audit.record(s, "user.reactivated" if active else "user.deactivated", target=f"user:{user.id}")
    return redirect(url_for("console.users"))


@bp.post("/users/<int:user_id>/unlock")
@access.requires("users")
def unlock(user_id: int):
    """End a sign-in lock now (an officer who mistyped their password, and whom the admin has spoken to),
    instead of making them wait up to an hour; their count of failed sign-ins starts again. Audited."""
    with _services().db.session() as s:
        user = _member_or_404(s, user_id)
        if user.id == g.staff.id:
            abort(403)
        if security.is_locked(user.locked_until) or user.failed_logins:
            audit.record(s, "user.unlocked", target=f"user:{user.id}",
                         detail={"failed_logins": user.failed_logins})
            user.failed_logins, user.locked_until = 0, None
    return redirect(url_for("console.users"))


def _audit_query():
    ids = access.office_ids()
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    # Entries of the user's offices, entries about people who work there (sign-ins), and sign-ins with an address
    # that has no account: they belong to no office, and every administrator should see someone trying addresses.
    members = select(StaffOffice.user_id).where(StaffOffice.office_id.in_(ids))
    nobody = (AuditEntry.actor_id.is_(None) & AuditEntry.office_id.is_(None)
              & AuditEntry.action.in_(("signin.failed", "signin.locked")))
    return stmt.where((AuditEntry.office_id.in_(ids)) | (AuditEntry.actor_id.in_(members)) | nobody)


@bp.get("/audit")
@access.requires("audit")
def audit_log():
    action = request.args.get("action") or None
    with _services().db.Session() as s:
        stmt = _audit_query()
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        entries = s.scalars(stmt.limit(500)).all()
    return render_template("console/audit.html", entries=entries, action=action)


@bp.get("/audit.csv")
@access.requires("audit")
def audit_export():
    with _services().db.session() as s:
        audit.record(s, "audit.exported")
    with _services().db.Session() as s:
        entries = s.scalars(_audit_query()).all()
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "เวลา (UTC) / at", "ผู้ใช้ / actor", "หน่วยงาน / office", "การกระทำ / action", "เป้าหมาย / target",
                "รายละเอียด / detail", "IP"])
    for e in entries:
        w.writerow(inert([e.id, e.at.isoformat(), e.actor_email or "", e.office_id or "", e.action, e.target or "",
                          json.dumps(e.detail, ensure_ascii=False) if e.detail is not None else "", e.ip or ""]))
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=itabot-audit.csv"})


# -- office settings (admin) ---------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@access.requires("settings")
def settings():
    services = _services()
    ids = access.office_ids()
    if not ids:
        abort(404)
    raw = request.values.get("office_id") or str(ids[0])
    office_id = int(raw) if raw.isdecimal() else 0
    with services.db.Session() as s:
        access.get_scoped_or_404(s, Office, office_id, office_attr="id")
    message = error = None
    if request.method == "POST" and request.form.get("form") == "reminders":
        from surveys.reminders import parse_clock

        start, end = parse_clock(request.form.get("send_from")), parse_clock(request.form.get("send_until"))
        choice = request.form.get("over_quota")
        if choice not in ("partial", "wait"):
            abort(400)
        if start is None or end is None or not start < end:
            error = text("bad_window")
        else:
            with services.db.session() as s:
                office = s.get(Office, office_id)
                office.send_from, office.send_until, office.over_quota = start, end, choice
                audit.record(s, "settings.changed", office_id=office.id, target=f"office:{office.id}",
                             detail={"fields": ["sending_window", "over_quota"], "send_from": start,
                                     "send_until": end, "over_quota": choice})
            message = text("saved")
    elif request.method == "POST":
        name = (request.form.get("name") or "").strip()
        secret = (request.form.get("channel_secret") or "").strip()
        token = (request.form.get("access_token") or "").strip()
        if not 2 <= len(name) <= 200:
            abort(400)
        with services.db.session() as s:
            office = s.get(Office, office_id)
            changed = []
            if office.name != name and not office.is_default:  # the default office's name is OFFICE_NAME
                office.name = name
                changed.append("name")
            if (secret or token) and not office.is_default:
                if not (secret and token) or len(secret) < 16 or not secret.isalnum():
                    abort(400)
                office.channel_secret_enc = services.cipher.encrypt(secret)
                office.access_token_enc = services.cipher.encrypt(token)
                changed.append("line_channel")  # the values themselves never reach the log
            if changed:
                audit.record(s, "settings.changed", office_id=office.id, target=f"office:{office.id}",
                             detail={"fields": changed})
        services.offices.invalidate()
        message = text("saved")
    with services.db.Session() as s:
        offices = s.scalars(access.scoped(select(Office), Office.id).order_by(Office.id)).all()
        office = s.get(Office, office_id)
    info = services.offices.by_id(office_id)
    base = services.settings.public_base_url
    webhook = f"{base}/callback" if office.is_default else f"{base}/callback/{office.slug}"
    from surveys.reminders import clock

    return render_template("console/settings.html", office=office, offices=offices, info=info,
                           webhook=webhook, message=message, error=error, clock=clock), (400 if error else 200)


@bp.post("/settings/richmenu")
@access.requires("settings")
def deploy_richmenu():
    from bot.richmenu import deploy

    raw = request.form.get("office_id") or ""
    office_id = int(raw) if raw.isdecimal() else 0
    if office_id not in access.office_ids():
        abort(404)
    services = _services()
    deploy(services, office_id)
    with services.db.session() as s:
        audit.record(s, "richmenu.deployed", office_id=office_id, target=f"office:{office_id}")
    return redirect(url_for("console.settings", office_id=office_id))
