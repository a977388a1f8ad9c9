"""What both browser tests share: where Debian's Chromium is, how to start it here, where
screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"
# Without the background-networking flags Chromium keeps trying the (closed) internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium (or CHROMIUM_PATH); skip loudly when it is not installed."""
    path = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip(f"Chromium not installed: apt-get install chromium (looked for {path}; set CHROMIUM_PATH)")
    return path
