"""The staff console: accounts, 2FA, lock-out, CSRF, roles, office isolation and the audit trail."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text, update

from bot.cli import main
from bot.console import access
from bot.gateway import LineError
from models import AuditEntry, StaffOffice, StaffUser, utcnow

PASSWORD = "correct horse battery staple"


class Console:
    """A browser's view of the console: cookies, CSRF tokens from the forms, https."""

    def __init__(self, app) -> None:
        self.app = app
        self.client = app.test_client()
        self.client.environ_base["wsgi.url_scheme"] = "https"  # the session cookie is Secure

    def csrf(self, path: str) -> str:
        page = self.client.get(path).get_data(as_text=True)
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert m, f"no CSRF token on {path}"
        return m.group(1)

    def post(self, path: str, data: dict, form_page: str | None = None):
        data = dict(data, csrf_token=self.csrf(form_page or path))
        return self.client.post(path, data=data)

    def login(self, email: str, password: str = PASSWORD):
        return self.post("/console/login", {"email": email, "password": password})

    def code(self, path: str, code: str):
        return self.post(path, {"code": code})


def _audit(services, action: str | None = None) -> list[AuditEntry]:
    with services.db.Session() as s:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return s.scalars(stmt).all()


def add_user(app, env, email: str, role: str, *offices: str) -> str:
    """`itabot user add`, then the invite link opened and a password set. Returns the email."""
    args = ["user", "add", "--email", email, "--role", role]
    for slug in offices:
        args += ["--office", slug]
    out = CliRunner().invoke(main, args, env=env, catch_exceptions=False).output
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://bot.example.go.th/console/invite/")
    c = Console(app)
    path = link.removeprefix("https://bot.example.go.th")
    resp = c.post(path, {"password": PASSWORD, "password2": PASSWORD})
    assert resp.status_code == 302
    return email


def signed_in(app, env, role: str, email: str | None = None) -> Console:
    """A console signed in as a new user with ``role`` (enrolled in 2FA where the role needs it)."""
    email = email or f"{role}@khet.go.th"
    add_user(app, env, email, role)
    c = Console(app)
    if role in access.NEEDS_2FA:
        enrol(c, email)
    else:
        assert c.login(email).status_code == 302
    return c


@pytest.fixture
def console(app):
    return Console(app)


def enrol(console: Console, email: str) -> str:
    """Sign in for the first time with a role that needs 2FA; returns the TOTP secret."""
    resp = console.login(email)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/console/2fa")
    page = console.client.get("/console/2fa/setup").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    console.enrol_code = pyotp.TOTP(secret).now()
    done = console.code("/console/2fa/setup", console.enrol_code)
    assert done.status_code == 200 and "รหัสกู้คืน" in done.get_data(as_text=True)
    console.recovery = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code>", done.get_data(as_text=True))
    return secret


def test_first_admin_from_the_cli_sets_a_password_enrols_2fa_and_sees_the_dashboard(app, console, env, services):
    add_user(app, env, "admin@khet.go.th", "admin")
    secret = enrol(console, "admin@khet.go.th")
    assert len(console.recovery) == 8
    page = console.client.get("/console/")
    assert page.status_code == 200 and "ผู้ติดตาม" in page.get_data(as_text=True)
    actions = [e.action for e in _audit(services)]
    for expected in ("user.created_cli", "password.set", "2fa.enabled", "signin"):
        assert expected in actions
    with services.db.Session() as s:
        row = s.scalar(select(StaffUser))
    assert row.password_hash.startswith("$argon2id$")
    assert secret not in (row.totp_secret_enc or "")  # stored encrypted


def test_sign_in_with_2fa_wrong_code_reused_code_and_recovery_code(console, env, services, app):
    add_user(app, env, "officer@khet.go.th", "complaint_officer")
    enrol(console, "officer@khet.go.th")
    recovery = console.recovery
    c = Console(app)
    assert c.login("officer@khet.go.th").headers["Location"].startswith("/console/2fa")
    assert c.client.get("/console/").status_code == 302  # not in before the second factor
    bad = c.code("/console/2fa", "000000")
    assert bad.status_code == 401 and "รหัสไม่ถูกต้อง" in bad.get_data(as_text=True)
    assert _audit(services, "signin.failed_2fa")
    # The code used at enrolment is spent; recovery codes work once each.
    assert c.code("/console/2fa", console.enrol_code).status_code == 401
    assert c.code("/console/2fa", recovery[0]).status_code == 302
    assert c.client.get("/console/").status_code == 200
    c2 = Console(app)
    c2.login("officer@khet.go.th")
    assert c2.code("/console/2fa", recovery[0]).status_code == 401
    assert _audit(services, "signin.recovery_code")[0].detail == {"codes_left": 7}


