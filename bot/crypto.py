"""Encryption at rest with ITABOT_DATA_KEY (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


class DataCipher:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode("ascii"))
        self._raw = base64.urlsafe_b64decode(key.encode("ascii"))

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ValueError("cannot decrypt: ITABOT_DATA_KEY differs from the one used to encrypt") from None

    def keyed_hash(self, purpose: str, text: str) -> str:
        """HMAC-SHA256 of ``text`` under a key derived from ITABOT_DATA_KEY for ``purpose``:
        equal inputs give equal hashes (so they can be looked up), but without the key nobody can
        test a guess."""
        key = hmac.new(self._raw, b"itabot:" + purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
