"""Printable A4 posters for ITA survey campaigns (placed at service counters).

A poster carries, Thai first and English second, the office name, the survey
name (EIT or IIT), the fiscal year, a large QR code of the campaign's short
tracked link with the link printed in full under it, the deadline in the
Buddhist Era and one line of instructions.  EIT posters also say that answers
go straight to the NACC and that the office never sees who answered.

Text is set in Sarabun and shaped with libraqm (``ImageFont.Layout.RAQM``) so
that Thai vowels and tone marks stack correctly.  Every text block shrinks to
fit its width; long office names wrap.  The palette is navy and gold on white:
all text is either dark-on-white or white-on-navy, so the poster stays legible
when printed in black and white.

``render_poster_png`` returns a palette PNG of exactly A4 (210 x 297 mm) at
*dpi*; ``render_poster_pdf`` returns a one-page A4 PDF of the same image
(lossless, so the QR code stays crisp).
"""

from __future__ import annotations

import datetime
import io
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_Q

from bot.richmenu_image import sarabun_path

__all__ = [
    "A4_MM",
    "KINDS",
    "PosterContent",
    "a4_pixels",
    "format_deadline_en",
    "format_deadline_th",
    "poster_lines",
    "render_poster_pdf",
    "render_poster_png",
]

A4_MM = (210.0, 297.0)
KINDS = ("EIT", "IIT")
MIN_DPI = 72
MAX_DPI = 600
#: The QR symbol itself (without its quiet zone) is never narrower than this.
MIN_QR_MM = 70.0
#: Preferred width of the QR symbol when the page has room.
TARGET_QR_MM = 92.0
QR_BORDER_MODULES = 4  # the quiet zone required by ISO/IEC 18004

NAVY = (22, 43, 84)
GOLD = (196, 154, 42)
INK = (20, 20, 20)
GREY = (70, 70, 70)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)

_SURVEY_NAMES = {
    "EIT": (
        "แบบวัดการรับรู้ของผู้มีส่วนได้ส่วนเสียภายนอก (EIT)",
        "External Integrity and Transparency Assessment (EIT)",
    ),
    "IIT": (
        "แบบวัดการรับรู้ของผู้มีส่วนได้ส่วนเสียภายใน (IIT)",
        "Internal Integrity and Transparency Assessment (IIT)",
    ),
}
_INSTRUCTIONS = (
    "สแกน QR Code ด้วยกล้องโทรศัพท์ ใช้เวลาประมาณ 5 นาที ไม่ต้องระบุชื่อ",
    "Scan with your phone camera \u2014 about 5 minutes, no name needed",
)
_NACC = (
    "คำตอบส่งตรงถึงสำนักงาน ป.ป.ช. หน่วยงานจะไม่ทราบว่าผู้ใดเป็นผู้ตอบ",
    "Answers go straight to the NACC \u2014 this office never sees who answered",
)
_FOOTER = "การประเมินคุณธรรมและความโปร่งใสในการดำเนินงานของหน่วยงานภาครัฐ (ITA)"

_TH_MONTHS = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BE_OFFSET = 543


@dataclass(frozen=True)
class PosterContent:
    office_name: str  # e.g. "สำนักงานเขตหนองจอก"
    kind: str  # "EIT" or "IIT"
    link: str  # the short tracked link, e.g. "https://bot.example.go.th/s/Ab3xY9kQ"
    deadline: datetime.date  # shown in the Buddhist Era, e.g. "30 มิ.ย. 2569" and "30 Jun 2026"
    fiscal_year_be: int  # e.g. 2569


# --------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------


def format_deadline_th(day: datetime.date) -> str:
    """``30 มิ.ย. 2569`` (Buddhist Era)."""
    return f"{day.day} {_TH_MONTHS[day.month - 1]} {day.year + _BE_OFFSET}"


