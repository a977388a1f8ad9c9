"""Messages that are not questions: greetings, thanks (and what they are for), praise, acknowledgements,
laughter, emoji.

The Q&A would otherwise match "ขอบคุณค่ะ" against the entry whose answer says "thank" (gift.citizen)
or answer "not sure" and offer to ask an officer. ``kind`` recognises a whole message made only of
such words (any order, with particles, punctuation and emoji); a question that merely starts with
"สวัสดีครับ" is still a question.
"""

from __future__ import annotations

import re
import unicodedata

from handlers.text import normalize

# Whole messages made only of these words (any order, any particles, punctuation or emoji).
_SMALL_TALK = {
    "hello": ("สวัสดี", "หวัดดี", "ดีครับ", "ดีค่ะ", "ดีจ้า", "hello", "hi", "hey", "good morning",
              "good afternoon", "good evening", "how are you", "แอดมิน", "admin", "บอท", "น้องบอท", "bot"),
    "thanks": ("ขอบคุณ", "ขอบคุน", "ขอบใจ", "ขอบคุณมาก", "มากๆ", "มาก", "เลย", "นะ", "thank you", "thanks",
               "thx", "ty", "tks", "tq", "thank u", "thanks u", "much", "so", "very", "a lot", "alot", "anyway",
               "ขอบคุณเจ้าหน้าที่", "ขอบคุณแอดมิน", "ทุกท่าน", "ทุกคน",
               # goodbyes are answered like thanks too ("ask me anything else")
               "บาย", "บ๊ายบาย", "ลาก่อน", "ไม่มีแล้ว", "ไม่มีอะไรแล้ว", "แค่นี้", "bye", "goodbye", "bye bye",
               "that's all", "thats all", "nothing else", "see you",
               # what the thanks are for: phrases, never a bare verb ("ช่วยด้วย" is a cry for help)
               "ที่ตอบ", "ที่ช่วย", "ที่ช่วยตอบ", "ที่ช่วยอธิบาย", "ที่ช่วยแนะนำ", "ที่ให้ข้อมูล", "ที่แนะนำ",
               "ที่อธิบาย", "สำหรับข้อมูล", "สำหรับคำตอบ", "สำหรับคำแนะนำ", "for the answer", "for the answers",
               "for answering",
               "for the info", "for the information", "for the help", "for your help", "for helping",
               "for the reply", "for the advice",
               # praise is answered like thanks ("ยินดีค่ะ")
               "เก่ง", "สุดยอด", "เจ๋ง", "ชัดเจน", "เข้าใจง่าย", "มีประโยชน์", "ช่วยได้มาก",
               "ช่วยได้เยอะ", "ตอบไว", "ตอบเร็ว", "great", "awesome", "nice", "helpful", "useful", "perfect",
               "good job", "well done"),
    "ack": ("โอเค", "ok", "okay", "ได้", "ครับ", "ค่ะ", "คะ", "จ้า", "รับทราบ", "เข้าใจแล้ว", "ทราบแล้ว",
            "got it", "fine", "good", "ดี", "เยี่ยม"),
}
_PARTICLE_WORDS = ("ครับผม", "ครับ", "คับ", "ค้าบ", "คร้าบ", "ค่ะ", "คะ", "ค่า", "จ้า", "จ้ะ", "นะ", "น้า", "ด้วย", "na")


def _alternatives(words) -> str:
    return "|".join(sorted({re.escape(w.replace(" ", "")) for w in words}, key=len, reverse=True))


_SMALL_TALK_ALL = re.compile("(?:{})+".format(_alternatives(
    [w for words in _SMALL_TALK.values() for w in words] + list(_PARTICLE_WORDS))))
_SMALL_TALK_KIND = {kind: re.compile(_alternatives(_SMALL_TALK[kind])) for kind in ("thanks", "hello")}
_LAUGH = re.compile(r"(?:5{3,}\+*|(?:ha){2,}|(?:ฮ่?า){2,}|ฮ่?าๆ+|(?:อิ){2,}|(?:คิ){2,}|lol)")


def kind(text: str) -> str | None:
    """"thanks", "hello" or "ack" when the whole message is only such words; None for anything else."""
    t = "".join(ch for ch in normalize(text) if ch.isalnum() or "\u0e00" <= ch <= "\u0e7f")
    if not t:  # emoji alone are a reaction; "???" or nothing at all is not
        return "ack" if any(unicodedata.category(ch) == "So" for ch in text) else None
    if _LAUGH.fullmatch(t):
        return "ack"
    if not _SMALL_TALK_ALL.fullmatch(t):
        return None
    return next((k for k, words in _SMALL_TALK_KIND.items() if words.search(t)), "ack")


