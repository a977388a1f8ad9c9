"""Passwords (Argon2id), TOTP two-factor with recovery codes, lock-out, one-time invite tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from models import utcnow

# argon2-cffi's defaults are Argon2id with RFC 9106's "low memory" profile.
_hasher = PasswordHasher()
MIN_PASSWORD = 12
LOCK_AFTER = 5  # failed sign-ins before the account is locked
LOCK_BASE = timedelta(minutes=1)  # doubled for every further failure
LOCK_MAX = timedelta(hours=1)
# How far back failed sign-ins with an address that has no account are counted (an account's count lasts until it
# signs in; this bounds the read of the audit log).
UNKNOWN_WINDOW = timedelta(hours=24)
RECOVERY_CODES = 8
# Left out of a typed recovery code: spaces, and dashes as phones' keyboards and autocorrect write them.
_CODE_SEPARATORS = frozenset(" \t\u00a0\u200b-\u2010\u2011\u2012\u2013\u2014\u2212")
ISSUER = "itabot"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        _hasher.hash(password)  # spend the same time whether or not the account exists
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, email: str) -> str | None:
    """A reason the password is refused (catalog key), or None."""
    if len(password) < MIN_PASSWORD:
        return "password_short"
    if email and email.split("@")[0].lower() in password.lower():
        return "password_email"
    return None


def lock_for(failures: int) -> timedelta | None:
    """How long to lock after this many consecutive failures (None: not yet)."""
    if failures < LOCK_AFTER:
        return None
    return min(LOCK_MAX, LOCK_BASE * (2 ** (failures - LOCK_AFTER)))


def is_locked(locked_until: datetime | None, now: datetime | None = None) -> bool:
    return locked_until is not None and locked_until > (now or utcnow())


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def verify_totp(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step the code belongs to, if valid and not used before; else None. Thai digits (a Thai
    keyboard's) count as digits; other characters (spaces, dashes) are ignored."""
    from handlers.text import thai_digits_to_arabic

    code = "".join(ch for ch in thai_digits_to_arabic(code) if ch in "0123456789")
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = utcnow().timestamp()
    for drift in (0, -1, 1):  # one step of clock drift either way
        step = int(now // totp.interval) + drift
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> tuple[list[str], list[str]]:
    """(codes to show once, hashes to store)."""
    codes = ["-".join(secrets.token_hex(2) for _ in range(3)) for _ in range(RECOVERY_CODES)]
    return codes, [_hasher.hash(c) for c in codes]


def normal_recovery_code(code: str) -> str | None:
    """``code`` as it was shown (``abcd-ef01-2345``), or None if it cannot be one."""
    from handlers.text import thai_digits_to_arabic

    chars = "".join(ch for ch in thai_digits_to_arabic(code).lower() if ch not in _CODE_SEPARATORS)
    if len(chars) != 12 or any(ch not in "0123456789abcdef" for ch in chars):
        return None
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def use_recovery_code(hashes: list[str], code: str) -> list[str] | None:
    """The remaining hashes if the code matched one (which is then spent), else None. Typed as a person
    would: Thai digits, either case, spaces, the grouping dashes left out."""
    code = normal_recovery_code(code)
    if code is None:
        return None
    for i, h in enumerate(hashes):
        try:
            if _hasher.verify(h, code):
                return hashes[:i] + hashes[i + 1 :]
        except (VerificationError, InvalidHashError):
            continue
    return None


def new_token() -> tuple[str, str]:
    """(token for the link, sha256 to store)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