def format_deadline_en(day: datetime.date) -> str:
    """``30 Jun 2026``."""
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def _validate(content: PosterContent, dpi: int, allow_http: bool = False) -> None:
    if content.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {content.kind!r}")
    link = content.link
    if not isinstance(link, str) or any(ch.isspace() for ch in link):
        raise ValueError(f"link must be an https URL without spaces, got {link!r}")
    parts = urlsplit(link)
    if parts.scheme not in (("https", "http") if allow_http else ("https",)) or not parts.hostname:
        raise ValueError(f"link must be an absolute https URL, got {link!r}")
    if not content.office_name or not content.office_name.strip():
        raise ValueError("office_name must not be empty")
    if not isinstance(content.deadline, datetime.date):
        raise ValueError(f"deadline must be a datetime.date, got {content.deadline!r}")
    if not isinstance(content.fiscal_year_be, int) or not 2400 <= content.fiscal_year_be <= 2800:
        raise ValueError(f"fiscal_year_be must be a Buddhist Era year, got {content.fiscal_year_be!r}")
    if not isinstance(dpi, int) or not MIN_DPI <= dpi <= MAX_DPI:
        raise ValueError(f"dpi must be an int in {MIN_DPI}-{MAX_DPI}, got {dpi!r}")


def poster_lines(content: PosterContent) -> dict[str, tuple[str, str]]:
    """The (Thai, English) text pairs of the poster, keyed by section."""
    fy = content.fiscal_year_be
    lines = {
        "survey": _SURVEY_NAMES[content.kind],
        "fiscal_year": (f"ประจำปีงบประมาณ พ.ศ. {fy}", f"Fiscal year {fy - _BE_OFFSET} (BE {fy})"),
        "deadline": (
            f"ตอบได้ถึง {format_deadline_th(content.deadline)}",
            f"Answer by {format_deadline_en(content.deadline)}",
        ),
        "instructions": _INSTRUCTIONS,
    }
    if content.kind == "EIT":
        lines["nacc"] = _NACC
    return lines


# --------------------------------------------------------------------------
# Fonts and text
# --------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _font(weight: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(sarabun_path(weight)), size, layout_engine=ImageFont.Layout.RAQM)


def _is_thai(text: str) -> bool:
    return any("\u0e00" <= ch <= "\u0e7f" for ch in text)


# Thai characters that must not start a line (above/below vowels, tone marks,
# and following vowels) or end one (leading vowels).
_NO_LINE_START = set("\u0e30\u0e31\u0e32\u0e33\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a\u0e45\u0e46")
_NO_LINE_START |= {chr(c) for c in range(0x0E47, 0x0E4F)}
_NO_LINE_END = set("\u0e40\u0e41\u0e42\u0e43\u0e44")


# Words that commonly start a new part of a Thai office name; a name written
# without spaces is preferably broken just before one of them.
_NAME_PARTS = (
    "สำนักงาน",
    "สำนัก",
    "กรุงเทพมหานคร",
    "จังหวัด",
    "อำเภอ",
    "ตำบล",
    "เขต",
    "แขวง",
    "เทศบาล",
    "องค์การ",
    "กอง",
    "ฝ่าย",
    "กรม",
    "กระทรวง",
    "ศูนย์",
    "สถานี",
    "โรงพยาบาล",
    "โรงเรียน",
)
# Characters after which a URL may be broken.
_URL_BREAK_AFTER = set("/?&=#-_.")


def _cluster_points(word: str) -> list[int]:
    """Indices inside *word* between Thai character clusters (no dictionary available)."""
    points = []
    for i in range(1, len(word)):
        ch, prev = word[i], word[i - 1]
        if ch in _NO_LINE_START or prev in _NO_LINE_END or unicodedata.combining(ch):
            continue
        points.append(i)
    return points


def _preferred_points(word: str) -> list[int]:
    """Good places to break *word*: before a known office-name part, or after URL punctuation."""
    points = {i + 1 for i, ch in enumerate(word[:-1]) if ch in _URL_BREAK_AFTER and "://" not in word[i - 2 : i + 3]}
    for part in _NAME_PARTS:
        start = word.find(part, 1)
        while start > 0:
            points.add(start)
            start = word.find(part, start + 1)
    return sorted(points)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float, level: int) -> list[str] | None:
    """Greedy wrap of *text* into lines no wider than *width*, or ``None``.

    Lines break at spaces; a word too wide on its own line is split at
    preferred points (``level >= 1``) and then at any cluster boundary
    (``level >= 2``).
    """
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width:
            finders = [_preferred_points, _cluster_points][:level]
            cut = next(
                (
                    fitting[-1]
                    for find in finders
                    if (fitting := [i for i in find(current) if font.getlength(current[:i]) <= width])
                ),
                None,
            )
            if cut is None:
                return None
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    return lines or [""]


