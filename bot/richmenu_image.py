"""Render LINE rich-menu images (PNG) with bilingual Thai/English tiles.

The renderer draws a grid of coloured tiles, each with an optional simple
vector icon, a large Thai label (Sarabun Bold) and a smaller English label
below it.  Thai text is shaped with libraqm so that vowels and tone marks
(e.g. ``ที่``, ``ผู้``) are positioned correctly.

``tile_bounds`` returns the tappable rectangles for the rich menu's
``areas`` in the same order as the tiles are drawn.
"""

from __future__ import annotations

import io
import math
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageColor, ImageDraw, ImageFont

__all__ = [
    "MAX_BYTES",
    "Tile",
    "render_rich_menu",
    "sarabun_path",
    "tile_bounds",
    "validate_size",
]

#: LINE's limit for rich-menu images.
MAX_BYTES = 1024 * 1024
#: LINE allows at most 20 tappable areas per rich menu.
MAX_TILES = 20

_WHITE = (255, 255, 255)
_MIN_CONTRAST = 4.5  # WCAG 2.x AA for normal-size text
_MIN_FONT_PX = 12
_SUPERSAMPLE = 4  # icons are drawn 4x larger and downsampled (anti-aliasing)


@dataclass(frozen=True)
class Tile:
    """One tappable tile of the rich menu."""

    label_th: str
    label_en: str
    icon: str = ""
    color: str = "#1f5f8b"


# --------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------


def sarabun_path(weight: str = "Regular") -> pathlib.Path:
    """Path of the bundled Sarabun TTF for *weight* (e.g. ``"Bold"``)."""
    import fontpkg_sarabun

    path = pathlib.Path(fontpkg_sarabun.ROOT) / "files" / f"Sarabun-{weight}.ttf"
    if not path.is_file():
        raise FileNotFoundError(f"Sarabun weight not available: {weight!r} ({path})")
    return path


@lru_cache(maxsize=256)
def _font(weight: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(sarabun_path(weight)), size, layout_engine=ImageFont.Layout.RAQM)


def _fit_font(text: str, weight: str, max_size: int, max_width: float) -> ImageFont.FreeTypeFont:
    """Largest font (<= max_size) in which *text* fits on one line of *max_width*."""
    max_size = max(_MIN_FONT_PX, int(max_size))
    if _font(weight, max_size).getlength(text) <= max_width:
        return _font(weight, max_size)
    lo, hi = _MIN_FONT_PX, max_size  # invariant: lo is the answer candidate
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _font(weight, mid).getlength(text) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return _font(weight, lo)


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------


def validate_size(size: tuple[int, int]) -> tuple[int, int]:
    """Check *size* against LINE's rich-menu rules; return it as ints.

    Width 800-2500 px, height >= 250 px, width / height >= 1.45.
    """
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (width, height) pair, got {size!r}") from None
    if not 800 <= width <= 2500:
        raise ValueError(f"rich menu width must be 800-2500 px, got {width}")
    if height < 250:
        raise ValueError(f"rich menu height must be >= 250 px, got {height}")
    if width / height < 1.45:
        raise ValueError(f"rich menu aspect ratio (width/height) must be >= 1.45, got {width}x{height}")
    return width, height


def _split(total: int, parts: int) -> list[tuple[int, int]]:
    """(offset, length) of *parts* equal slices of *total*; the last absorbs rounding."""
    base = total // parts
    out = [(i * base, base) for i in range(parts - 1)]
    out.append(((parts - 1) * base, total - (parts - 1) * base))
    return out


