"""Contract test: everything the bot sends to LINE is valid under LINE's own OpenAPI spec.

A Prism mock of ``../shared/line-openapi/messaging-api.yml`` stands in for LINE; a scripted
conversation goes through the real webhook, workers and gateway, plus the gateway calls that
later features use (push, multicast, broadcast, content, loading animation, quota, rich
menus). Prism validates each request; the test fails on any violation it reports.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .prism import INSTALL_HINT, PrismMock, find_prism

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import Bot, make_env, new_user  # noqa: E402

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def prism() -> Iterator[PrismMock]:
    if find_prism() is None:
        print(f"\n*** SKIPPED CONTRACT TEST: {INSTALL_HINT} ***", file=sys.stderr)
        pytest.skip(INSTALL_HINT)
    with PrismMock() as mock:
        yield mock


@pytest.fixture
def contract_app(prism, tmp_path, _sqlite_template):
    from bot.app import create_app
    from bot.config import load_settings

    db = tmp_path / "c.sqlite3"
    shutil.copy(_sqlite_template, db)
    env = make_env(tmp_path, f"sqlite:///{db}", prism.url)
    env["LINE_CHANNEL_ACCESS_TOKEN"] = "test-token"
    app = create_app(load_settings(env), start_worker=False)
    services = app.extensions["itabot"]
    services.gateway(1).timeout = (5.0, 30.0)  # Prism compiles a validator on first use
    prism.reset()
    yield app
    services.close()


class _NoFake:
    """Prism does not know reply-token owners; the Bot helper only needs somewhere to note them."""

    token_owner: dict[str, str] = {}


def test_a_scripted_conversation_sends_only_valid_requests(contract_app, prism):
    bot = Bot(contract_app, _NoFake())
    services = contract_app.extensions["itabot"]
    from bot.richmenu import deploy

    deploy(services, 1)  # create, upload image, set default (then followers get linked)
    from datetime import timedelta

    from surveys.campaigns import add_campaign, today_bangkok

    with services.db.session() as s:  # so the survey card (a flex message) is sent too
        add_campaign(s, 1, "EIT", "https://itas.nacc.go.th/x", today_bangkok() - timedelta(days=1),
                     today_bangkok() + timedelta(days=30))
    user = new_user()
    bot.follow(user)
    bot.text(user, "เมนูครับ")
    bot.postback(user, "action=about&src=richmenu")
    bot.postback(user, "action=privacy")
    bot.text(user, "แบบประเมิน")
    bot.text(user, "English")
    bot.text(user, "something the bot does not know")
    # a whole complaint: every quick reply (incl. the date picker), the summary and the receipt
    bot.text(user, "แจ้งเบาะแส")
    bot.postback(user, "action=c_kind&v=corruption")
    bot.text(user, "1")
    bot.text(user, "asked for 500 baht to skip the queue")
    bot.send(user, "message", message={"type": "image", "id": "1234567892", "contentProvider": {"type": "line"}})
    bot.text(user, "done")
    bot.postback(user, "action=c_when&v=date", params={"date": "2026-11-10"})
    bot.postback(user, "action=c_place&v=1")
    bot.postback(user, "action=c_next")
    bot.postback(user, "action=c_id&v=anonymous")
    bot.postback(user, "action=c_edit")
    bot.postback(user, "action=c_editpart&v=where")
    bot.postback(user, "action=c_place&v=unknown")
    bot.postback(user, "action=c_submit")
    bot.postback(user, "action=c_status")
    bot.text(user, "ABCD-EFGH-JKMN-PQRS-TUVW")
    bot.send(user, "message", message={"type": "image", "id": "1234567890", "contentProvider": {"type": "line"}})
    bot.send(user, "message", message={"type": "sticker", "id": "1234567891", "packageId": "446",
                                       "stickerId": "1988", "stickerResourceType": "STATIC"})
    bot.text(user, "ยกเลิก")
    bot.send(user, "unsend", unsend={"messageId": "1234567890"})
    group = {"type": "group", "groupId": "C" + "a" * 32}
    bot.send("-", "join", source=group)

    gw = services.gateway(1)
    gw.push(user, [{"type": "text", "text": "แจ้งเตือน"}])
    gw.multicast([user, new_user()], [{"type": "text", "text": "แจ้งเตือน"}])
    from surveys.reminders import message  # a survey reminder with its "ตอบแล้ว" quick reply

    gw.multicast([user, new_user()], [message("อย่าลืมตอบแบบวัด EIT", "th", 1), message("Reminder", "en", 1)])
    gw.broadcast([{"type": "text", "text": "ประกาศ"}])
    gw.show_loading(user, 10)
    gw.get_content("1234567890", max_bytes=10 * 1024 * 1024)
    gw.quota()
    gw.followers()

    assert prism.violations() == []
    sent = prism.requests()
    for path in ("/v2/bot/message/reply", "/v2/bot/message/push", "/v2/bot/message/multicast",
                 "/v2/bot/message/broadcast", "/v2/bot/profile/", "/v2/bot/richmenu",
                 "/v2/bot/chat/loading/start", "/content", "/v2/bot/message/quota", "/v2/bot/followers/ids"):
        assert any(path in r for r in sent), f"the bot never called {path}: {sent}"
