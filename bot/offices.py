"""Office lookup for the hot path, and the office the environment describes.

The webhook must find an office's channel secret on every delivery; a small in-process
cache keeps that off the database. Office credentials change rarely (``itabot office add``),
and the cache expires after a minute so other processes see changes without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.crypto import DataCipher
from models import Office
from models.db import Database

log = logging.getLogger("itabot.offices")

DEFAULT_SLUG = "default"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class OfficeInfo:
    id: int
    slug: str
    name: str
    is_default: bool
    channel_secret: str
    access_token: str
    simulated: bool  # no real LINE channel: sends go to the in-app simulator
    # Its LINE credentials were encrypted under another ITABOT_DATA_KEY: no secret to verify its webhook
    # deliveries with, no token to send with (both are then empty) until the key or the channel is given again.
    unreadable: bool = False


def simulator_secret(settings: Settings, slug: str) -> str:
    """A per-office channel secret for the simulator, derived from SECRET_KEY (never stored)."""
    return hmac.new(settings.secret_key.encode(), f"simulator:{slug}".encode(), hashlib.sha256).hexdigest()[:32]


def ensure_default_office(db: Database, settings: Settings, *, rename: bool = True) -> int:
    """Create (or rename) the office that the environment variables describe. Processes starting together
    (web and worker) may both find none: the one that loses the race to insert it reads the winner's."""
    def ensure() -> int:
        with db.session() as s:
            office = s.scalar(select(Office).where(Office.is_default.is_(True)))
            if office is None:
                office = Office(slug=DEFAULT_SLUG, name=settings.office_name, is_default=True)
                s.add(office)
            elif rename and office.name != settings.office_name:
                office.name = settings.office_name
            s.flush()
            return office.id

    try:
        return ensure()
    except IntegrityError:  # another process inserted it meanwhile: this time it is found
        return ensure()


class OfficeDirectory:
    def __init__(self, db: Database, settings: Settings, cipher: DataCipher) -> None:
        self.db = db
        self.settings = settings
        self.cipher = cipher
        self._lock = threading.Lock()
        self._by_slug: dict[str, tuple[float, OfficeInfo | None]] = {}
        self._by_id: dict[int, tuple[float, OfficeInfo | None]] = {}

    def _info(self, office: Office) -> OfficeInfo:
        st = self.settings
        if office.is_default:
            if st.has_line_credentials:
                return OfficeInfo(
                    office.id,
                    office.slug,
                    office.name,
                    True,
                    st.line_channel_secret or "",
                    st.line_channel_access_token or "",
                    False,
                )
            return OfficeInfo(
                office.id, office.slug, office.name, True, simulator_secret(st, office.slug), "simulator", True
            )
        if office.channel_secret_enc and office.access_token_enc:
            try:
                secret = self.cipher.decrypt(office.channel_secret_enc)
                token = self.cipher.decrypt(office.access_token_enc)
            except ValueError:
                return OfficeInfo(office.id, office.slug, office.name, False, "", "", False, unreadable=True)
            return OfficeInfo(office.id, office.slug, office.name, False, secret, token, False)
        return OfficeInfo(
            office.id, office.slug, office.name, False, simulator_secret(st, office.slug), "simulator", True
        )

    def _load(self, where) -> OfficeInfo | None:
        with self.db.Session() as s:
            office = s.scalar(select(Office).where(where))
            return self._info(office) if office is not None else None

    def by_slug(self, slug: str | None) -> OfficeInfo | None:
        """The office whose webhook is ``/callback/<slug>`` (the default office for None), ready to verify a
        delivery: None when there is none, or when its channel secret cannot be decrypted (nothing could
        verify a signature; the webhook answers as for an unknown office)."""
        info = self.any_by_slug(slug)
        if info is not None and info.unreadable:
            log.error("office %s: its LINE credentials cannot be decrypted with this ITABOT_DATA_KEY, so its webhook "
                      "deliveries cannot be verified and are answered 404: set the key they were saved with, or give "
                      "the office its channel again in the console", info.id, extra={"office_id": info.id})
            return None
        return info

    def any_by_slug(self, slug: str | None) -> OfficeInfo | None:
        """The office with ``slug``, also when its credentials cannot be decrypted (``unreadable``)."""
        if slug is not None and not SLUG_RE.match(slug):
            return None  # not even a possible slug: no database query, nothing cached
        key = slug or ""
        now = time.monotonic()
        hit = self._by_slug.get(key)
        if hit and hit[0] > now:
            return hit[1]
        info = self._load(Office.is_default.is_(True) if not slug else Office.slug == slug)
        if info is not None:  # misses are not cached, so random paths cannot grow the cache
            with self._lock:
                self._by_slug[key] = (now + CACHE_SECONDS, info)
        return info

    def by_id(self, office_id: int) -> OfficeInfo | None:
        now = time.monotonic()
        hit = self._by_id.get(office_id)
        if hit and hit[0] > now:
            return hit[1]
        info = self._load(Office.id == office_id)
        with self._lock:
            self._by_id[office_id] = (now + CACHE_SECONDS, info)
        return info

    def invalidate(self) -> None:
        with self._lock:
            self._by_slug.clear()
            self._by_id.clear()

    def add(self, slug: str, name: str, channel_secret: str | None, access_token: str | None) -> int:
        if not SLUG_RE.match(slug):
            raise ValueError("slug must be 2-63 characters: lower-case letters, digits and '-'")
        if bool(channel_secret) != bool(access_token):
            raise ValueError("give both the channel secret and the access token, or neither (simulator)")
        with self.db.session() as s:
            if s.scalar(select(Office.id).where(Office.slug == slug)) is not None:
                raise ValueError(f"an office with slug {slug!r} exists already")
            office = Office(
                slug=slug,
                name=name,
                channel_secret_enc=self.cipher.encrypt(channel_secret) if channel_secret else None,
                access_token_enc=self.cipher.encrypt(access_token) if access_token else None,
            )
            s.add(office)
            s.flush()
            office_id = office.id
        self.invalidate()
        return office_id