def test_a_2fa_code_typed_in_thai_digits_enrols_and_signs_in(app, env, services):
    thai = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")  # what a Thai phone keyboard types
    add_user(app, env, "officer@khet.go.th", "complaint_officer")
    c = Console(app)
    c.login("officer@khet.go.th")
    page = c.client.get("/console/2fa/setup").get_data(as_text=True)
    totp = pyotp.TOTP(re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1))
    done = c.code("/console/2fa/setup", totp.now().translate(thai))
    assert done.status_code == 200 and "รหัสกู้คืน" in done.get_data(as_text=True)  # was a 500
    c2 = Console(app)
    c2.login("officer@khet.go.th")
    wrong = c2.code("/console/2fa", "๐๐๐ ๐๐๐")
    assert wrong.status_code == 401 and "รหัสไม่ถูกต้อง" in wrong.get_data(as_text=True)
    with services.db.Session() as s:
        spent = s.scalar(select(StaffUser.totp_last_step).where(StaffUser.email == "officer@khet.go.th"))
    code = totp.generate_otp(spent + 1).translate(thai)  # the step after the enrolment's, which is spent
    assert c2.code("/console/2fa", f"{code[:3]} {code[3:]}").status_code == 302
    assert c2.client.get("/console/").status_code == 200


def test_a_recovery_code_is_accepted_as_a_person_types_it(app, env, services):
    """Thai digits, upper case, spaces around or inside, the grouping dashes left out or spaced (once
    only Arabic digits were accepted)."""
    thai = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
    add_user(app, env, "officer@khet.go.th", "complaint_officer")
    first = Console(app)
    enrol(first, "officer@khet.go.th")
    codes = first.recovery
    typed = [f"  {codes[0].translate(thai)}  ", codes[1].replace("-", "").upper(),
             codes[2].replace("-", " - ").translate(thai).upper(), codes[3].replace("-", " "),
             codes[4].replace("-", "\u2013")]  # an en dash, as autocorrect makes of "-"
    for n, code in enumerate(typed):
        c = Console(app)
        c.login("officer@khet.go.th")
        assert c.code("/console/2fa", code).status_code == 302, code
        assert c.client.get("/console/").status_code == 200
        assert _audit(services, "signin.recovery_code")[-1].detail == {"codes_left": 7 - n}
    c = Console(app)
    c.login("officer@khet.go.th")
    assert c.code("/console/2fa", codes[0]).status_code == 401  # spent, however it was typed
    assert c.code("/console/2fa", codes[5][:-1] + "x").status_code == 401  # not hex
    assert c.code("/console/2fa", codes[5][:-2]).status_code == 401  # too short


