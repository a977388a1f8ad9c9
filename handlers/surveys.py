"""Surveys in LINE: the right survey for the person (IIT for enrolled staff, EIT for everyone
else), "ตอบแล้ว", and staff enrolment with an invite code."""

from __future__ import annotations

from linebot.v3.messaging import (
    FlexBox,
    FlexBubble,
    FlexButton,
    FlexImage,
    FlexMessage,
    FlexText,
    PostbackAction,
    URIAction,
)

from bot.thaidate import be_date
from handlers.context import ALT_TEXT_LIMIT, Context, fit_utf16
from handlers.conversation import Engine, Keyword, Matcher, Postback, postback_data
from handlers.text import without_politeness
from models import SurveyAnswered, SurveyAsked, utcnow
from surveys import campaigns


def _invite_code_text(text: str | None) -> str | None:
    """The message as a staff invite code is read from it, when it is (only) one — also with the politeness
    people add around it ("รหัส KX7P-R2MD ค่ะ", "KX7P-R2MD ครับ 🙏"); else None."""
    if text is None:
        return None
    if campaigns.looks_like_code(text):
        return text
    bare = without_politeness(text)
    return bare if campaigns.looks_like_code(bare) else None


class InviteCode(Matcher):
    """A message that is (only) a staff invite code, e.g. "KX7P-R2MD" or "รหัส KX7P R2MD ค่ะ"."""

    def __call__(self, ctx: Context) -> bool:
        return _invite_code_text(ctx.text) is not None


def survey_card(ctx: Context, campaign, source: str = "line-chat", in_group: bool = False) -> FlexMessage:
    """The survey card. ``in_group`` (an announcement to a LINE group): no "ตอบแล้ว" button — the bot does
    not act on a tap in a group, and the group would see who said they answered."""
    link = campaigns.link_for(ctx.session, campaign, source)
    base = ctx.public_base_url
    deadline = campaigns.shown_deadline(campaign)
    title = ctx.t(f"survey_title_{campaign.kind}")
    bubble = FlexBubble(
        hero=FlexImage(url=f"{base}/qr/{link.token}.png", size="full", aspectRatio="1:1", aspectMode="fit",
                       action=URIAction(label="QR", uri=f"{base}/s/{link.token}")),
        body=FlexBox(layout="vertical", spacing="md", contents=[
            FlexText(text=title, weight="bold", size="lg", wrap=True),
            FlexText(text=ctx.t(f"survey_why_{campaign.kind}"), size="sm", wrap=True, color="#555555"),
            FlexText(text=ctx.t("survey_deadline", date=be_date(deadline, ctx.lang)), size="sm", weight="bold",
                     color="#1f5f8b", wrap=True),
            FlexText(text=ctx.t(f"survey_qr_note_{campaign.kind}"), size="xs", wrap=True, color="#888888"),
            *([FlexText(text=ctx.t("reminder_group_note"), size="xs", wrap=True, color="#888888")] if in_group
              else []),
        ]),
        footer=FlexBox(layout="vertical", spacing="sm", contents=[
            FlexButton(style="primary", action=URIAction(label=ctx.t("survey_open_button")[:20],
                                                         uri=f"{base}/s/{link.token}")),
            *([] if in_group else [FlexButton(style="secondary", action=PostbackAction(
                label=ctx.t("survey_done_button")[:20], data=f"action=survey_done&c={campaign.id}",
                displayText=ctx.t("survey_done_button")))]),
        ]),
    )
    alt = f"{title} — {ctx.t('survey_deadline', date=be_date(deadline, ctx.lang))}: {base}/s/{link.token}"
    return FlexMessage(altText=fit_utf16(alt, ALT_TEXT_LIMIT), contents=bubble)


def show_survey(ctx: Context) -> None:
    if ctx.user is None:
        return
    source = "rich-menu" if postback_data(ctx).get("src") == "richmenu" else "line-chat"
    member = campaigns.staff_member(ctx.session, ctx.office_id, ctx.user.line_user_id)
    kind = "IIT" if member is not None else "EIT"  # staff are never offered their own office's EIT
    # Asked for the other survey by name: say why this one comes instead (not a silent swap).
    if kind == "EIT" and "iit" in ctx.typed:
        ctx.say("iit_is_for_staff")
    elif kind == "IIT" and "eit" in ctx.typed:
        ctx.say("eit_is_not_for_staff")
    if member is not None and not campaigns.served_a_year(member.started_on):
        ctx.say("iit_not_eligible", date=be_date(campaigns.eligible_on(member.started_on), ctx.lang))
        return
    current = campaigns.current_campaign(ctx.session, ctx.office_id, kind)
    if current.state == "open":
        ctx.reply(survey_card(ctx, current.campaign, source))
        if kind == "EIT":  # an office may narrow EIT reminders to those who asked, most recent first
            asked = ctx.session.get(SurveyAsked, (current.campaign.id, ctx.user.line_user_id))
            if asked is None:
                ctx.session.add(SurveyAsked(campaign_id=current.campaign.id, line_user_id=ctx.user.line_user_id))
            else:
                asked.asked_at = utcnow()
    elif current.state == "upcoming":
        ctx.say("survey_upcoming", date=be_date(current.campaign.opens_on, ctx.lang))
    elif current.state == "closed":
        ctx.say("survey_closed", date=be_date(current.campaign.closes_on, ctx.lang))
    else:
        ctx.say("survey_none")


