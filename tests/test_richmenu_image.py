import io

import pytest
from PIL import Image, ImageChops

from bot.richmenu_image import (
    MAX_BYTES,
    Tile,
    contrast_ratio,
    render_rich_menu,
    sarabun_path,
    tile_bounds,
)

SAMPLE = [
    Tile("แบบประเมิน ITA", "ITA survey", "survey"),
    Tile("แจ้งเบาะแสทุจริต", "Report corruption", "complaint", "#8b2f2f"),
    Tile("ถาม-ตอบ No Gift", "Gift Q&A", "gift", "#2e6b4f"),
    Tile("ติดตามเรื่อง", "Track a case", "status", "#5b4a8b"),
    Tile("เมนู", "Menu", "menu", "#3d5a6c"),
    Tile("English", "ภาษาไทย", "language", "#7a5a1f"),
]


def _open(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img.convert("RGB")


def test_sarabun_path_exists():
    assert sarabun_path().is_file()
    assert sarabun_path("Bold").name == "Sarabun-Bold.ttf"
    with pytest.raises(FileNotFoundError):
        sarabun_path("NoSuchWeight")


@pytest.mark.parametrize("size", [(2500, 1686), (2500, 843)])
def test_six_tiles_png_exact_size_under_limit(size):
    data = render_rich_menu(SAMPLE, size=size)
    assert len(data) < MAX_BYTES
    assert len(data) < MAX_BYTES // 2  # comfortably under LINE's limit
    assert _open(data).size == size


def test_title_band_renders():
    data = render_rich_menu(SAMPLE, size=(2500, 843), title="ที่ว่าการอำเภอ")
    assert _open(data).size == (2500, 843)
    assert data != render_rich_menu(SAMPLE, size=(2500, 843))


@pytest.mark.parametrize("columns", [2, 3])
@pytest.mark.parametrize("n", range(1, 7))
@pytest.mark.parametrize("size", [(2500, 1686), (2500, 843), (1201, 811)])
def test_tile_bounds_cover_exactly(n, columns, size):
    bounds = tile_bounds(n, size=size, columns=columns)
    assert len(bounds) == n
    width, height = size
    # Area check + pairwise non-overlap => exact cover.
    assert sum(w * h for _, _, w, h in bounds) == width * height
    for x, y, w, h in bounds:
        assert w > 0 and h > 0
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    for i, (x1, y1, w1, h1) in enumerate(bounds):
        for x2, y2, w2, h2 in bounds[i + 1 :]:
            overlap = min(x1 + w1, x2 + w2) > max(x1, x2) and min(y1 + h1, y2 + h2) > max(y1, y2)
            assert not overlap
    # Order: left-to-right, then top-to-bottom.
    assert bounds == sorted(bounds, key=lambda b: (b[1], b[0]))
    assert bounds[0][:2] == (0, 0)
    assert bounds[-1][0] + bounds[-1][2] == width
    assert bounds[-1][1] + bounds[-1][3] == height


def test_tile_bounds_grid_values():
    assert tile_bounds(6) == [
        (0, 0, 833, 843),
        (833, 0, 833, 843),
        (1666, 0, 834, 843),
        (0, 843, 833, 843),
        (833, 843, 833, 843),
        (1666, 843, 834, 843),
    ]
    assert tile_bounds(4, size=(2500, 843), columns=2) == [
        (0, 0, 1250, 421),
        (1250, 0, 1250, 421),
        (0, 421, 1250, 422),
        (1250, 421, 1250, 422),
    ]


@pytest.mark.parametrize(
    "size",
    [(2501, 1686), (799, 500), (2500, 249), (2500, 1725), (1000, 1000), ("a", 1), (2500,)],
)
def test_invalid_size_raises(size):
    with pytest.raises(ValueError):
        render_rich_menu(SAMPLE[:2], size=size)
    with pytest.raises(ValueError):
        tile_bounds(2, size=size)


def test_other_invalid_arguments_raise():
    with pytest.raises(ValueError):
        render_rich_menu([])
    with pytest.raises(ValueError):
        render_rich_menu(SAMPLE, columns=0)
    with pytest.raises(ValueError):
        render_rich_menu([Tile("ก", "a", color="not-a-colour")])
    with pytest.raises(ValueError):
        tile_bounds(21)


def test_allowed_non_standard_size():
    data = render_rich_menu(SAMPLE[:5], size=(800, 250), columns=3)
    assert _open(data).size == (800, 250)


def _distinct_colours(img: Image.Image, box) -> int:
    return len(img.crop(box).getcolors(maxcolors=1 << 20))


def test_text_and_icons_are_drawn():
    tiles = [Tile("ผู้ร้องเรียนที่นี่", "Complainant", ""), Tile("แบบประเมิน ITA", "ITA survey", "survey")]
    blank = [Tile("", "", ""), Tile("", "", "")]
    size = (2500, 1686)
    img = _open(render_rich_menu(tiles, size=size, columns=2))
    empty = _open(render_rich_menu(blank, size=size, columns=2))
    for x, y, w, h in tile_bounds(2, size=size, columns=2):
        inner = (x + 10, y + 10, x + w - 10, y + h - 10)
        assert _distinct_colours(empty, inner) == 1  # flat tile without labels
        assert _distinct_colours(img, inner) > 1
        changed = ImageChops.difference(img.crop(inner), empty.crop(inner)).convert("L")
        diff = sum(changed.point(lambda v: 255 if v else 0).histogram()[1:])
        assert diff > 2000  # a real amount of ink, not a stray pixel
    # Icon alone (no labels) also draws something; unknown icon draws nothing.
    icon_only = _open(render_rich_menu([Tile("", "", "gift")], size=(2500, 843)))
    unknown = _open(render_rich_menu([Tile("", "", "no-such-icon")], size=(2500, 843)))
    assert _distinct_colours(icon_only, (10, 10, 2490, 833)) > 1
    assert _distinct_colours(unknown, (10, 10, 2490, 833)) == 1


def test_text_is_white_on_accessible_background():
    light = _open(render_rich_menu([Tile("สวัสดี", "Hello", color="#ffdd55")], size=(2500, 843)))
    bg = light.getpixel((20, 20))
    assert contrast_ratio((255, 255, 255), bg) >= 4.5
    default = _open(render_rich_menu([Tile("สวัสดี", "Hello")], size=(2500, 843)))
    assert default.getpixel((20, 20)) == (0x1F, 0x5F, 0x8B)  # already AA: untouched