def test_repeated_failures_lock_the_account_with_back_off(app, console, env, services):
    add_user(app, env, "viewer@khet.go.th", "viewer")
    for _ in range(5):
        assert console.login("viewer@khet.go.th", "wrong password!!").status_code == 401
    locked = console.login("viewer@khet.go.th")  # the right password no longer helps
    assert locked.status_code == 401 and "ล็อก" in locked.get_data(as_text=True)
    assert _audit(services, "signin.locked")
    assert len(_audit(services, "signin.failed")) == 5
    with services.db.Session() as s:
        user = s.scalar(select(StaffUser))
        first_lock = user.locked_until - utcnow()
    assert timedelta(seconds=30) < first_lock <= timedelta(minutes=1)
    with services.db.session() as s:  # the minute passes; one more failure locks for longer
        s.execute(update(StaffUser).values(locked_until=utcnow() - timedelta(seconds=1)))
    console.login("viewer@khet.go.th", "wrong again!!!!")
    with services.db.Session() as s:
        assert s.scalar(select(StaffUser)).locked_until - utcnow() > timedelta(minutes=1, seconds=30)
    with services.db.session() as s:
        s.execute(update(StaffUser).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert console.login("viewer@khet.go.th").status_code == 302


def test_unknown_email_and_wrong_password_look_the_same(app, console, env, services):
    add_user(app, env, "viewer@khet.go.th", "viewer")
    a = console.login("nobody@khet.go.th").get_data(as_text=True)
    b = console.login("viewer@khet.go.th", "not the password").get_data(as_text=True)
    assert "อีเมลหรือรหัสผ่านไม่ถูกต้อง" in a and "อีเมลหรือรหัสผ่านไม่ถูกต้อง" in b


def test_an_address_without_an_account_locks_as_an_account_would(app, console, env, services):
    # Otherwise "locked" after five tries would say which addresses have accounts (an exploratory tester's find).
    add_user(app, env, "viewer@khet.go.th", "viewer")
    for email in ("viewer@khet.go.th", "nobody@khet.go.th"):
        for _ in range(5):
            page = console.login(email, "wrong password!!")
            assert page.status_code == 401 and "อีเมลหรือรหัสผ่านไม่ถูกต้อง" in page.get_data(as_text=True)
        sixth = console.login(email)
        assert sixth.status_code == 401 and "ล็อก" in sixth.get_data(as_text=True), email
    assert "ล็อก" not in console.login("other@khet.go.th", "wrong password!!").get_data(as_text=True)
    assert len(_audit(services, "signin.locked")) == 2


def test_the_password_is_hashed_once_whether_or_not_the_account_exists_or_is_active(app, console, env, services,
                                                                                    monkeypatch):
    from bot.console import security

    calls = []
    real = security.verify_password
    monkeypatch.setattr(security, "verify_password", lambda stored, pw: calls.append(stored) or real(stored, pw))
    add_user(app, env, "viewer@khet.go.th", "viewer")
    with services.db.session() as s:
        s.execute(update(StaffUser).values(active=False))
    console.login("nobody@khet.go.th")
    console.login("viewer@khet.go.th")
    assert len(calls) == 2 and calls[0] is None and calls[1] is not None


def test_an_admin_sees_failed_sign_ins_with_addresses_that_have_no_account(app, console, env, services):
    console.login("nobody@khet.go.th", "guessing123456")
    add_user(app, env, "admin@khet.go.th", "admin")
    c = Console(app)
    enrol(c, "admin@khet.go.th")
    assert "nobody@khet.go.th (ไม่มีบัญชีนี้)" in c.client.get("/console/audit").get_data(as_text=True)
    assert "nobody@khet.go.th" in c.client.get("/console/audit.csv").get_data(as_text=True)


def test_forms_without_a_csrf_token_are_refused(app, console, env, services):
    add_user(app, env, "viewer@khet.go.th", "viewer")
    resp = console.client.post("/console/login", data={"email": "viewer@khet.go.th", "password": PASSWORD})
    assert resp.status_code == 400
    assert not _audit(services, "signin")


def test_weak_passwords_are_refused_and_invites_work_once(console, env, services, app):
    out = CliRunner().invoke(main, ["user", "add", "--email", "new@khet.go.th", "--role", "viewer"], env=env).output
    path = out.strip().splitlines()[-1].removeprefix("https://bot.example.go.th")
    short = console.post(path, {"password": "short", "password2": "short"})
    assert short.status_code == 400 and "12" in short.get_data(as_text=True)
    assert console.post(path, {"password": PASSWORD, "password2": PASSWORD}).status_code == 302
    assert console.client.get(path).status_code == 404


PAGES = {"/console/": "dashboard", "/console/users": "users", "/console/audit": "audit",
         "/console/audit.csv": "audit", "/console/settings": "settings"}


@pytest.mark.parametrize("role", ["admin", "complaint_officer", "survey_coordinator", "viewer", "supervisor"])
def test_each_role_sees_only_its_pages(app, env, services, role):
    c = signed_in(app, env, role)
    for path, permission in PAGES.items():
        status = c.client.get(path).status_code
        allowed = permission in access.ROLE_PERMISSIONS[role]
        assert status == (200 if allowed else 403), (role, path, status)


def test_no_console_page_opens_without_a_session(app):
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console") or rule.arguments - {"user_id"}:
            continue
        if rule.rule in ("/console/login", "/console/2fa", "/console/2fa/setup") or rule.endpoint.endswith("font"):
            continue
        path = rule.rule.replace("<int:user_id>", "1")
        method = "POST" if "POST" in rule.methods and "GET" not in rule.methods else "GET"
        resp = client.open(path, method=method)
        assert resp.status_code in (302, 400), (path, resp.status_code)  # to sign-in, or no CSRF token
        if resp.status_code == 302:
            assert "/console/login" in resp.headers["Location"]


def test_another_office_s_users_answer_404_and_are_not_listed(app, env, services):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    add_user(app, env, "admin@khet.go.th", "admin")
    add_user(app, env, "other@nongchok.go.th", "viewer", "nongchok")
    c = Console(app)
    enrol(c, "admin@khet.go.th")
    with services.db.Session() as s:
        other_id = s.scalar(select(StaffUser.id).where(StaffUser.email == "other@nongchok.go.th"))
    assert "other@nongchok.go.th" not in c.client.get("/console/users").get_data(as_text=True)
    resp = c.post(f"/console/users/{other_id}/role", {"role": "admin"}, form_page="/console/users")
    assert resp.status_code == 404
    resp = c.post(f"/console/users/{other_id}/deactivate", {}, form_page="/console/users")
    assert resp.status_code == 404
    with services.db.Session() as s:
        assert s.get(StaffUser, other_id).role == "viewer"
    # Inviting into another office is refused the same way.
    nongchok = services.offices.by_slug("nongchok").id
    resp = c.post("/console/users/invite", {"email": "x@y.th", "role": "viewer", "office_id": str(nongchok)},
                  form_page="/console/users")
    assert resp.status_code == 404


def test_a_supervisor_sees_aggregates_of_its_offices_only(app, env, services):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    services.offices.add("bangrak", "สำนักงานเขตบางรัก", None, None)
    add_user(app, env, "bma@bangkok.go.th", "supervisor", "default", "nongchok")
    c = Console(app)
    assert c.login("bma@bangkok.go.th").status_code == 302
    page = c.client.get("/console/").get_data(as_text=True)
    assert "สำนักงานเขตหนองจอก" in page and "สำนักงานเขตทดสอบ" in page
    assert "สำนักงานเขตบางรัก" not in page


def test_admin_invites_and_changes_a_role_and_the_changed_user_is_signed_out(app, env, services):
    add_user(app, env, "admin@khet.go.th", "admin")
    admin = Console(app)
    enrol(admin, "admin@khet.go.th")
    resp = admin.post("/console/users/invite", {"email": "coord@khet.go.th", "role": "survey_coordinator",
                                                 "office_id": "1"}, form_page="/console/users")
    assert resp.status_code == 302
    link = re.search(r'id="invite-link">https://[^/]+(/console/invite/[^<]+)<',
                     admin.client.get("/console/users").get_data(as_text=True)).group(1)
    coord = Console(app)
    coord.post(link, {"password": PASSWORD, "password2": PASSWORD})
    assert coord.login("coord@khet.go.th").status_code == 302
    assert coord.client.get("/console/").status_code == 200
    with services.db.Session() as s:
        coord_id = s.scalar(select(StaffUser.id).where(StaffUser.email == "coord@khet.go.th"))
    admin.post(f"/console/users/{coord_id}/role", {"role": "viewer"}, form_page="/console/users")
    assert coord.client.get("/console/").status_code == 302  # their session ended
    changed = _audit(services, "user.role_changed")[0]
    assert changed.detail == {"from": "survey_coordinator", "to": "viewer"}
    assert changed.actor_email == "admin@khet.go.th"
    assert _audit(services, "user.invited")


def test_inviting_an_email_that_already_has_an_account_says_so_on_the_users_page(app, env, services):
    admin = signed_in(app, env, "admin")
    first = admin.post("/console/users/invite", {"email": "coord@khet.go.th", "role": "survey_coordinator",
                                                  "office_id": "1"}, form_page="/console/users")
    assert first.status_code == 302
    again = admin.post("/console/users/invite", {"email": " Coord@khet.go.th", "role": "viewer", "office_id": "1"},
                       form_page="/console/users")
    page = again.get_data(as_text=True)
    assert again.status_code == 409 and 'id="invite-error"' in page  # the console's page, not a bare "409 Conflict"
    assert "coord@khet.go.th มีผู้ใช้อยู่แล้ว" in page and 'value="coord@khet.go.th"' in page
    admin.client.get("/console/lang/en")
    bad = admin.post("/console/users/invite", {"email": "somchai", "role": "viewer", "office_id": "1"},
                     form_page="/console/users")
    assert bad.status_code == 400 and "Please enter a valid email address" in bad.get_data(as_text=True)
    with services.db.Session() as s:
        assert s.scalar(select(StaffUser.role).where(StaffUser.email == "coord@khet.go.th")) == "survey_coordinator"


def test_an_admin_reactivates_a_deactivated_user_who_can_then_sign_in_again(app, env, services):
    """A deactivated user could not be brought back: the page offered nothing and there was no route."""
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    admin = signed_in(app, env, "admin")
    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    add_user(app, env, "other@nongchok.go.th", "viewer", "nongchok")
    add_user(app, env, "bma@bangkok.go.th", "supervisor", "default", "nongchok")
    coord = Console(app)
    assert coord.login("coord@khet.go.th").status_code == 302
    with services.db.Session() as s:
        ids = {u.email: u.id for u in s.scalars(select(StaffUser))}
    coord_id = ids["coord@khet.go.th"]
    admin.post(f"/console/users/{coord_id}/deactivate", {}, form_page="/console/users")
    assert coord.client.get("/console/").status_code == 302
    assert Console(app).login("coord@khet.go.th").status_code == 401
    page = admin.client.get("/console/users").get_data(as_text=True)
    assert f'action="/console/users/{coord_id}/reactivate"' in page and "เปิดใช้งานอีกครั้ง" in page
    admin.client.get("/console/lang/en")
    assert "Reactivate" in admin.client.get("/console/users").get_data(as_text=True)
    resp = admin.post(f"/console/users/{coord_id}/reactivate", {}, form_page="/console/users")
    assert resp.status_code == 302
    with services.db.Session() as s:
        assert s.get(StaffUser, coord_id).active
    entry = _audit(services, "user.reactivated")
    assert len(entry) == 1 and entry[0].target == f"user:{coord_id}" and entry[0].actor_email == "admin@khet.go.th"
    assert f'action="/console/users/{coord_id}/reactivate"' not in admin.client.get("/console/users").get_data(
        as_text=True)
    back = Console(app)
    assert back.login("coord@khet.go.th").status_code == 302 and back.client.get("/console/").status_code == 200
    # The same limits as deactivation: another office's user is not found, one who also works elsewhere is
    # not this admin's to manage, and only admins may do it.
    with services.db.session() as s:
        for email in ("other@nongchok.go.th", "bma@bangkok.go.th"):
            s.get(StaffUser, ids[email]).active = False
    assert admin.post(f"/console/users/{ids['other@nongchok.go.th']}/reactivate", {},
                      form_page="/console/users").status_code == 404
    assert admin.post(f"/console/users/{ids['bma@bangkok.go.th']}/reactivate", {},
                      form_page="/console/users").status_code == 403
    assert back.post(f"/console/users/{ids['bma@bangkok.go.th']}/reactivate", {},
                     form_page="/console/").status_code == 403
    with services.db.Session() as s:
        assert not s.get(StaffUser, ids["other@nongchok.go.th"]).active
        assert not s.get(StaffUser, ids["bma@bangkok.go.th"]).active
    assert len(_audit(services, "user.reactivated")) == 1


def test_a_reactivated_user_is_not_locked_out_by_tries_made_while_deactivated(app, env, services):
    """Sign-in tries while deactivated always fail, and five of them lock the account: reactivated, the officer
    was still locked out for up to an hour."""
    admin = signed_in(app, env, "admin")
    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    with services.db.Session() as s:
        coord_id = s.scalar(select(StaffUser.id).where(StaffUser.email == "coord@khet.go.th"))
    admin.post(f"/console/users/{coord_id}/deactivate", {}, form_page="/console/users")
    coord = Console(app)
    for _ in range(6):
        assert coord.login("coord@khet.go.th").status_code == 401
    assert "บัญชีถูกล็อกชั่วคราว" in coord.login("coord@khet.go.th").get_data(as_text=True)
    admin.post(f"/console/users/{coord_id}/reactivate", {}, form_page="/console/users")
    assert coord.login("coord@khet.go.th").status_code == 302
    assert coord.client.get("/console/").status_code == 200


def test_an_admin_sees_who_is_locked_out_and_unlocks_them(app, env, services):
    """An officer who mistyped their password five times waited up to an hour: nobody could see the lock or end
    it. The users page shows it, until when, and an admin can end it (audited)."""
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    admin = signed_in(app, env, "admin")
    add_user(app, env, "coord@khet.go.th", "survey_coordinator")
    add_user(app, env, "other@nongchok.go.th", "viewer", "nongchok")
    with services.db.Session() as s:
        ids = {u.email: u.id for u in s.scalars(select(StaffUser))}
    coord_id = ids["coord@khet.go.th"]
    coord = Console(app)
    for _ in range(5):
        assert coord.login("coord@khet.go.th", "not the password").status_code == 401
    assert "บัญชีถูกล็อกชั่วคราว" in coord.login("coord@khet.go.th").get_data(as_text=True)  # the right password
    page = admin.client.get("/console/users").get_data(as_text=True)
    assert f'id="locked-{coord_id}"' in page and "ล็อกถึง" in page
    assert f'action="/console/users/{coord_id}/unlock"' in page and "ปลดล็อก" in page
    admin.client.get("/console/lang/en")
    assert "locked until" in admin.client.get("/console/users").get_data(as_text=True)
    # Only for the admin's own offices' people, and only admins.
    with services.db.session() as s:
        s.get(StaffUser, ids["other@nongchok.go.th"]).locked_until = utcnow() + timedelta(minutes=30)
    assert admin.post(f"/console/users/{ids['other@nongchok.go.th']}/unlock", {},
                      form_page="/console/users").status_code == 404
    assert admin.post(f"/console/users/{coord_id}/unlock", {}, form_page="/console/users").status_code == 302
    assert coord.login("coord@khet.go.th").status_code == 302 and coord.client.get("/console/").status_code == 200
    page = admin.client.get("/console/users").get_data(as_text=True)
    assert f'id="locked-{coord_id}"' not in page and f'action="/console/users/{coord_id}/unlock"' not in page
    (entry,) = _audit(services, "user.unlocked")
    assert entry.target == f"user:{coord_id}" and entry.actor_email == "admin@khet.go.th"
    assert entry.detail == {"failed_logins": 5}
    assert coord.post(f"/console/users/{coord_id}/unlock", {}, form_page="/console/").status_code == 403
    with services.db.Session() as s:
        assert s.get(StaffUser, ids["other@nongchok.go.th"]).locked_until is not None


def test_sessions_end_after_idle_time(app, env, services, monkeypatch):
    add_user(app, env, "viewer@khet.go.th", "viewer")
    c = Console(app)
    c.login("viewer@khet.go.th")
    assert c.client.get("/console/").status_code == 200
    import time as _time

    real = _time.time
    monkeypatch.setattr("bot.console.views.time.time", lambda: real() + 31 * 60)
    assert c.client.get("/console/").status_code == 302


def test_security_headers_and_cookie_flags(app, env, services):
    add_user(app, env, "viewer@khet.go.th", "viewer")
    c = Console(app)
    resp = c.login("viewer@khet.go.th")
    cookie = resp.headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = c.client.get("/console/")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["X-Frame-Options"] == "DENY"


def test_audit_log_is_append_only_and_exports_are_audited(app, env, services):
    add_user(app, env, "admin@khet.go.th", "admin")
    c = Console(app)
    enrol(c, "admin@khet.go.th")
    csv_resp = c.client.get("/console/audit.csv")
    assert csv_resp.status_code == 200 and "signin" in csv_resp.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(csv_resp.get_data(as_text=True).lstrip("\ufeff"))))[1:]
    details = [json.loads(r[6]) for r in rows if r[6]]  # JSON a program can read, not Python's repr
    assert details and all(isinstance(d, dict) for d in details)
    assert _audit(services, "audit.exported")
    entry = _audit(services)[0]
    with pytest.raises(PermissionError), services.db.session() as s:
        s.get(AuditEntry, entry.id).action = "nothing happened"
    with pytest.raises(Exception, match="append-only"), services.db.session() as s:
        s.execute(text("DELETE FROM audit_log"))
    with pytest.raises(Exception, match="append-only"), services.db.session() as s:
        s.execute(text("UPDATE audit_log SET action = 'x'"))
    assert len(_audit(services)) >= 5


