"""Rich menus: built from ``handlers.menu.RICH_MENUS``, drawn by our code, deployed to LINE.

``itabot richmenu deploy`` creates the public and the staff menu on the office's channel,
uploads their images, makes the public one the default and remembers both ids so followers
can be linked to the menu that fits them.
"""

from __future__ import annotations

import logging
from functools import cache

from handlers.i18n import t
from handlers.menu import RICH_MENUS
from models import Office

log = logging.getLogger("itabot.richmenu")

SIZE = (2500, 843)
COLUMNS = 3


def _tiles(kind: str):
    from bot.richmenu_image import Tile

    return [Tile(t(i.label_key, "th"), t(i.label_key, "en"), i.icon, i.color) for i in RICH_MENUS[kind]]


@cache
def render_menu_image(kind: str) -> bytes:
    from bot.richmenu_image import render_rich_menu

    return render_rich_menu(_tiles(kind), size=SIZE, columns=COLUMNS)


def rich_menu_definition(kind: str) -> dict:
    """The RichMenuRequest body; every area is a postback the dispatcher handles."""
    from bot.richmenu_image import tile_bounds

    items = RICH_MENUS[kind]
    bounds = tile_bounds(len(items), size=SIZE, columns=COLUMNS)
    areas = []
    for item, (x, y, w, h) in zip(items, bounds, strict=True):
        label = t(item.label_key, "th")
        areas.append(
            {
                "bounds": {"x": x, "y": y, "width": w, "height": h},
                "action": {
                    "type": "postback",
                    "label": label[:20],
                    "data": f"action={item.action}&src=richmenu",
                    "displayText": label,
                },
            }
        )
    return {
        "size": {"width": SIZE[0], "height": SIZE[1]},
        "selected": kind == "public",
        "name": f"itabot-{kind}",
        "chatBarText": "เมนู Menu",
        "areas": areas,
    }


def deploy(services, office_id: int) -> dict[str, str]:
    """Create both menus on LINE, set the public one as default, store their ids."""
    gw = services.gateway(office_id)
    ids: dict[str, str] = {}
    for kind in ("public", "staff"):
        rid = gw.create_rich_menu(rich_menu_definition(kind))
        gw.upload_rich_menu_image(rid, render_menu_image(kind))
        ids[kind] = rid
    gw.set_default_rich_menu(ids["public"])
    with services.db.session() as s:
        office = s.get(Office, office_id)
        old = (office.richmenu_public_id, office.richmenu_staff_id)
        office.richmenu_public_id = ids["public"]
        office.richmenu_staff_id = ids["staff"]
    for rid in old:
        if rid and rid not in ids.values():
            try:
                gw.delete_rich_menu(rid)
            except Exception:
                log.warning("old rich menu could not be deleted")
    return ids