@dataclass
class _Text:
    """A block of one or more centred lines in one font and colour."""

    lines: list[str]
    font: ImageFont.FreeTypeFont
    fill: tuple[int, int, int]

    def _extents(self, line: str) -> tuple[int, int]:
        size = self.font.size
        top, bottom = self.font.getbbox(line, anchor="ls")[1::2]
        if _is_thai(line):
            return min(top, -round(1.02 * size)), max(bottom, round(0.30 * size))
        return min(top, -round(0.74 * size)), max(bottom, round(0.24 * size))

    @property
    def leading(self) -> int:
        return round(0.12 * self.font.size)

    @property
    def height(self) -> int:
        spans = [b - t for t, b in map(self._extents, self.lines)]
        return sum(spans) + self.leading * (len(spans) - 1)

    def draw(self, draw: ImageDraw.ImageDraw, centre_x: float, y: int) -> None:
        for line in self.lines:
            top, bottom = self._extents(line)
            x = centre_x - self.font.getlength(line) / 2
            draw.text((round(x), y - top), line, font=self.font, fill=self.fill, anchor="ls")
            y += bottom - top + self.leading


def _fit_text(
    text: str,
    weight: str,
    size: float,
    width: float,
    fill: tuple[int, int, int],
    *,
    max_lines: int = 1,
    single_line_ratio: float = 0.78,
    min_size: int = 10,
) -> _Text:
    """Largest block of *text* no wider than *width*.

    It stays on one line while that needs shrinking to no less than
    *single_line_ratio* of *size*; then it may wrap onto up to *max_lines*
    lines, shrinking further if even that does not fit.
    """
    size = max(min_size, int(size))
    floor_one = max(min_size, int(size * single_line_ratio)) if max_lines > 1 else min_size
    for px in range(size, floor_one - 1, -1):
        font = _font(weight, px)
        if font.getlength(text) <= width:
            return _Text([text], font, fill)
    # Breaking at spaces or before a known name part is preferred to shrinking;
    # shrinking (down to 60 %) is preferred to breaking anywhere else.
    floor_words = max(min_size, int(size * 0.6))
    for levels, floor in (((0, 1), floor_words), ((2,), min_size)):
        for px in range(size, floor - 1, -1):
            font = _font(weight, px)
            for level in levels:
                lines = _wrap(text, font, width, level)
                if lines is not None and len(lines) <= max_lines:
                    return _Text(lines, font, fill)
    font = _font(weight, min_size)  # pathological input: smallest size, as many lines as it takes
    return _Text(_wrap(text, font, width, 2) or [text], font, fill)


# --------------------------------------------------------------------------
# QR code
# --------------------------------------------------------------------------


def _qr_matrix(link: str) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=QR_BORDER_MODULES)
    qr.add_data(link)
    qr.make(fit=True)
    return qr.get_matrix()  # includes the quiet zone


def _qr_image(matrix: list[list[bool]], module_px: int) -> Image.Image:
    n = len(matrix)
    small = Image.new("1", (n, n), 1)
    px = small.load()
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                px[x, y] = 0
    return small.resize((n * module_px, n * module_px), Image.Resampling.NEAREST).convert("RGB")


# --------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------


def a4_pixels(dpi: int) -> tuple[int, int]:
    """A4 portrait in pixels at *dpi*: (1240, 1754) at 150 dpi."""
    return round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)


_Draw = Callable[[ImageDraw.ImageDraw, Image.Image, int], None]


@dataclass(frozen=True)
class _Gap:
    """Flexible vertical space; the page's free space is shared in proportion to ``weight``."""

    weight: float


