"""The staff console in a real browser (Debian's Chromium, driven by Playwright).

The real app runs on a free port over plain http (so the session cookie is not Secure and
the browser keeps it). Users are created with ``itabot user add`` as an operator would; the
browser then opens the invite link, sets a password, signs in, enrols TOTP from the secret
shown on the page, signs out and in again with a fresh code, and visits the pages its role
allows. A viewer is refused the user list. Screenshots go to ``test-output/``.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from browser import OUTPUT, chromium_path

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
OFFICE = "สำนักงานเขตทดสอบ"


class LiveConsole:
    """The app served on 127.0.0.1, and the environment the `itabot` CLI needs to reach its data."""

    def __init__(self, url: str, env: dict[str, str | None]) -> None:
        self.url = url
        self.env = env

    def add_user(self, email: str, role: str) -> str:
        """`itabot user add`; returns the invite link (the last line printed)."""
        from click.testing import CliRunner

        from bot.cli import main

        result = CliRunner().invoke(main, ["user", "add", "--email", email, "--role", role],
                                    env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        link = result.output.strip().splitlines()[-1]
        assert link.startswith(f"{self.url}/console/invite/"), link
        return link


@pytest.fixture
def live_console(tmp_path):
    from werkzeug.serving import make_server

    from bot.app import create_app
    from bot.config import load_settings
    from models.db import Database

    chromium_path()
    # Bind first (port 0: whatever is free), then build the app that needs to know its own URL.
    holder: dict[str, object] = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    env: dict[str, str | None] = {
        "ITABOT_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'itabot.sqlite3'}",
        "PUBLIC_BASE_URL": url,
        "OFFICE_NAME": OFFICE,
    }
    settings = load_settings({k: v for k, v in env.items() if v is not None})
    assert not settings.public_base_url.startswith("https://")
    Database(settings.database_url).upgrade()
    app = create_app(settings, start_worker=False)
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, name="console-browser-server", daemon=True)
    thread.start()
    # No LINE credentials, and none leaking in from the caller's environment into the CLI.
    cli_env = dict(env, LINE_CHANNEL_SECRET=None, LINE_CHANNEL_ACCESS_TOKEN=None,
                   SECRET_KEY=None, ITABOT_DATA_KEY=None)
    try:
        yield LiveConsole(url, cli_env)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["itabot"].close()




def _new_page(browser, width: int = 1100, height: int = 800):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="th-TH")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors, and anything the Content-Security-Policy refused (inline styles, outside fonts).
    page.on("console", lambda msg: errors.append(msg.text) if "Refused" in msg.text else None)
    return context, page, errors


def _set_password(page, link: str) -> None:
    from playwright.sync_api import expect

    resp = page.goto(link)
    assert resp.status == 200
    expect(page.locator("h1")).to_have_text("ตั้งรหัสผ่าน")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console/login$"))


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/console/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()


def _fonts_ready(page) -> None:
    page.evaluate("document.fonts.ready.then(() => true)")


def _screenshot(page, name: str, full_page: bool = True) -> None:
    OUTPUT.mkdir(exist_ok=True)
    _fonts_ready(page)
    page.screenshot(path=str(OUTPUT / name), full_page=full_page)


def test_admin_enrols_2fa_signs_in_again_and_a_viewer_is_refused(live_console, browser):
    import pyotp
    from playwright.sync_api import expect

    base = live_console.url
    admin_link = live_console.add_user("admin@khet.go.th", "admin")
    viewer_link = live_console.add_user("viewer@khet.go.th", "viewer")

    context, page, errors = _new_page(browser)
    try:
        _set_password(page, admin_link)
        # The invite link works once.
        assert page.goto(admin_link).status == 404

        # First sign-in: an admin must enrol TOTP before anything else.
        _sign_in(page, base, "admin@khet.go.th")
        page.wait_for_url(re.compile(r"/console/2fa/setup$"))
        assert page.goto(f"{base}/console/users").url.endswith("/console/2fa/setup")  # not in yet
        expect(page.locator("img.qr")).to_be_visible()
        assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
        secret = page.locator("#totp-secret").inner_text().strip()
        assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
        _screenshot(page, "console-2fa-setup.png")

        page.locator("input[name=code]").fill(pyotp.TOTP(secret).now())
        page.locator("main form button[type=submit]").click()
        expect(page.locator("h1")).to_have_text("รหัสกู้คืน")
        codes = page.locator(".codes code").all_inner_texts()
        assert len(codes) == 8 and all(re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}", c) for c in codes)
        page.get_by_role("link", name="ไปต่อ").click()

        page.wait_for_url(re.compile(r"/console/$"))
        expect(page.locator("main")).to_contain_text("ผู้ติดตาม")
        expect(page.locator(".card.office h2")).to_have_text(OFFICE)
        expect(page.locator("header nav")).to_contain_text("ผู้ใช้งาน")
        _screenshot(page, "console-dashboard.png")

        # Signing out ends the session.
        page.get_by_role("button", name="ออกจากระบบ").click()
        page.wait_for_url(re.compile(r"/console/login$"))
        page.goto(f"{base}/console/")
        assert "/console/login" in page.url

        # Second sign-in: the code of the next time step (the enrolment step is spent).
        _sign_in(page, base, "admin@khet.go.th")
        page.wait_for_url(re.compile(r"/console/2fa(\?.*)?$"))
        expect(page.locator("h1")).to_have_text("ยืนยันตัวตนสองขั้นตอน")
        page.locator("input[name=code]").fill(pyotp.TOTP(secret).at(time.time() + 30))
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/console/$"))

        resp = page.goto(f"{base}/console/users")
        assert resp.status == 200
        expect(page.locator("table")).to_contain_text("admin@khet.go.th")
        expect(page.locator("table")).to_contain_text("viewer@khet.go.th")

        resp = page.goto(f"{base}/console/audit")
        assert resp.status == 200
        actions = page.locator("tbody td code").all_inner_texts()
        assert actions.count("signin") >= 2, actions
        for expected in ("signout", "2fa.enabled", "password.set", "user.created_cli"):
            assert expected in actions, (expected, actions)
        assert errors == [], errors
    finally:
        context.close()

    # A viewer signs in with a password only and is refused the user list.
    context, page, errors = _new_page(browser)
    try:
        _set_password(page, viewer_link)
        _sign_in(page, base, "viewer@khet.go.th")
        page.wait_for_url(re.compile(r"/console/$"))
        expect(page.locator("header nav")).not_to_contain_text("ผู้ใช้งาน")
        for path in ("/console/users", "/console/audit"):
            resp = page.goto(f"{base}{path}")
            assert resp.status == 403, path
            expect(page.locator("h1")).to_have_text("ไม่มีสิทธิ์เข้าถึง")
        resp = page.goto(f"{base}/console/users")
        _screenshot(page, "console-forbidden.png")
        assert errors == [], errors
    finally:
        context.close()

    # The dashboard on a phone: nothing wider than the screen.
    context, page, errors = _new_page(browser, 390, 844)
    try:
        _sign_in(page, base, "viewer@khet.go.th")
        page.wait_for_url(re.compile(r"/console/$"))
        expect(page.locator("main")).to_contain_text("ผู้ติดตาม")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a 390px screen"
        _screenshot(page, "console-mobile.png")
        assert errors == [], errors
    finally:
        context.close()