def tile_bounds(
    n_tiles: int, *, size: tuple[int, int] = (2500, 1686), columns: int = 3
) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of each tile, left-to-right then top-to-bottom.

    Rows = ceil(n_tiles / columns).  A last row with fewer tiles is split
    evenly so the tiles always cover the whole image without gaps or overlap.
    """
    width, height = validate_size(size)
    if isinstance(n_tiles, bool) or not isinstance(n_tiles, int) or not 1 <= n_tiles <= MAX_TILES:
        raise ValueError(f"number of tiles must be 1-{MAX_TILES}, got {n_tiles!r}")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive int, got {columns!r}")
    rows = math.ceil(n_tiles / columns)
    bounds: list[tuple[int, int, int, int]] = []
    for r, (y, h) in enumerate(_split(height, rows)):
        in_row = min(columns, n_tiles - r * columns)
        for x, w in _split(width, in_row):
            bounds.append((x, y, w, h))
    return bounds


# --------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------


def _parse_color(color: str) -> tuple[int, int, int]:
    try:
        rgb = ImageColor.getrgb(color)
    except (ValueError, AttributeError):
        raise ValueError(f"invalid tile colour: {color!r}") from None
    return rgb[0], rgb[1], rgb[2]


def _luminance(rgb: tuple[int, int, int]) -> float:
    def chan(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = rgb
    return 0.2126 * chan(r) + 0.7152 * chan(g) + 0.0722 * chan(b)


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio between two sRGB colours (1.0-21.0)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    """Linear blend from a (t=0) to b (t=1)."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _accessible_background(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Darken *rgb* just enough for white text to meet WCAG AA (4.5:1)."""
    t = 0.0
    out = rgb
    while contrast_ratio(_WHITE, out) < _MIN_CONTRAST and t < 1.0:
        t += 0.02
        out = _mix(rgb, (0, 0, 0), t)
    return out


# --------------------------------------------------------------------------
# Icons (drawn white on a supersampled "L" mask, unit coordinates 0..1)
# --------------------------------------------------------------------------

_IconFn = Callable[[ImageDraw.ImageDraw, float, float], None]