def test_language_switch(app, env, services):
    c = Console(app)
    assert "เข้าสู่ระบบ" in c.client.get("/console/login").get_data(as_text=True)
    c.client.get("/console/lang/en")
    assert "Sign in" in c.client.get("/console/login").get_data(as_text=True)


def test_a_password_alone_cannot_replace_an_enrolled_authenticator(app, env, services):
    add_user(app, env, "officer@khet.go.th", "complaint_officer")
    enrol(Console(app), "officer@khet.go.th")
    thief = Console(app)
    thief.login("officer@khet.go.th")  # knows the password, not the phone
    resp = thief.client.get("/console/2fa/setup")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/console/2fa")
    assert thief.client.post("/console/2fa/setup", data={"code": "123456"}).status_code in (302, 400)
    with services.db.Session() as s:
        assert len(s.scalar(select(StaffUser)).recovery_codes) == 8  # nothing re-enrolled


def test_admin_connects_an_office_s_line_channel_and_deploys_its_rich_menus(app, env, services, fake_line):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    add_user(app, env, "admin@nongchok.go.th", "admin", "nongchok")
    c = Console(app)
    enrol(c, "admin@nongchok.go.th")
    oid = services.offices.by_slug("nongchok").id
    page = c.client.get("/console/settings").get_data(as_text=True)
    assert "https://bot.example.go.th/callback/nongchok" in page and "ตัวจำลอง" in page
    secret = "feedfacefeedfacefeedfacefeedface"
    resp = c.post("/console/settings", {"office_id": str(oid), "name": "สำนักงานเขตหนองจอก",
                                        "channel_secret": secret, "access_token": "test-token"},
                  form_page="/console/settings")
    assert resp.status_code == 200 and "เชื่อมต่อแล้ว" in resp.get_data(as_text=True)
    info = services.offices.by_slug("nongchok")
    assert not info.simulated and info.channel_secret == secret
    changed = _audit(services, "settings.changed")[0]
    assert changed.detail == {"fields": ["line_channel"]} and changed.office_id == oid
    dump = " ".join(str(e.detail) for e in _audit(services))
    assert secret not in dump and "test-token" not in dump
    resp = c.post("/console/settings/richmenu", {"office_id": str(oid)}, form_page="/console/settings")
    assert resp.status_code == 302
    assert len([r for r in fake_line.calls("/v2/bot/richmenu", method="POST") if r.path == "/v2/bot/richmenu"]) == 2
    assert _audit(services, "richmenu.deployed")[0].office_id == oid
    # The default office is not this admin's: 404, whatever its id.
    assert c.client.get("/console/settings?office_id=1").status_code == 404