def survey_done(ctx: Context) -> None:
    """"ตอบแล้ว": the card's or a reminder's button (it names the campaign), or typed (the person's survey open
    now: the IIT for enrolled staff, else the EIT). It only stops that campaign's reminders to this person."""
    if ctx.user is None:
        return
    from models import SurveyCampaign

    if ctx.type == "postback":
        cid = postback_data(ctx).get("c", "")
        campaign = ctx.session.get(SurveyCampaign, int(cid)) if cid.isdecimal() else None
        if campaign is None or campaign.office_id != ctx.office_id:
            ctx.say("postback_unknown")
            return
    else:
        member = campaigns.staff_member(ctx.session, ctx.office_id, ctx.user.line_user_id)
        current = campaigns.current_campaign(ctx.session, ctx.office_id, "IIT" if member is not None else "EIT")
        if current.state != "open":
            ctx.say("survey_none")
            return
        campaign = current.campaign
    if ctx.session.get(SurveyAnswered, (campaign.id, ctx.user.line_user_id)) is None:
        ctx.session.add(SurveyAnswered(campaign_id=campaign.id, line_user_id=ctx.user.line_user_id))
    ctx.say("survey_thanks")


def enrol(ctx: Context) -> None:
    code = _invite_code_text(ctx.text)
    if ctx.user is None or code is None:
        return
    outcome = campaigns.redeem_code(ctx.session, ctx.office_id, ctx.user.line_user_id, code)
    if outcome.result == "enrolled":
        member = outcome.member
        ctx.user.richmenu = "staff"
        ctx.say("staff_welcome", name=member.name, division=member.division)
        _link_staff_menu(ctx)
    elif outcome.result == "already":
        ctx.say("staff_already")
    elif outcome.result == "expired":
        ctx.say("code_expired")
    elif outcome.result == "locked":
        ctx.say("code_locked")
    else:
        ctx.say("code_wrong")


def _link_staff_menu(ctx: Context) -> None:
    from models import Office

    office = ctx.session.get(Office, ctx.office_id)
    menu_id, uid = office.richmenu_staff_id, ctx.user_id
    if menu_id and uid:
        ctx.after_commit(lambda line: line.link_rich_menu(uid, menu_id))


class Said(Keyword):
    """Like :class:`Keyword`, a full stop or an exclamation mark at the end ignored ("I have answered.")."""

    def __call__(self, ctx: Context) -> bool:
        return bool(ctx.typed) and ctx.typed[0].rstrip(" .!~") in self.words


# Typed instead of tapping the "ตอบแล้ว" button (reminders ask for it): the same as the button.
ANSWERED_WORDS = Said("ตอบแล้ว", "ตอบแบบประเมินแล้ว", "ตอบแบบสอบถามแล้ว", "ตอบแบบวัดแล้ว", "ทำแล้ว",
                         "ทำแบบประเมินแล้ว", "ทำแบบสอบถามแล้ว", "ตอบไปแล้ว", "ทำไปแล้ว", "ฉันตอบแล้ว",
                         "i have answered", "i answered", "i've answered", "answered", "already answered",
                         "i have done the survey", "i did the survey", "done the survey", "survey done")

SURVEY_WORDS = Keyword("แบบสอบถาม", "แบบประเมิน", "eit", "iit", "survey", "ita survey", "แบบประเมิน ita",
                       "ทำแบบประเมิน", "ตอบแบบประเมิน")


def stop_reminders(ctx: Context) -> None:
    if ctx.user is not None:
        ctx.user.reminders_off = True
        ctx.say("reminders_stopped")


def resume_reminders(ctx: Context) -> None:
    if ctx.user is not None:
        ctx.user.reminders_off = False
        ctx.say("reminders_resumed")


def register(engine: Engine) -> None:
    engine.routes[:0] = [
        (Keyword("หยุดเตือน", "หยุดแจ้งเตือน", "ไม่ต้องเตือน", "stop reminders", "no reminders"), stop_reminders),
        (Postback("reminders_off"), stop_reminders),
        (Keyword("เตือนอีกครั้ง", "รับการเตือน", "resume reminders"), resume_reminders),
        (SURVEY_WORDS, show_survey),
        (Postback("survey"), show_survey),
        (Postback("survey_done"), survey_done),
        (ANSWERED_WORDS, survey_done),
        (InviteCode(), enrol),
    ]