def _icon_survey(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.rounded_rectangle((0.18 * s, 0.12 * s, 0.82 * s, 0.95 * s), radius=0.08 * s, outline=255, width=w)
    d.rounded_rectangle((0.35 * s, 0.04 * s, 0.65 * s, 0.2 * s), radius=0.05 * s, fill=255)
    for y in (0.4, 0.58, 0.76):
        d.line(
            [(0.29 * s, y * s), (0.35 * s, (y + 0.055) * s), (0.45 * s, (y - 0.06) * s)],
            fill=255,
            width=w,
            joint="curve",
        )
        d.line([(0.53 * s, y * s), (0.71 * s, y * s)], fill=255, width=w)


def _icon_complaint(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    # megaphone: mouthpiece, flared cone, rim, handle
    d.rounded_rectangle((0.06 * s, 0.36 * s, 0.24 * s, 0.62 * s), radius=0.04 * s, fill=255)
    d.polygon(
        [(0.22 * s, 0.36 * s), (0.68 * s, 0.14 * s), (0.68 * s, 0.84 * s), (0.22 * s, 0.62 * s)],
        outline=255,
        width=w,
    )
    d.rounded_rectangle((0.64 * s, 0.1 * s, 0.74 * s, 0.88 * s), radius=0.04 * s, fill=255)
    d.line([(0.3 * s, 0.62 * s), (0.36 * s, 0.9 * s)], fill=255, width=round(lw * 1.3))
    # sound waves
    d.arc((0.58 * s, 0.22 * s, 0.9 * s, 0.76 * s), start=-50, end=50, fill=255, width=w)
    d.arc((0.6 * s, 0.1 * s, 1.0 * s, 0.88 * s), start=-50, end=50, fill=255, width=w)


def _icon_question(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.rounded_rectangle((0.06 * s, 0.1 * s, 0.94 * s, 0.72 * s), radius=0.16 * s, outline=255, width=w)
    d.polygon([(0.24 * s, 0.7 * s), (0.44 * s, 0.7 * s), (0.2 * s, 0.93 * s)], fill=255)
    font = _font("Bold", max(_MIN_FONT_PX, round(0.5 * s)))
    d.text((0.5 * s, 0.41 * s), "?", font=font, fill=255, anchor="mm")


def _icon_status(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.ellipse((0.1 * s, 0.1 * s, 0.64 * s, 0.64 * s), outline=255, width=w)
    d.line([(0.58 * s, 0.58 * s), (0.88 * s, 0.88 * s)], fill=255, width=round(lw * 1.8))
    d.ellipse(
        (0.88 * s - lw * 0.9, 0.88 * s - lw * 0.9, 0.88 * s + lw * 0.9, 0.88 * s + lw * 0.9),
        fill=255,
    )
    # small check mark inside the lens: "case found / tracked"
    d.line(
        [(0.24 * s, 0.38 * s), (0.34 * s, 0.48 * s), (0.5 * s, 0.28 * s)],
        fill=255,
        width=w,
        joint="curve",
    )


def _icon_menu(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    r = 0.1 * s
    for row in (0.12, 0.56):
        for col in (0.12, 0.56):
            d.rounded_rectangle(
                (col * s, row * s, (col + 0.32) * s, (row + 0.32) * s),
                radius=r,
                outline=255,
                width=round(lw),
            )


def _icon_language(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    box = (0.08 * s, 0.08 * s, 0.92 * s, 0.92 * s)
    d.ellipse(box, outline=255, width=w)
    d.ellipse((0.3 * s, 0.08 * s, 0.7 * s, 0.92 * s), outline=255, width=w)
    d.line([(0.5 * s, 0.08 * s), (0.5 * s, 0.92 * s)], fill=255, width=w)
    d.line([(0.08 * s, 0.5 * s), (0.92 * s, 0.5 * s)], fill=255, width=w)
    for y in (0.28, 0.72):
        r_in = 0.42 - lw / s  # stay inside the outline (no protruding caps)
        half = math.sqrt(max(0.0, r_in**2 - (y - 0.5) ** 2))
        d.line([((0.5 - half) * s, y * s), ((0.5 + half) * s, y * s)], fill=255, width=w)


def _icon_privacy(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.arc((0.28 * s, 0.06 * s, 0.72 * s, 0.56 * s), start=180, end=360, fill=255, width=w)
    d.line([(0.28 * s, 0.31 * s), (0.28 * s, 0.46 * s)], fill=255, width=w)
    d.line([(0.72 * s - w + 1, 0.31 * s), (0.72 * s - w + 1, 0.46 * s)], fill=255, width=w)
    d.rounded_rectangle((0.16 * s, 0.44 * s, 0.84 * s, 0.94 * s), radius=0.08 * s, fill=255)
    d.ellipse((0.44 * s, 0.58 * s, 0.56 * s, 0.7 * s), fill=0)
    d.rectangle((0.475 * s, 0.64 * s, 0.525 * s, 0.82 * s), fill=0)


def _icon_info(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.ellipse((0.06 * s, 0.06 * s, 0.94 * s, 0.94 * s), outline=255, width=w)
    d.ellipse((0.44 * s, 0.22 * s, 0.56 * s, 0.34 * s), fill=255)
    d.rounded_rectangle((0.445 * s, 0.42 * s, 0.555 * s, 0.78 * s), radius=0.04 * s, fill=255)


def _icon_gift(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.rectangle((0.16 * s, 0.46 * s, 0.84 * s, 0.94 * s), outline=255, width=w)
    d.rectangle((0.08 * s, 0.3 * s, 0.92 * s, 0.47 * s), outline=255, width=w)
    d.rectangle((0.45 * s, 0.3 * s, 0.55 * s, 0.94 * s), fill=255)
    # bow: two loops
    d.ellipse((0.2 * s, 0.06 * s, 0.5 * s, 0.32 * s), outline=255, width=w)
    d.ellipse((0.5 * s, 0.06 * s, 0.8 * s, 0.32 * s), outline=255, width=w)


def _icon_home(d: ImageDraw.ImageDraw, s: float, lw: float) -> None:
    w = round(lw)
    d.line(
        [(0.06 * s, 0.5 * s), (0.5 * s, 0.1 * s), (0.94 * s, 0.5 * s)],
        fill=255,
        width=w,
        joint="curve",
    )
    d.line(
        [(0.2 * s, 0.4 * s), (0.2 * s, 0.92 * s), (0.8 * s, 0.92 * s), (0.8 * s, 0.4 * s)],
        fill=255,
        width=w,
        joint="curve",
    )
    d.rectangle((0.41 * s, 0.6 * s, 0.59 * s, 0.92 * s), fill=255)


_ICONS: dict[str, _IconFn] = {
    "survey": _icon_survey,
    "complaint": _icon_complaint,
    "report": _icon_complaint,
    "question": _icon_question,
    "faq": _icon_question,
    "status": _icon_status,
    "track": _icon_status,
    "menu": _icon_menu,
    "language": _icon_language,
    "lang": _icon_language,
    "privacy": _icon_privacy,
    "lock": _icon_privacy,
    "info": _icon_info,
    "gift": _icon_gift,
    "home": _icon_home,
}

#: Icon keys understood by :class:`Tile` (unknown keys draw no icon).
ICON_NAMES = frozenset(_ICONS)


def _icon_mask(name: str, size: int) -> Image.Image | None:
    fn = _ICONS.get((name or "").strip().lower())
    if fn is None or size < 8:
        return None
    big = size * _SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    fn(ImageDraw.Draw(mask), float(big), max(2.0, big * 0.068))
    return mask.resize((size, size), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

# Line boxes in em: room above/below the baseline.  Thai needs extra room
# above for stacked vowel + tone mark (e.g. ที่) and below for ุ/ู (ผู้).
_TH_ABOVE, _TH_BELOW = 1.0, 0.42
_EN_ABOVE, _EN_BELOW = 0.78, 0.24


def _draw_tile(
    img: Image.Image,
    draw: ImageDraw.ImageDraw,
    tile: Tile,
    box: tuple[int, int, int, int],
    unit: float,
) -> None:
    x, y, w, h = box
    bg = _accessible_background(_parse_color(tile.color))
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=bg)

    pad_x = w * 0.07
    max_text_w = w - 2 * pad_x
    unit = min(unit, h)

    icon_px = round(unit * 0.3)
    icon = _icon_mask(tile.icon, icon_px) if tile.icon else None

    th_text = tile.label_th.strip()
    en_text = tile.label_en.strip()
    th_font = _fit_font(th_text, "Bold", round(unit * 0.15), max_text_w) if th_text else None
    en_font = _fit_font(en_text, "Medium", round(unit * 0.09), max_text_w) if en_text else None

    gap_icon = unit * 0.06
    blocks: list[tuple[str, float]] = []
    if icon is not None:
        blocks.append(("icon", float(icon_px)))
    if th_font is not None:
        blocks.append(("th", th_font.size * (_TH_ABOVE + _TH_BELOW)))
    if en_font is not None:
        blocks.append(("en", en_font.size * (_EN_ABOVE + _EN_BELOW)))
    if not blocks:
        return
    total = sum(hgt for _, hgt in blocks) + (gap_icon if icon is not None and len(blocks) > 1 else 0)

    cx = x + w / 2
    cur = y + (h - total) / 2
    for kind, hgt in blocks:
        if kind == "icon":
            assert icon is not None  # nosec B101 # type narrowing: blocks hold only fonts/icons that exist
            img.paste(_WHITE, (round(cx - icon_px / 2), round(cur)), icon)
            cur += hgt + gap_icon
        elif kind == "th":
            assert th_font is not None  # nosec B101 # type narrowing, as above
            draw.text(
                (cx, cur + th_font.size * _TH_ABOVE),
                th_text,
                font=th_font,
                fill=_WHITE,
                anchor="ms",
            )
            cur += hgt
        else:
            assert en_font is not None  # nosec B101 # type narrowing, as above
            draw.text(
                (cx, cur + en_font.size * _EN_ABOVE),
                en_text,
                font=en_font,
                fill=_WHITE,
                anchor="ms",
            )
            cur += hgt


def _draw_separators(
    draw: ImageDraw.ImageDraw, bounds: Sequence[tuple[int, int, int, int]], size: tuple[int, int]
) -> None:
    width, _ = size
    lw = max(2, round(width / 500))
    color = (255, 255, 255)
    for x, y, w, h in bounds:
        if x > 0:  # vertical line on the tile's left edge
            draw.rectangle((x - lw // 2, y, x - lw // 2 + lw - 1, y + h - 1), fill=color)
        if y > 0:  # horizontal line on the tile's top edge
            draw.rectangle((x, y - lw // 2, x + w - 1, y - lw // 2 + lw - 1), fill=color)


def _draw_title(
    img: Image.Image,
    draw: ImageDraw.ImageDraw,
    title: str,
    size: tuple[int, int],
    band_h: int,
    color: tuple[int, int, int],
) -> None:
    width, _ = size
    band = _mix(color, (0, 0, 0), 0.45)
    draw.rectangle((0, 0, width - 1, band_h - 1), fill=band)
    font = _fit_font(title, "SemiBold", round(band_h * 0.52), width * 0.92)
    above, below = _TH_ABOVE * font.size, _TH_BELOW * font.size
    baseline = (band_h - (above + below)) / 2 + above
    draw.text((width / 2, baseline), title, font=font, fill=_WHITE, anchor="ms")


def _encode_png(img: Image.Image) -> bytes:
    """Palette PNG (small, lossless for flat art); fall back to fewer colours."""
    for colors in (256, 128, 64):
        pal = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        pal.save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
        if len(data) <= MAX_BYTES:
            return data
    raise ValueError(f"rendered rich menu is {len(data)} bytes, over LINE's {MAX_BYTES}-byte limit")


def render_rich_menu(
    tiles: Sequence[Tile],
    *,
    size: tuple[int, int] = (2500, 1686),
    columns: int = 3,
    title: str | None = None,
) -> bytes:
    """PNG bytes; tiles laid out in a grid (rows = ceil(len/columns)), in order,
    left-to-right then top-to-bottom.

    Each tile's background is darkened if needed so white text meets WCAG AA.
    An optional *title* is drawn as a band across the top of the image (the
    first row's tappable areas still extend to the top edge).
    Raises ``ValueError`` for an invalid size/tile count or if the PNG would
    exceed LINE's 1 MB limit.
    """
    tiles = list(tiles)
    size = validate_size(size)
    bounds = tile_bounds(len(tiles), size=size, columns=columns)
    width, height = size

    img = Image.new("RGB", size, _WHITE)
    draw = ImageDraw.Draw(img)

    band_h = 0
    if title and title.strip():
        band_h = max(40, round(height * 0.075))

    # One scale for every tile (based on a full grid cell), so a wider last
    # row does not get bigger text than the rows above it.
    cell_w = width / min(columns, len(tiles))
    cell_h = (height - band_h) / math.ceil(len(tiles) / columns)
    unit = min(cell_h, cell_w / 1.25)

    for tile, (x, y, w, h) in zip(tiles, bounds, strict=True):
        top = max(y, band_h)
        _draw_tile(img, draw, tile, (x, top, w, y + h - top), unit)
        if top > y:  # the title band sits over this tile: fill behind it too
            draw.rectangle((x, y, x + w - 1, top - 1), fill=_accessible_background(_parse_color(tile.color)))

    _draw_separators(draw, bounds, size)
    if band_h:
        _draw_title(
            img,
            draw,
            title.strip(),
            size,
            band_h,
            _accessible_background(_parse_color(tiles[0].color)),
        )

    return _encode_png(img)