def test_settings_say_when_an_office_s_channel_cannot_be_decrypted_and_a_new_one_mends_it(app, env, services):
    from cryptography.fernet import Fernet

    from bot.crypto import DataCipher
    from models import Office

    oid = services.offices.add("nongchok", "สำนักงานเขตหนองจอก", "feedfacefeedfacefeedfacefeedface", "test-token")
    other = DataCipher(Fernet.generate_key().decode())  # saved under an earlier ITABOT_DATA_KEY
    with services.db.session() as s:
        office = s.get(Office, oid)
        office.channel_secret_enc, office.access_token_enc = other.encrypt("x" * 32), other.encrypt("t")
    services.offices.invalidate()
    add_user(app, env, "admin@nongchok.go.th", "admin", "nongchok")
    c = Console(app)
    enrol(c, "admin@nongchok.go.th")
    resp = c.client.get("/console/settings")
    assert resp.status_code == 200 and "ถอดรหัสข้อมูลช่อง LINE ไม่ได้" in resp.get_data(as_text=True)
    secret = "cafebabecafebabecafebabecafebabe"
    resp = c.post("/console/settings", {"office_id": str(oid), "name": "สำนักงานเขตหนองจอก",
                                        "channel_secret": secret, "access_token": "new-token"},
                  form_page="/console/settings")
    page = resp.get_data(as_text=True)
    assert "เชื่อมต่อแล้ว" in page and "ถอดรหัสข้อมูลช่อง LINE ไม่ได้" not in page
    assert services.offices.by_slug("nongchok").channel_secret == secret


