"""Scaled mode: events go through Redis (RQ) to worker processes; the database stays the source of truth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import Bot, make_env, new_user, redis_url
from sqlalchemy import update

from bot import jobs
from bot.app import create_app
from bot.config import load_settings
from models import WebhookEvent, utcnow

REDIS = redis_url()
pytestmark = pytest.mark.redis


@pytest.fixture
def scaled_app(tmp_path, database_url, fake_line):
    if REDIS is None:
        pytest.skip("Redis not reachable (TEST_REDIS_URL)")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    app = create_app(load_settings(make_env(tmp_path, database_url, fake_line.url, REDIS_URL=REDIS)))
    yield app
    app.extensions["itabot"].close()


def test_webhook_enqueues_and_an_rq_worker_processes(scaled_app, fake_line):
    from rq import SimpleWorker

    services = scaled_app.extensions["itabot"]
    assert services.runner is None  # no in-process worker in scaled mode
    bot = Bot(scaled_app, fake_line)
    user = new_user()
    bot.text(user, "เมนู", drain=False)
    assert services.queue.count == 1
    jobs.install(services)
    SimpleWorker([services.queue], connection=services.queue.connection).work(burst=True)
    assert bot.texts(user) == ["เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"]
    health = scaled_app.test_client().get("/healthz").json
    assert health["queue"] == "ok" and health["mode"] == "scaled"


def test_healthz_is_degraded_while_no_worker_is_registered(scaled_app):
    """Scaled mode: events are queued, but with no `itabot worker` alive nothing answers them."""
    from rq import SimpleWorker

    client = scaled_app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json["status"] == "degraded" and health.json["workers"] == 0 and health.json["queue"] == "ok"
    queue = scaled_app.extensions["itabot"].queue
    worker = SimpleWorker([queue], connection=queue.connection)
    worker.register_birth()
    try:
        health = client.get("/healthz")
        assert health.json["status"] == "ok" and health.json["workers"] == 1
    finally:
        worker.register_death()


def test_redis_down_the_webhook_still_stores_and_events_are_processed_later(tmp_path, database_url, fake_line):
    app = create_app(load_settings(make_env(tmp_path, database_url, fake_line.url,
                                            REDIS_URL="redis://127.0.0.1:1/0")))
    services = app.extensions["itabot"]
    try:
        bot = Bot(app, fake_line)
        user = new_user()
        bot.text(user, "เมนู", drain=False)  # answered 200 although Redis is unreachable
        health = app.test_client().get("/healthz")
        assert health.status_code == 200 and health.json["status"] == "degraded"
        with services.db.session() as s:
            s.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(seconds=30)))
        services.processor.sweep()  # what `itabot worker`'s sweeper does when it can
        assert bot.texts(user) == ["เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"]
    finally:
        services.close()


def test_itabot_worker_process_handles_queued_events(scaled_app, fake_line, tmp_path, database_url):
    """The Procfile's `worker` process, run once (--burst), answers what the web process queued."""
    import os
    import subprocess
    import sys

    bot = Bot(scaled_app, fake_line)
    users = [new_user() for _ in range(3)]
    for u in users:
        bot.text(u, "เมนู", drain=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "REDIS_URL"))}
    env.update(make_env(tmp_path, database_url, fake_line.url, REDIS_URL=REDIS))
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "worker", "--burst"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for u in users:
        assert bot.texts(u) == ["เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"]
        assert u not in proc.stderr


def test_itabot_worker_starts_and_works_while_redis_is_down(tmp_path, database_url, fake_line):
    """The database is the source of truth: a worker (re)started during a Redis outage does not die;
    it processes the stored events from the database and keeps trying Redis."""
    import os
    import subprocess
    import sys
    import time

    env_vars = make_env(tmp_path, database_url, fake_line.url, REDIS_URL="redis://127.0.0.1:1/0")
    app = create_app(load_settings(env_vars))
    services = app.extensions["itabot"]
    try:
        bot = Bot(app, fake_line)
        user = new_user()
        bot.text(user, "เมนู", drain=False)  # stored and answered 200; the queue is unreachable
        with services.db.session() as s:
            s.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(seconds=30)))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "REDIS_URL"))}
        env.update(env_vars)
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not bot.texts(user) and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            assert proc.poll() is None, proc.stderr.read()[-2000:]  # still running
            assert bot.texts(user) == ["เลือกสิ่งที่ต้องการได้เลยค่ะ 👇"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        services.close()
