"""The simulator page in a real browser (Debian's Chromium, driven by Playwright).

The first test runs the whole pipeline: the real app on a free port with its background
workers, a new simulated user who follows, types, taps quick replies and the rich menu.
The second feeds the page hand-made bot messages (flex, templates, a date picker, hostile
text) through Playwright's request routing, to check rendering, actions and escaping.
"""

from __future__ import annotations

import json
import threading

import pytest
from browser import OUTPUT, chromium_path

from handlers.menu import MAIN_MENU

pytestmark = pytest.mark.browser

BOT_WAIT = 15_000  # ms: replies come from background workers


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    from werkzeug.serving import make_server

    from bot.app import create_app
    from bot.config import load_settings
    from models.db import Database

    chromium_path()
    instance = tmp_path_factory.mktemp("simulator-browser")
    settings = load_settings({"ITABOT_INSTANCE_PATH": str(instance)})
    assert settings.simulator_enabled
    Database(settings.database_url).upgrade()
    app = create_app(settings, start_worker=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="simulator-browser-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["itabot"].close()




def _page(browser, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="th-TH")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def _bot(page, text: str):
    return page.locator(".row.bot .bubble").filter(has_text=text)


def _me(page, text: str):
    return page.locator(".row.user .bubble").filter(has_text=text)


def test_simulator_conversation(live_server, browser):
    from playwright.sync_api import expect

    context, page, errors = _page(browser, 1100, 1000)
    try:
        page.goto(f"{live_server}/simulator")
        expect(page.get_by_test_id("user")).to_contain_text("ผู้ใช้ 1")
        user_id = page.locator("#user-id").inner_text().strip()
        assert len(user_id) == 33 and user_id.startswith("U")

        # A new user starts by following, as on LINE.
        page.get_by_test_id("follow").click()
        expect(_bot(page, "สวัสดีค่ะ").first).to_be_visible(timeout=BOT_WAIT)
        expect(page.locator(".sys").filter(has_text="เป็นเพื่อนแล้ว")).to_be_visible()
        expect(page.get_by_test_id("follow")).to_have_count(0)
        expect(page.get_by_test_id("toggle-follow")).to_contain_text("เลิกติดตาม")
        # Newlines are kept.
        greeting = _bot(page, "สวัสดีค่ะ").first.inner_text()
        assert "\n" in greeting
        expect(page.locator("#quick .chip")).to_have_count(len(MAIN_MENU), timeout=BOT_WAIT)
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "simulator-greeting.png"))

        page.get_by_test_id("text").fill("เมนู")
        page.get_by_test_id("text").press("Enter")
        expect(_me(page, "เมนู")).to_be_visible()
        chip = page.locator("#quick .chip").filter(has_text="ITA คืออะไร")
        expect(chip).to_be_visible(timeout=BOT_WAIT)
        expect(page.locator("#quick .chip")).to_have_count(len(MAIN_MENU))

        chip.click()
        expect(_me(page, "ITA คืออะไร")).to_be_visible()
        expect(_bot(page, "ป.ป.ช.").first).to_be_visible(timeout=BOT_WAIT)

        page.get_by_test_id("text").fill("English")
        page.get_by_test_id("send").click()
        expect(_bot(page, "I will answer in English").first).to_be_visible(timeout=BOT_WAIT)
        expect(page.get_by_test_id("lang")).to_have_text("EN", timeout=BOT_WAIT)
        expect(page.locator("#quick .chip").filter(has_text="What is ITA?")).to_be_visible()

        # The rich menu: tap the privacy tile.
        expect(page.get_by_test_id("richmenu")).to_be_visible()
        page.get_by_test_id("richmenu-toggle").click()
        expect(page.locator("#richmenu-panel")).to_be_hidden()
        page.get_by_test_id("richmenu-toggle").click()
        expect(page.locator("#richmenu-panel")).to_be_visible()
        area = page.locator('#richmenu-areas [aria-label="ความเป็นส่วนตัว"]')
        expect(area).to_have_count(1)
        box = area.bounding_box()
        img = page.locator("#richmenu-img").bounding_box()
        # second row, middle column (survey · report corruption · menu / about · privacy · language)
        assert box and img and abs(box["x"] - (img["x"] + img["width"] / 3)) < 2
        assert abs(box["y"] - (img["y"] + img["height"] / 2)) < 3 and abs(box["height"] - img["height"] / 2) < 3
        assert page.evaluate("document.getElementById('richmenu-img').naturalWidth") == 2500
        area.click()
        expect(_me(page, "ความเป็นส่วนตัว")).to_be_visible()
        expect(_bot(page, "Privacy: we keep only").first).to_be_visible(timeout=BOT_WAIT)

        # Other kinds of message.
        page.get_by_test_id("send-image").click()
        expect(page.locator(".row.user .card-bubble").filter(has_text="รูปภาพ")).to_be_visible()
        expect(_bot(page, "not expecting a file").first).to_be_visible(timeout=BOT_WAIT)
        page.get_by_test_id("send-location").click()
        expect(_bot(page, "Thanks for the location").first).to_be_visible(timeout=BOT_WAIT)
        page.get_by_test_id("send-sticker").click()
        expect(page.locator(".row.user .sticker")).to_have_count(1)
        expect(_bot(page, 'Type "menu"').first).to_be_visible(timeout=BOT_WAIT)

        # Unsend the last text.
        page.get_by_test_id("text").fill("ข้อความที่จะยกเลิก")
        page.get_by_test_id("text").press("Enter")
        expect(_me(page, "ข้อความที่จะยกเลิก")).to_be_visible()
        unsend = page.get_by_test_id("unsend")
        expect(unsend).to_have_count(1)
        expect(page.locator(".row.user[data-message-id]").last.get_by_test_id("unsend")).to_have_count(1)
        page.wait_for_timeout(1500)  # let the bot answer first, so the screenshot is settled
        unsend.click()
        expect(page.locator(".unsent-bubble")).to_be_visible(timeout=BOT_WAIT)
        expect(_me(page, "ข้อความที่จะยกเลิก")).to_have_count(0)

        page.get_by_test_id("text").fill("เมนู")
        page.get_by_test_id("text").press("Enter")
        expect(page.locator("#quick .chip").filter(has_text="Privacy")).to_be_visible(timeout=BOT_WAIT)
        page.wait_for_timeout(800)

        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "simulator.png"))

        # The same chat on a phone-sized screen.
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        page.locator("#log").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        page.screenshot(path=str(OUTPUT / "simulator-mobile.png"))

        # Users are separate chats, and the list survives a reload.
        page.get_by_test_id("new-user").click()
        expect(page.get_by_test_id("user")).to_contain_text("ผู้ใช้ 2")
        expect(page.get_by_test_id("follow")).to_be_visible(timeout=BOT_WAIT)
        expect(page.locator(".row.bot")).to_have_count(0)
        page.screenshot(path=str(OUTPUT / "simulator-new-user.png"))
        assert page.locator("#user-id").inner_text().strip() != user_id
        page.reload()
        expect(page.locator("#user option")).to_have_count(2)
        expect(page.get_by_test_id("follow")).to_be_visible(timeout=BOT_WAIT)
        page.get_by_test_id("user").select_option(user_id)
        expect(_bot(page, "สวัสดีค่ะ").first).to_be_visible(timeout=BOT_WAIT)
        expect(page.get_by_test_id("lang")).to_have_text("EN", timeout=BOT_WAIT)

        # Unfollow, then the card offers to follow again.
        page.get_by_test_id("toggle-follow").click()
        expect(page.locator(".sys").filter(has_text="เลิกติดตาม")).to_be_visible(timeout=BOT_WAIT)
        expect(page.get_by_test_id("follow")).to_contain_text("เพิ่มเพื่อนอีกครั้ง")
        assert errors == []
    finally:
        context.close()


