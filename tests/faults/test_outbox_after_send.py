"""The database failing just after LINE accepted a reply — the window the PostgreSQL restart test
(``test_postgres_restart.py``) hits with real processes — in-process and on SQLite, so it runs
everywhere: the sent row must still be forgotten, not sent again (as a push) when its lease ends.

How the fault is injected: the database's write transaction raises ``OperationalError`` (what
SQLAlchemy raises for a connection PostgreSQL cut) the first two times after the send.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from conftest import new_user
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from models import Delivery, OutboxMessage, utcnow

MENU = "เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"


@pytest.fixture
def database_url(tmp_path, _sqlite_template) -> str:
    """SQLite only: the cut connection is simulated, and the ``test`` PostgreSQL database is left alone."""
    path = tmp_path / "itabot.sqlite3"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


def test_a_reply_sent_while_the_database_is_away_is_not_sent_again(bot, services, fake_line, monkeypatch):
    user = new_user()
    bot.text(user, "เมนู", drain=False)
    real, failures = services.db.write, [True, True]

    def cut(*args, **kwargs):
        if failures and failures.pop():
            raise OperationalError("DELETE FROM outbox …", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(services.db, "write", cut)
    bot.drain()
    monkeypatch.undo()
    assert failures == []  # both failures met
    with services.db.session() as s:  # had the row stayed, this is when the sweeper would send it again
        s.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    services.processor.sweep()
    assert bot.texts(user) == [MENU]
    assert [r.path for r in fake_line.calls("/v2/bot/message/", ok_only=False)] == ["/v2/bot/message/reply"]
    with services.db.Session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert s.scalar(select(func.count()).select_from(Delivery)) == 1  # the send record, once
