"""RQ jobs for scaled mode. A worker process builds its Services once (``itabot worker``)."""

from __future__ import annotations

from bot.services import Services

_services: Services | None = None


def install(services: Services) -> None:
    global _services
    _services = services


def _get() -> Services:
    global _services
    if _services is None:  # a worker started without `itabot worker` (e.g. plain `rq worker`)
        from bot.config import load_settings

        _services = Services(load_settings())
    return _services


def process_event(event_id: int) -> bool:
    return _get().processor.process(event_id)


def send_reminder(reminder_id: int) -> bool:
    from surveys.reminders import dispatch

    return dispatch(_get(), reminder_id) is not None
