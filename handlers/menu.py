"""The main menu and the rich menus: what a person can do, by tapping or by typing.

Features add their entries here as they land (surveys, complaints, Q&A). Every rich-menu
button sends a postback the dispatcher understands, and every postback has a typed
equivalent, so nothing is reachable only by tapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Context, text_message


@dataclass(frozen=True)
class MenuItem:
    action: str  # postback action=...
    label_key: str  # catalog key of the (≤20 character) label
    icon: str = ""
    color: str = "#1f5f8b"


# The main menu, in order. Later issues insert their items.
MAIN_MENU: list[MenuItem] = [
    MenuItem("survey", "menu_survey", "survey", "#1f5f8b"),
    MenuItem("complaint", "menu_complaint", "complaint", "#8b1f1f"),
    MenuItem("c_status", "menu_follow_case", "report", "#8b1f1f"),
    MenuItem("qa_intro", "menu_qa", "info", "#2e6b4f"),
    MenuItem("gift_helper", "menu_gift_helper", "info", "#2e6b4f"),
    MenuItem("about", "menu_about", "info", "#1f5f8b"),
    MenuItem("privacy", "menu_privacy", "privacy", "#2e6b4f"),
    MenuItem("lang", "menu_language", "language", "#6b4a2e"),
]

# The gift register: on the staff rich menu, and in the main menu of enrolled staff (after the gift helper).
STAFF_ITEM = MenuItem("gift_report", "menu_gift_report", "report", "#2e6b4f")

# The rich menus (public and staff), as tiles; deployed with `itabot richmenu deploy`.
RICH_MENUS: dict[str, list[MenuItem]] = {
    "public": [
        MenuItem("survey", "menu_survey", "survey", "#1f5f8b"),
        MenuItem("complaint", "menu_complaint", "complaint", "#8b1f1f"),
        MenuItem("menu", "menu_menu", "menu", "#2b4c7e"),
        MenuItem("about", "menu_about", "info", "#2e6b4f"),
        MenuItem("privacy", "menu_privacy", "privacy", "#5a3e7a"),
        MenuItem("lang", "menu_language", "language", "#6b4a2e"),
    ],
    "staff": [  # "about" is in the main menu; staff get the gift register's button in its place
        MenuItem("survey", "menu_survey", "survey", "#7a4b1f"),
        MenuItem("complaint", "menu_complaint", "complaint", "#8b1f1f"),
        MenuItem("menu", "menu_menu", "menu", "#2b4c7e"),
        STAFF_ITEM,
        MenuItem("privacy", "menu_privacy", "privacy", "#5a3e7a"),
        MenuItem("lang", "menu_language", "language", "#6b4a2e"),
    ],
}


def show_menu(ctx: Context) -> None:
    items = list(MAIN_MENU)
    if ctx.user is not None and ctx.user.richmenu == "staff":
        items.insert(next(i for i, m in enumerate(items) if m.action == "gift_helper") + 1, STAFF_ITEM)
    quick = [ctx.quick_postback(ctx.t(item.label_key), f"action={item.action}") for item in items]
    ctx.reply(text_message(ctx.t("menu_title"), quick))


def about(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("about_ita"), [ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))


def privacy(ctx: Context) -> None:
    ctx.reply(text_message(ctx.t("privacy"), [ctx.quick_postback(ctx.t("menu_menu"), "action=menu")]))