def test_a_new_channel_token_is_used_for_the_next_send_without_a_restart(app, env, services, fake_line):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", "feedfacefeedfacefeedfacefeedface", "revoked-token")
    oid = services.offices.by_slug("nongchok").id
    with pytest.raises(LineError, match="401"):  # the process has talked to LINE with the old token ...
        services.gateway(oid).quota()
    add_user(app, env, "admin@nongchok.go.th", "admin", "nongchok")
    c = Console(app)
    enrol(c, "admin@nongchok.go.th")
    resp = c.post("/console/settings", {"office_id": str(oid), "name": "สำนักงานเขตหนองจอก",
                                        "channel_secret": "feedfacefeedfacefeedfacefeedface",
                                        "access_token": fake_line.token}, form_page="/console/settings")
    assert resp.status_code == 200
    fake_line.reset()
    # ... and the admin's next action sends with the new one (it once kept the old token until a restart)
    resp = c.post("/console/settings/richmenu", {"office_id": str(oid)}, form_page="/console/settings")
    assert resp.status_code == 302
    assert fake_line.calls(ok_only=False) and all(r.status < 400 for r in fake_line.calls(ok_only=False))
    assert len([r for r in fake_line.calls("/v2/bot/richmenu", method="POST") if r.path == "/v2/bot/richmenu"]) == 2