def _layout(content: PosterContent, dpi: int, scale: float, qr_mm: float) -> list[tuple[int, _Draw] | _Gap]:
    """Top-to-bottom blocks as (height, draw(draw, image, y)) and flexible gaps (weights in mm at scale 1)."""
    width, _ = a4_pixels(dpi)
    mm = dpi / 25.4
    margin = round(16 * mm)
    text_w = width - 2 * margin
    cx = width / 2
    pt = dpi / 72 * scale  # 1 pt in px at this scale
    texts = poster_lines(content)
    blocks: list[tuple[int, _Draw] | _Gap] = []

    def add_text(block: _Text) -> None:
        blocks.append((block.height, lambda d, _im, y: block.draw(d, cx, y)))

    def add_pair(key: str, th_pt: float, en_pt: float, th_weight: str, en_weight: str, th_fill, en_fill, lines=2):
        th, en = texts[key]
        add_text(_fit_text(th, th_weight, th_pt * pt, text_w, th_fill, max_lines=lines))
        blocks.append((round(1.2 * mm * scale), lambda *_: None))
        add_text(_fit_text(en, en_weight, en_pt * pt, text_w, en_fill, max_lines=lines))

    # Header band: office name in white on navy, with a gold rule under it.
    office = _fit_text(
        " ".join(content.office_name.split()), "Bold", 34 * pt, text_w, WHITE, max_lines=3, single_line_ratio=0.7
    )
    pad_top, pad_bottom, rule = round(11 * mm * scale), round(9 * mm * scale), max(2, round(2.2 * mm))
    header_h = pad_top + office.height + pad_bottom

    def draw_header(d: ImageDraw.ImageDraw, _im: Image.Image, y: int) -> None:
        d.rectangle((0, y, width, y + header_h - 1), fill=NAVY)
        d.rectangle((0, y + header_h, width, y + header_h + rule - 1), fill=GOLD)
        office.draw(d, cx, y + pad_top)

    blocks.append((header_h + rule, draw_header))
    blocks.append(_Gap(6.0))

    add_pair("survey", 23, 15, "Bold", "Medium", NAVY, GREY)
    blocks.append(_Gap(4.0))
    add_pair("fiscal_year", 19, 13, "SemiBold", "Regular", INK, GREY)
    blocks.append(_Gap(6.0))

    # QR code inside a thin navy frame, quiet zone kept white.
    matrix = _qr_matrix(content.link)
    n = len(matrix)
    symbol_modules = n - 2 * QR_BORDER_MODULES
    module_px = max(1, round(qr_mm * mm / symbol_modules))
    while module_px * symbol_modules < MIN_QR_MM * mm:
        module_px += 1
    qr_img = _qr_image(matrix, module_px)
    frame = max(2, round(1.0 * mm))
    qr_box = qr_img.width + 2 * frame

    def draw_qr(d: ImageDraw.ImageDraw, im: Image.Image, y: int) -> None:
        x = round(cx - qr_box / 2)
        d.rounded_rectangle((x, y, x + qr_box - 1, y + qr_box - 1), radius=round(3 * mm), fill=NAVY)
        im.paste(qr_img, (x + frame, y + frame))

    blocks.append((qr_box, draw_qr))
    blocks.append((round(4.5 * mm * scale), lambda *_: None))
    link_text = _fit_text(content.link, "SemiBold", 17 * pt, text_w, INK, max_lines=2, single_line_ratio=0.6)
    add_text(link_text)
    blocks.append(_Gap(6.0))

    # Deadline: white on a navy pill.
    th, en = texts["deadline"]
    pill_w = round(text_w * 0.86)
    dl_th = _fit_text(th, "Bold", 25 * pt, pill_w - round(12 * mm), WHITE)
    dl_en = _fit_text(en, "Medium", 15 * pt, pill_w - round(12 * mm), WHITE)
    pill_pad, pill_gap = round(4.5 * mm * scale), round(1.0 * mm * scale)
    pill_h = pill_pad * 2 + dl_th.height + pill_gap + dl_en.height

    def draw_deadline(d: ImageDraw.ImageDraw, _im: Image.Image, y: int) -> None:
        x = round(cx - pill_w / 2)
        d.rounded_rectangle((x, y, x + pill_w - 1, y + pill_h - 1), radius=round(pill_h / 2), fill=NAVY)
        bar = max(2, round(1.0 * mm))
        d.rounded_rectangle(
            (x + bar, y + bar, x + pill_w - 1 - bar, y + pill_h - 1 - bar),
            radius=round(pill_h / 2) - bar,
            outline=GOLD,
            width=max(1, round(0.5 * mm)),
        )
        dl_th.draw(d, cx, y + pill_pad)
        dl_en.draw(d, cx, y + pill_pad + dl_th.height + pill_gap)

    blocks.append((pill_h, draw_deadline))
    blocks.append(_Gap(5.0))

    add_pair("instructions", 17, 13, "Medium", "Regular", INK, GREY)
    if "nacc" in texts:
        blocks.append(_Gap(3.0))
        add_pair("nacc", 16, 13, "SemiBold", "Medium", NAVY, GREY)
    blocks.append(_Gap(5.0))

    # Footer band with the programme's official name.
    footer = _fit_text(_FOOTER, "Medium", 11 * pt, text_w, WHITE, min_size=8)
    foot_pad = round(3.5 * mm)
    footer_h = foot_pad * 2 + footer.height

    def draw_footer(d: ImageDraw.ImageDraw, _im: Image.Image, y: int) -> None:
        d.rectangle((0, y, width, y + rule - 1), fill=GOLD)
        d.rectangle((0, y + rule, width, y + rule + footer_h), fill=NAVY)
        footer.draw(d, cx, y + rule + foot_pad)

    blocks.append((rule + footer_h, draw_footer))
    return blocks


