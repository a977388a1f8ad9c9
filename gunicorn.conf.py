"""gunicorn settings for the Procfile's web process (gunicorn reads this file from the working directory).

Bind address and worker count are left to gunicorn's defaults, which honour ``PORT`` and
``WEB_CONCURRENCY``. A bad setting stops start-up with one line, before any worker boots.
"""

import sys

worker_class = "gthread"
threads = 8
graceful_timeout = 10
accesslog = None  # the app logs requests itself, without URLs that may carry user IDs
control_socket_disable = True  # gunicorn ≥ 25.1 would otherwise share one control socket in ~/.gunicorn


def on_starting(server):
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"itabot: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    if settings.embedded:
        # Embedded mode has no release phase of its own: migrate before serving.
        from models.db import Database

        Database(settings.database_url).upgrade()
