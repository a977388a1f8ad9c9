"""A4 ITA survey posters: page size, PDF structure, a scannable QR code, Thai text, validation."""

from __future__ import annotations

import datetime
import io
import re
import warnings
import zlib

import pytest
from PIL import Image, ImageFont, PdfParser

from surveys.poster import (
    MIN_QR_MM,
    PosterContent,
    _font,
    a4_pixels,
    format_deadline_en,
    format_deadline_th,
    poster_lines,
    render_poster_pdf,
    render_poster_png,
)

LINK = "https://bot.example.go.th/s/Ab3xY9kQ"
SAMPLE = PosterContent(
    office_name="สำนักงานเขตหนองจอก",
    kind="EIT",
    link=LINK,
    deadline=datetime.date(2026, 6, 30),
    fiscal_year_be=2569,
)
LONG_OFFICE = "สำนักงานส่งเสริมการปกครองท้องถิ่นจังหวัดพระนครศรีอยุธยา องค์การบริหารส่วนตำบลบ้านใหม่ อำเภอพระนครศรีอยุธยา"
NAVY_BAND_ROWS = (0.005, 0.05)  # the header band, as fractions of the page height


def _content(**changes) -> PosterContent:
    fields = {**SAMPLE.__dict__, **changes}
    return PosterContent(**fields)


def _png(content: PosterContent = SAMPLE, dpi: int = 150) -> Image.Image:
    data = render_poster_png(content, dpi=dpi)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


@pytest.fixture(scope="module")
def sample_png() -> Image.Image:
    return _png()


@pytest.fixture(scope="module")
def decode_qr():
    """OpenCV's QR decoder (``pip install opencv-python-headless``), skipped loudly when missing."""
    try:
        import cv2
        import numpy as np
    except ImportError as exc:
        reason = f"QR decoder unavailable ({exc}); install it with: pip install opencv-python-headless"
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)

    def decode(image: Image.Image) -> tuple[str, tuple[float, float, float, float]]:
        """(decoded text, bounding box (left, top, right, bottom) of the detected symbol in pixels)."""
        text, points, _ = cv2.QRCodeDetector().detectAndDecode(np.asarray(image.convert("L")))
        assert points is not None, "no QR code found"
        xs, ys = points.reshape(-1, 2).T
        return text, (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    return decode


# -- page size and files ----------------------------------------------------------------------


@pytest.mark.parametrize(("dpi", "size"), [(150, (1240, 1754)), (300, (2480, 3508)), (72, (595, 842))])
def test_png_is_exactly_a4(dpi, size):
    assert a4_pixels(dpi) == size
    image = _png(dpi=dpi)
    assert image.size == size


def test_png_records_dpi_and_stays_small():
    data = render_poster_png(SAMPLE)
    image = Image.open(io.BytesIO(data))
    assert image.size == (1240, 1754)
    assert round(image.info["dpi"][0]) == 150
    assert len(data) < 400 * 1024


def test_pdf_is_one_a4_page():
    data = render_poster_pdf(SAMPLE)
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 1
    pdf = PdfParser.PdfParser(buf=data)
    assert len(pdf.pages) == 1
    page = pdf.read_indirect(pdf.pages[0])
    width_pt, height_pt = (float(v) for v in page[b"MediaBox"][2:])
    assert width_pt == pytest.approx(210 / 25.4 * 72, abs=0.5)
    assert height_pt == pytest.approx(297 / 25.4 * 72, abs=0.5)
    # the page image is the whole poster at the requested dpi, losslessly compressed
    image_ref = page[b"Resources"][b"XObject"][b"Im0"]
    obj, _ = pdf.get_value(pdf.buf, pdf.xref_table[image_ref.object_id][0])
    assert (obj.dictionary.Width, obj.dictionary.Height) == (1240, 1754)
    assert obj.dictionary.Filter == PdfParser.PdfName("FlateDecode")
    assert len(zlib.decompress(obj.buf)) == 1240 * 1754
    assert len(data) < 400 * 1024


# -- QR code ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [SAMPLE, _content(kind="IIT"), _content(office_name=LONG_OFFICE)],
    ids=["eit", "iit", "long-office-name"],
)
def test_qr_decodes_to_link_and_is_at_least_70mm(content, decode_qr):
    image = _png(content)
    text, (left, _, right, _) = decode_qr(image)
    assert text == LINK
    assert (right - left) / (150 / 25.4) >= MIN_QR_MM


def test_qr_decodes_at_low_dpi_and_long_link(decode_qr):
    long_link = LINK + "?utm_source=poster&utm_medium=print&campaign=2569-eit-counter-3"
    assert decode_qr(_png(dpi=100))[0] == LINK
    assert decode_qr(_png(_content(link=long_link)))[0] == long_link


