"""The application factory: ``create_app()`` builds everything; nothing needs credentials at import.

gunicorn serves ``bot.app:create_app()`` (see the Procfile); ``itabot serve`` does the same
in-process and migrates the database first.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time

from flask import Flask, Response, g, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, load_settings
from bot.logs import request_id, setup_logging
from bot.services import Services
from models import Office

log = logging.getLogger("itabot.app")


class _SessionInterface(SecureCookieSessionInterface):
    """The console's signed-cookie session, not opened for LINE's deliveries.

    Flask opens the session of every request; for the webhook that means building a signing serializer and
    parsing cookies LINE never sends, on the hottest path (6.5 % of a delivery's instructions; bench/README.md,
    2026-12-07 sixth session). The webhook gets Flask's null session instead: nothing is read or written, and
    code that tried to store in it would fail loudly.
    """

    def open_session(self, app, request):
        if request.path.startswith("/callback"):
            return None  # Flask then uses make_null_session
        return super().open_session(app, request)


def create_app(
    settings: Settings | None = None,
    *,
    start_worker: bool | None = None,
    services: Services | None = None,
    rename_office: bool = True,
) -> Flask:
    """Build the web app. ``rename_office=False`` (commands other than ``serve``/``worker``) leaves the
    default office's name as it is instead of setting it from OFFICE_NAME.

    ``start_worker`` defaults to True in embedded mode (no REDIS_URL): the web process then
    also processes events in background threads. Tests pass False and drain explicitly.
    """
    settings = settings or load_settings()
    setup_logging()

    for note in settings.notes:
        log.warning(note)

    app = Flask("bot", instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_AS_ASCII=False,
        SESSION_COOKIE_NAME="itabot_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which has its own timeouts
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
    )
    app.json.ensure_ascii = False
    app.session_interface = _SessionInterface()

    services = services or Services(settings)
    app.extensions["itabot"] = services
    services.ensure_default_office(rename=rename_office)

    from flask_wtf.csrf import CSRFProtect

    from bot.console import bp as console_bp
    from bot.webhook import bp as webhook_bp

    csrf = CSRFProtect(app)
    app.register_blueprint(webhook_bp)
    csrf.exempt(webhook_bp)  # LINE signs its requests instead
    app.register_blueprint(console_bp)
    from bot.links import bp as links_bp

    app.register_blueprint(links_bp)
    if settings.simulator_enabled:
        from bot.simulator import bp as simulator_bp

        app.register_blueprint(simulator_bp)
        csrf.exempt(simulator_bp)  # a development tool; its events are signed like LINE's
        services.simulator_app = app

    _request_hooks(app)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return health(services)

    @app.get("/")
    def index():
        if settings.simulator_enabled:
            from flask import redirect

            return redirect("/simulator")
        return Response("itabot: LINE webhook at /callback\n", mimetype="text/plain")

    if settings.redis_url:
        services.connect_queue()
    if start_worker is None and settings.embedded and settings.processing == "process":
        from bot.processing import usable

        if usable(settings):
            services.start_processing_process()
            return app
    if start_worker is None:
        start_worker = settings.embedded
    if start_worker:
        services.start_embedded_worker()
    return app


def health(services: Services) -> tuple[Response, int]:
    """Database (and queue, when configured) reachability, the backlog, and whether anything works on it."""
    out: dict = {"status": "ok", "mode": "embedded" if services.settings.embedded else "scaled"}
    code = 200

    def degrade() -> None:
        if out["status"] == "ok":
            out["status"] = "degraded"

    try:
        out["events"], out["oldest_pending_s"] = services.inbox.backlog()
        out["outbox"] = services.processor.outbox_size()
        out["database"] = "ok"
    except Exception as exc:
        out["database"] = f"error: {exc.__class__.__name__}"
        out["status"] = "error"
        code = 503
    if out["database"] == "ok":
        # Offices whose LINE credentials this ITABOT_DATA_KEY cannot decrypt: their deliveries are refused.
        with contextlib.suppress(SQLAlchemyError):  # the database went away just now: said next time
            with services.db.Session() as s:
                ids = s.scalars(select(Office.id).where(Office.channel_secret_enc.is_not(None))).all()
            unreadable = [i for i in ids if (info := services.offices.by_id(i)) is not None and info.unreadable]
            if unreadable:
                out["offices_unreadable"] = unreadable
                degrade()
    if services.processing_host is not None:
        # Embedded mode: the processing process works for every web process. Without it events are stored
        # but not answered; the host starts it again within seconds, so "stopped" for long needs a look.
        out["worker"] = services.processing_host.state()
        if out["worker"] == "stopped":
            out["status"], code = "error", 503
    if services.runner is not None:
        # Embedded mode: this process's own threads process and send. If one has ended, events are still
        # stored, but answered only by the sweeper, seconds late, or not at all: the process needs a restart.
        stopped = services.runner.stopped_threads()
        out["worker"] = "ok" if not stopped else "stopped: " + ", ".join(stopped)
        if stopped:
            out["status"], code = "error", 503
    if services.queue is not None:
        try:
            services.queue.connection.ping()
            out["queue"] = "ok"
            from rq import Worker

            out["workers"] = Worker.count(connection=services.queue.connection)
            if not out["workers"]:
                degrade()  # events are stored and queued, but no `itabot worker` is there to take them
        except Exception as exc:
            # Events are still stored and acknowledged; the sweeper processes them later.
            out["queue"] = f"error: {exc.__class__.__name__}"
            degrade()
    return jsonify(out), code


def _request_hooks(app: Flask) -> None:
    access = logging.getLogger("itabot.access")

    @app.before_request
    def _start() -> None:
        rid = request.headers.get("X-Request-Id", "")
        if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
            rid = secrets.token_hex(8)
        g.request_id = rid
        g.started = time.perf_counter()
        request.environ["itabot.prev_request_id"] = request_id.get()
        request_id.set(rid)

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        if request.path != "/healthz" and not request.path.startswith("/simulator/line/"):
            access.info(
                "request",
                extra={
                    "method": request.method,
                    # The route, not the URL: paths may carry user IDs (e.g. the profile API).
                    "route": request.url_rule.rule if request.url_rule else "-",
                    "status": resp.status_code,
                    "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                },
            )
        return resp

    @app.teardown_request
    def _reset(_exc) -> None:
        # Nested requests (the simulator posting to the webhook) restore the outer id.
        request_id.set(request.environ.get("itabot.prev_request_id"))