def test_signing_out_ends_a_copied_session_cookie(app, env, services):
    add_user(app, env, "viewer@khet.go.th", "viewer")
    c = Console(app)
    c.login("viewer@khet.go.th")
    copy = Console(app)
    for cookie in c.client._cookies.values():  # someone copied the cookie
        copy.client.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    assert copy.client.get("/console/").status_code == 200
    c.post("/console/logout", {}, form_page="/console/")
    assert copy.client.get("/console/").status_code == 302


def test_an_admin_cannot_manage_a_supervisor_who_also_works_elsewhere(app, env, services):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    add_user(app, env, "admin@khet.go.th", "admin")
    add_user(app, env, "bma@bangkok.go.th", "supervisor", "default", "nongchok")
    c = Console(app)
    enrol(c, "admin@khet.go.th")
    with services.db.Session() as s:
        sup = s.scalar(select(StaffUser.id).where(StaffUser.email == "bma@bangkok.go.th"))
    resp = c.post(f"/console/users/{sup}/role", {"role": "complaint_officer"}, form_page="/console/users")
    assert resp.status_code == 403
    with services.db.Session() as s:
        assert s.get(StaffUser, sup).role == "supervisor"


@pytest.mark.parametrize("role, path", [("admin", "/console/settings"), ("admin", "/console/complaints/settings"),
                                        ("survey_coordinator", "/console/festivals"),
                                        ("survey_coordinator", "/console/kb")])
def test_a_page_of_one_office_at_a_time_offers_the_others_with_the_shown_one_picked(app, env, services, role, path):
    services.offices.add("nongchok", "สำนักงานเขตหนองจอก", None, None)
    oid = services.offices.by_slug("nongchok").id
    c = signed_in(app, env, role)
    with services.db.session() as s:  # a second office (the data model allows it; the CLI gives it to supervisors only)
        s.add(StaffOffice(user_id=s.scalar(select(StaffUser.id).where(StaffUser.role == role)), office_id=oid))
    page = c.client.get(f"{path}?office_id={oid}").get_data(as_text=True)
    picker = re.search(r'<select name="office_id">(.*?)</select>', page).group(1)
    assert re.findall(r'<option value="(\d+)"( selected)?>', picker) == [("1", ""), (str(oid), " selected")]