def test_qr_keeps_white_quiet_zone(sample_png, decode_qr):
    _, (left, top, right, bottom) = decode_qr(sample_png)
    module = (right - left) / 29  # a 36-character link is version 3 (29 modules) at level Q
    inner, outer = 0.5 * module, 3.5 * module  # the quiet zone is 4 modules; allow for detection error
    grey = sample_png.convert("L")
    ring = [
        (left - outer, top - outer, right + outer, top - inner),  # above
        (left - outer, bottom + inner, right + outer, bottom + outer),  # below
        (left - outer, top - outer, left - inner, bottom + outer),  # left
        (right + inner, top - outer, right + outer, bottom + outer),  # right
    ]
    for box in ring:
        lo, _ = grey.crop(tuple(round(v) for v in box)).getextrema()
        assert lo > 200, f"the QR quiet zone is not white in {box}"


# -- text -------------------------------------------------------------------------------------


def test_text_is_drawn(sample_png):
    width, height = sample_png.size
    grey = sample_png.convert("L")
    # office name: white text inside the navy header band
    band = grey.crop((0, int(NAVY_BAND_ROWS[0] * height), width, int(NAVY_BAND_ROWS[1] * height) + 60))
    light = sum(band.histogram()[200:])
    assert light > 2000, "no office name in the header band"
    # survey title (navy on white) under the gold rule: find the first white row below the band
    column = [grey.getpixel((4, y)) for y in range(height // 3)]
    below_band = next(y for y in range(1, len(column)) if column[y] > 240 and column[y - 1] <= 240)
    title = grey.crop((int(0.1 * width), below_band, int(0.9 * width), below_band + int(0.06 * height)))
    dark = sum(title.histogram()[:100])
    assert dark > 3000, "no survey title under the header"
    # the title line spans most of the width (it is long), and is centred
    bbox = title.point(lambda v: 255 if v < 100 else 0).getbbox()
    assert bbox is not None and bbox[2] - bbox[0] > 0.6 * title.width


def test_fonts_use_raqm_for_thai_shaping():
    font = _font("Bold", 100)
    assert font.layout_engine == ImageFont.Layout.RAQM
    # shaped, the tone mark of ที่ stacks above the vowel (unshaped, it collides with it)
    assert font.getbbox("ที่", anchor="ls")[1] < font.getbbox("ที", anchor="ls")[1] - 15


def test_deadline_in_buddhist_era():
    assert format_deadline_th(datetime.date(2026, 6, 30)) == "30 มิ.ย. 2569"
    assert format_deadline_en(datetime.date(2026, 6, 30)) == "30 Jun 2026"
    assert format_deadline_th(datetime.date(2025, 10, 1)) == "1 ต.ค. 2568"


def test_poster_lines():
    eit = poster_lines(SAMPLE)
    assert eit["survey"] == (
        "แบบวัดการรับรู้ของผู้มีส่วนได้ส่วนเสียภายนอก (EIT)",
        "External Integrity and Transparency Assessment (EIT)",
    )
    assert eit["fiscal_year"] == ("ประจำปีงบประมาณ พ.ศ. 2569", "Fiscal year 2026 (BE 2569)")
    assert eit["deadline"] == ("ตอบได้ถึง 30 มิ.ย. 2569", "Answer by 30 Jun 2026")
    assert eit["instructions"][0] == "สแกน QR Code ด้วยกล้องโทรศัพท์ ใช้เวลาประมาณ 5 นาที ไม่ต้องระบุชื่อ"
    assert eit["nacc"][0].startswith("คำตอบส่งตรงถึงสำนักงาน ป.ป.ช.")
    assert eit["nacc"][1].startswith("Answers go straight to the NACC")
    iit = poster_lines(_content(kind="IIT"))
    assert iit["survey"][0] == "แบบวัดการรับรู้ของผู้มีส่วนได้ส่วนเสียภายใน (IIT)"
    assert iit["survey"][1] == "Internal Integrity and Transparency Assessment (IIT)"
    assert "nacc" not in iit


def test_pathological_office_name_still_renders():
    assert _png(_content(office_name="ก" * 300)).size == (1240, 1754)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "XIT"},
        {"kind": "eit"},
        {"kind": ""},
        {"link": "http://bot.example.go.th/s/Ab3xY9kQ"},
        {"link": "ftp://bot.example.go.th/s/Ab3xY9kQ"},
        {"link": "bot.example.go.th/s/Ab3xY9kQ"},
        {"link": "https:///s/Ab3xY9kQ"},
        {"link": "javascript:alert(1)"},
        {"link": "https://bot.example.go.th/s/Ab3 xY9kQ"},
        {"office_name": "  "},
    ],
)
def test_invalid_content_raises(changes):
    content = _content(**changes)
    with pytest.raises(ValueError):
        render_poster_png(content)
    with pytest.raises(ValueError):
        render_poster_pdf(content)


@pytest.mark.parametrize("dpi", [0, 10, 5000])
def test_invalid_dpi_raises(dpi):
    with pytest.raises(ValueError):
        render_poster_png(SAMPLE, dpi=dpi)
