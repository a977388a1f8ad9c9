"""Checking and cleaning what a reporter sends as evidence.

The type is decided from the bytes themselves (not from the name or the header LINE passes on),
sizes are limited, and images are re-encoded by Pillow so that EXIF and other metadata — the
camera, the time, the GPS position of the person who took the photo — are not kept. Videos,
audio and documents are kept as sent (their metadata is not removed; docs/complaints.md says so).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

MAX_BYTES = 20 * 1024 * 1024  # per file
MAX_FILES = 10  # per report
MAX_PIXELS = 40_000_000  # refuse decompression bombs

# What we accept, by magic bytes → (kind, content type, extension).
_IMAGE_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp"),
                  "GIF": ("image/gif", "gif")}


class EvidenceRefused(ValueError):
    """The file cannot be kept; ``reason`` is a catalog key suffix: too_large | wrong_type | broken."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CleanFile:
    kind: str  # image | video | audio | file
    content_type: str
    data: bytes
    sha256: str
    filename: str


def sniff(data: bytes) -> tuple[str, str, str] | None:
    """(kind, content type, extension) from the first bytes, or None for a type we do not keep."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg", "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png", "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp", "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "image/gif", "gif"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio", "audio/mp4", "m4a"
        return "video", "video/mp4" if brand != b"qt  " else "video/quicktime", "mp4" if brand != b"qt  " else "mov"
    if head.startswith(b"%PDF-"):
        return "file", "application/pdf", "pdf"
    if head.startswith(b"PK\x03\x04"):  # docx/xlsx/pptx (and zip): kept as a file, never opened
        return "file", "application/zip", "zip"
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio", "audio/mpeg", "mp3"
    return None


def strip_image(data: bytes, content_type: str) -> bytes:
    """Re-encode an image without its metadata (EXIF, GPS, XMP, comments), upright."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise EvidenceRefused("too_large")
            fmt = img.format
            img.load()
            upright = ImageOps.exif_transpose(img)  # keep how the photo looked, drop the tag that said so
    except EvidenceRefused:
        raise
    except Exception as exc:
        raise EvidenceRefused("broken") from exc
    out = io.BytesIO()
    if fmt == "JPEG":
        upright.convert("RGB").save(out, "JPEG", quality=90, optimize=True)
    elif fmt == "PNG":
        upright.save(out, "PNG", optimize=True)
    elif fmt == "WEBP":
        upright.save(out, "WEBP", quality=90)
    elif fmt == "GIF":
        upright.save(out, "GIF")
    else:
        raise EvidenceRefused("wrong_type")
    return out.getvalue()


def clean(data: bytes, line_type: str, filename: str | None = None) -> CleanFile:
    """Check and clean one file a reporter sent (``line_type`` is LINE's message type)."""
    if len(data) > MAX_BYTES:
        raise EvidenceRefused("too_large")
    if not data:
        raise EvidenceRefused("broken")
    found = sniff(data)
    if found is None:
        raise EvidenceRefused("wrong_type")
    kind, content_type, ext = found
    if kind == "image":
        data = strip_image(data, content_type)
    elif line_type == "image":  # LINE said image, the bytes say otherwise
        raise EvidenceRefused("wrong_type")
    safe_name = _safe_name(filename, ext)
    return CleanFile(kind, content_type, data, hashlib.sha256(data).hexdigest(), safe_name)


def _safe_name(filename: str | None, ext: str) -> str:
    kept = (ch for ch in (filename or "") if ch.isalnum() or ch in " ._-" or "\u0e00" <= ch <= "\u0e7f")
    base = "".join(kept)[:80].strip(" .")
    if not base:
        base = "evidence"
    if not base.lower().endswith("." + ext):
        base = f"{base.rsplit('.', 1)[0] if '.' in base else base}.{ext}"
    return base