USER = "U" + "ab" * 16
FLEX_BUBBLE = {
    "type": "bubble",
    "header": {
        "type": "box",
        "layout": "vertical",
        "contents": [{"type": "text", "text": "หัวข้อการ์ด", "weight": "bold"}],
    },
    "hero": {
        "type": "image",
        "url": "/simulator/richmenu/public.png",
        "size": "full",
        "aspectRatio": "20:7",
        "aspectMode": "cover",
    },
    "body": {
        "type": "box",
        "layout": "horizontal",
        "spacing": "md",
        "contents": [
            {"type": "text", "text": "ซ้าย", "size": "xl"},
            {"type": "separator"},
            {"type": "text", "text": "ขวา", "color": "#ff0000", "wrap": True},
        ],
    },
    "footer": {
        "type": "box",
        "layout": "vertical",
        "contents": [
            {
                "type": "button",
                "style": "primary",
                "action": {"type": "postback", "label": "ตกลง", "data": "action=ok", "displayText": "ตกลงค่ะ"},
            }
        ],
    },
}
FIXTURE = [
    {"type": "follow"},
    {"type": "text", "text": '<img src=x onerror="window.__xss=1">\nบรรทัดที่สอง'},
    {
        "type": "template",
        "altText": "buttons",
        "template": {
            "type": "buttons",
            "title": "แบบประเมิน",
            "text": "เลือกได้เลย",
            "actions": [
                {"type": "postback", "label": "เริ่ม", "data": "action=start", "displayText": "เริ่มทำ"},
                {"type": "uri", "label": "สคริปต์", "uri": "javascript:window.__xss=2"},
            ],
        },
    },
    {
        "type": "template",
        "altText": "confirm",
        "template": {
            "type": "confirm",
            "text": "ยืนยันไหม",
            "actions": [
                {"type": "message", "label": "ใช่", "text": "ใช่"},
                {"type": "message", "label": "ไม่", "text": "ไม่"},
            ],
        },
    },
    {"type": "flex", "altText": "flex", "contents": FLEX_BUBBLE},
    {
        "type": "flex",
        "altText": "carousel",
        "contents": {"type": "carousel", "contents": [FLEX_BUBBLE, {**FLEX_BUBBLE, "size": "kilo"}]},
    },
    {
        "type": "template",
        "altText": "carousel",
        "template": {
            "type": "carousel",
            "columns": [
                {"text": f"คอลัมน์ {i}", "actions": [{"type": "message", "label": f"เลือก {i}", "text": f"เลือก {i}"}]}
                for i in (1, 2)
            ],
        },
    },
    {
        "type": "image",
        "originalContentUrl": "/simulator/richmenu/public.png",
        "previewImageUrl": "/simulator/richmenu/public.png",
    },
    {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    {
        "type": "text",
        "text": "เลือกวันนัด",
        "quickReply": {
            "items": [
                {
                    "type": "action",
                    "action": {"type": "datetimepicker", "label": "เลือกวัน", "data": "action=date", "mode": "date"},
                },
                {"type": "action", "action": {"type": "message", "label": "สวัสดี", "text": "สวัสดี"}},
            ]
        },
    },
]


def test_simulator_renders_bot_messages(live_server, browser):
    from playwright.sync_api import expect

    sent: list[dict] = []

    def messages(route):
        url = route.request.url
        first = "after=0" in url and f"user={USER}" in url
        rows = []
        if first:
            for i, m in enumerate(FIXTURE, start=1):
                direction = "in" if m["type"] == "follow" else "out"
                kind = "user" if direction == "in" else ("push" if i == 3 else "reply")
                rows.append(
                    {"id": i, "direction": direction, "kind": kind, "message": m, "at": "2026-11-21T03:04:05+00:00"}
                )
        body = json.dumps({"messages": rows, "language": "th"}, ensure_ascii=False)
        route.fulfill(status=200, content_type="application/json", body=body)

    def events(route):
        sent.append(json.loads(route.request.post_data or "{}"))
        route.fulfill(status=200, content_type="application/json", body='{"webhook_status": 200}')

    context, page, errors = _page(browser, 900, 1100)
    try:
        context.add_init_script(
            "localStorage.setItem('itabot.simulator.v1', JSON.stringify("
            + json.dumps({"users": [{"id": USER, "name": "ผู้ใช้ 1", "n": 1}], "current": USER})
            + "))"
        )
        page.route("**/simulator/api/*/messages?*", messages)
        page.route("**/simulator/api/*/events", events)
        page.goto(f"{live_server}/simulator")

        # Hostile text is shown as text, newlines kept, nothing executed.
        hostile = _bot(page, "onerror")
        expect(hostile).to_be_visible()
        assert hostile.inner_text().startswith("<img src=x")
        assert "\n" in hostile.inner_text()
        assert page.locator("#log img[src='x']").count() == 0
        expect(page.get_by_test_id("follow")).to_have_count(0)

        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "simulator-rendering.png"), full_page=True)

        # A date picker in the quick replies (which, as on LINE, go away after any action).
        expect(page.locator("#quick .chip")).to_have_count(2)
        page.locator("#quick .chip").filter(has_text="เลือกวัน").click()
        expect(page.locator("#picker")).to_be_visible()
        page.get_by_test_id("picker-input").fill("2026-11-21")
        page.get_by_test_id("picker-ok").click()
        expect(page.locator("#picker")).to_be_hidden()
        expect(page.locator("#quick")).to_be_hidden()

        # Templates.
        expect(page.locator(".tpl-title").filter(has_text="แบบประเมิน")).to_be_visible()
        expect(page.locator(".kind").filter(has_text="push")).to_be_visible()
        page.locator(".tpl-action").filter(has_text="เริ่ม").click()
        page.locator(".tpl-action").filter(has_text="สคริปต์").click()
        expect(page.locator("#toast")).to_be_visible()
        page.locator(".tpl-confirm .tpl-action").filter(has_text="ใช่").click()
        expect(page.locator(".carousel .tpl-buttons")).to_have_count(2)

        # Flex: layout, styles and a clickable button.
        bubble = page.locator(".flex-bubble").first
        expect(bubble.locator(".flex-header")).to_contain_text("หัวข้อการ์ด")
        assert bubble.locator(".flex-body > .flex-box").evaluate("e => getComputedStyle(e).flexDirection") == "row"
        right = bubble.locator(".flex-text").filter(has_text="ขวา")
        assert right.evaluate("e => getComputedStyle(e).color") == "rgb(255, 0, 0)"
        left = bubble.locator(".flex-text").filter(has_text="ซ้าย")
        assert left.evaluate("e => getComputedStyle(e).fontSize") == "22px"
        assert left.bounding_box()["y"] == pytest.approx(right.bounding_box()["y"], abs=4)
        assert right.bounding_box()["x"] > left.bounding_box()["x"]
        bubble.locator(".flex-button").click()
        expect(page.locator(".carousel .flex-bubble")).to_have_count(2)

        # Image and sticker.
        expect(page.locator(".image-msg img")).to_be_visible()
        assert page.locator(".image-msg img").evaluate("e => e.naturalWidth") == 2500
        expect(page.locator(".row.bot .sticker")).to_be_visible()

        page.wait_for_timeout(300)
        assert page.evaluate("window.__xss") is None
        assert all(e["user"] == USER for e in sent)
        assert [{k: v for k, v in e.items() if k != "user"} for e in sent] == [
            {"type": "postback", "data": "action=date", "params": {"date": "2026-11-21"}, "displayText": "2026-11-21"},
            {"type": "postback", "data": "action=start", "displayText": "เริ่มทำ"},
            {"type": "text", "text": "ใช่"},
            {"type": "postback", "data": "action=ok", "displayText": "ตกลงค่ะ"},
        ]
        assert errors == []
    finally:
        context.close()