def _render(content: PosterContent, dpi: int, allow_http: bool = False) -> Image.Image:
    _validate(content, dpi, allow_http)
    width, height = a4_pixels(dpi)
    mm = dpi / 25.4
    scale, qr_mm = 1.0, TARGET_QR_MM
    while True:
        blocks = _layout(content, dpi, scale, qr_mm)
        used = sum(b[0] for b in blocks if not isinstance(b, _Gap))
        weights = sum(b.weight for b in blocks if isinstance(b, _Gap))
        if used + weights * mm * scale <= height or scale <= 0.5:
            break
        if qr_mm > MIN_QR_MM + 6:  # give up some QR size first, then shrink the text
            qr_mm = max(MIN_QR_MM + 6, qr_mm - 3)
        else:
            scale *= 0.95
    unit = max(0, height - used) / weights  # px of free space per unit of gap weight

    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    y = 0.0
    for block in blocks:
        if isinstance(block, _Gap):
            y += block.weight * unit
        else:
            h, paint = block
            paint(draw, image, round(y))
            y += h
    return image


def _to_palette(image: Image.Image) -> Image.Image:
    """Few-colour palette image: small files, and pure black/white QR modules survive."""
    return image.quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def render_poster_png(content: PosterContent, dpi: int = 150, *, allow_http: bool = False) -> bytes:
    """A4 portrait poster as PNG bytes (1240x1754 px at 150 dpi). ``allow_http``: a local test print whose
    link is not (yet) https, e.g. the default PUBLIC_BASE_URL; a poster for the public needs https."""
    image = _to_palette(_render(content, dpi, allow_http))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, dpi=(dpi, dpi))
    return out.getvalue()


def render_poster_pdf(content: PosterContent, dpi: int = 150, *, allow_http: bool = False) -> bytes:
    """The same poster as a one-page A4 PDF.

    Pillow's PDF writer stores palette images hex-encoded (several MB) and
    RGB ones as JPEG (lossy around the QR modules), so the page is written
    here directly: one Flate-compressed indexed-colour image filling A4.
    """
    return _pdf_with_image(_to_palette(_render(content, dpi, allow_http)))


def _pdf_with_image(image: Image.Image) -> bytes:
    palette = bytes(image.getpalette() or [])[: 3 * 256]
    w_pt, h_pt = (f"{v / 25.4 * 72:.2f}" for v in A4_MM)
    data = zlib.compress(image.tobytes(), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt} {h_pt}] "
            "/Resources << /XObject << /Im0 4 0 R >> /ProcSet [/PDF /ImageI] >> /Contents 5 0 R >>"
        ).encode(),
        (
            f"<< /Type /XObject /Subtype /Image /Width {image.width} /Height {image.height} "
            f"/ColorSpace [/Indexed /DeviceRGB {len(palette) // 3 - 1} <{palette.hex()}>] "
            f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>\nstream\n"
        ).encode()
        + data
        + b"\nendstream",
    ]
    page = f"q {w_pt} 0 0 {h_pt} 0 0 cm /Im0 Do Q".encode()
    objects.append(b"<< /Length %d >>\nstream\n" % len(page) + page + b"\nendstream")
    objects.append(b"<< /Title (ITA survey poster) /Creator (itabot) >>")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)


def _sample() -> PosterContent:
    """The EIT sample shown in ``docs/img/poster-sample.png``."""
    return PosterContent(
        office_name="สำนักงานเขตหนองจอก",
        kind="EIT",
        link="https://bot.example.go.th/s/Ab3xY9kQ",
        deadline=datetime.date(2026, 6, 30),
        fiscal_year_be=2569,
    )


if __name__ == "__main__":  # python -m surveys.poster docs/img/poster-sample.png
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else "poster-sample.png"
    render = render_poster_pdf if target.lower().endswith(".pdf") else render_poster_png
    with open(target, "wb") as fh:
        fh.write(render(_sample()))
    print(target)
