"""Matching questions to knowledge-base entries the way people type them on LINE.

A small knowledge base is written here so the behaviour is pinned down independently of the real
content; the last tests run against the real knowledge base (integrity/kb) when it is there.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from integrity.matcher import CANDIDATES, Matcher, Result


def entry(id: str, title_th: str, title_en: str, th: list[str], en: list[str], answer_th: str = "",
          answer_en: str = "") -> SimpleNamespace:
    return SimpleNamespace(id=id, title_th=title_th, title_en=title_en, examples={"th": th, "en": en},
                           answer_th=answer_th, answer_en=answer_en)


FIXTURE = [
    entry("gift.limit", "รับของขวัญได้ไม่เกินเท่าไร", "How much is a gift allowed to be worth?",
          ["รับของขวัญได้ไม่เกินกี่บาท", "ของขวัญราคาเท่าไรถึงรับได้", "มูลค่าของขวัญที่รับได้ 3000 บาทใช่ไหม"],
          ["What is the limit on the value of a gift?", "Can I accept a gift worth 3,000 baht?"],
          "บุคลากร กทม. รับของขวัญจากการปฏิบัติหน้าที่ไม่ได้เลย แม้ราคาเพียงเล็กน้อย\n"
          "ตัวเลข 3,000 บาทมาจากกฎหมาย ป.ป.ช. ซึ่งใช้กับเจ้าหน้าที่รัฐทั่วไป",
          "BMA staff may accept no gift from their work, however small.\n"
          "The 3,000 baht figure comes from the NACC law for other state officials."),
    entry("complaint.anonymous", "แจ้งเบาะแสโดยไม่เปิดเผยชื่อได้ไหม", "Can I report without giving my name?",
          ["ร้องเรียนแบบไม่ระบุตัวตนได้ไหม", "ไม่อยากบอกชื่อตอนแจ้งทุจริต", "ผู้แจ้งต้องให้ชื่อจริงหรือเปล่า"],
          ["Do I have to give my name to report corruption?", "Can I make an anonymous complaint?"],
          "เลือก \"ไม่ระบุตัวตน\" ตอนแจ้งเบาะแส ระบบจะไม่เก็บชื่อหรือบัญชี LINE ของคุณไว้กับเรื่อง\n"
          "ใช้รหัสรับเรื่องเพื่อติดตามสถานะได้โดยไม่ต้องบอกชื่อ",
          "Choose \"anonymous\" when you report: your name and LINE account are not kept with the case.\n"
          "Follow it with the receipt code, without giving your name."),
    entry("survey.eit", "แบบประเมิน EIT คืออะไร", "What is the EIT survey?",
          ["ทำแบบสอบถาม EIT ได้ที่ไหน", "ขอลิงก์แบบวัดผู้รับบริการ", "ประชาชนตอบแบบประเมินหน่วยงานยังไง"],
          ["Where do I answer the EIT?", "Send me the link to the public survey"],
          "EIT คือแบบวัดการรับรู้ของผู้มีส่วนได้ส่วนเสียภายนอก สำหรับประชาชนที่มาใช้บริการของสำนักงานเขต\n"
          "ตอบผ่านลิงก์หรือ QR Code ของ ป.ป.ช. ใช้เวลาไม่กี่นาที",
          "The EIT is the NACC's survey of people who used the district office's services.\n"
          "Answer it through the link or QR code; it takes a few minutes."),
    entry("bribe.fee", "ค่าธรรมเนียมกับสินบนต่างกันอย่างไร", "Is this fee legitimate or a bribe?",
          ["เจ้าหน้าที่เรียกเงินเพิ่มนอกจากค่าธรรมเนียม", "จ่ายค่าธรรมเนียมต้องได้ใบเสร็จไหม",
           "ค่าน้ำร้อนน้ำชาถือเป็นสินบนหรือไม่"],
          ["The officer asked for extra money to speed things up", "Do I get a receipt for the fee?"],
          "จ่ายเฉพาะค่าธรรมเนียมตามกฎหมาย และขอใบเสร็จรับเงินทุกครั้ง\n"
          "เงินที่เรียกเพิ่มนอกจากนี้ เช่น ค่าเร่งงาน คือสินบน แจ้งเบาะแสได้",
          "Pay only the legal fee and always ask for a receipt.\n"
          "Anything more, such as money to speed things up, is a bribe: report it."),
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(FIXTURE)


def finds(matcher: Matcher, question: str) -> str:
    """The entry the matcher puts first — clearly ahead of the next one (half its score at most)."""
    (first, s1), (_, s2) = matcher.match(question).candidates[:2]
    assert s1 > 0 and s2 <= s1 / 2, (question, matcher.match(question))
    return first


def test_thai_without_spaces_finds_the_entry(matcher):
    assert finds(matcher, "ร้องเรียนเรื่องทุจริตโดยไม่บอกชื่อได้ไหม") == "complaint.anonymous"
    assert finds(matcher, "เจ้าหน้าที่ขอเงินเพิ่มจากค่าธรรมเนียม") == "bribe.fee"


def test_spaces_between_thai_words_do_not_matter(matcher):
    spaced, unspaced = matcher.match("ของขวัญ ราคา เท่าไร ถึง รับ ได้"), matcher.match("ของขวัญราคาเท่าไรถึงรับได้")
    assert spaced == unspaced and spaced.id == "gift.limit"


def test_thai_and_arabic_digits_are_the_same(matcher):
    thai, arabic = matcher.match("ของขวัญ ๓,๐๐๐ บาท รับได้ไหม"), matcher.match("ของขวัญ 3000 บาท รับได้ไหม")
    assert thai == arabic
    assert finds(matcher, "ของขวัญ ๓,๐๐๐ บาท รับได้ไหม") == "gift.limit"


@pytest.mark.parametrize("particle", ["ครับ", "ค่ะ", "คะ", "จ้า", "นะคะ", "ครับผม", " ครับ!!"])
def test_particles_do_not_matter(matcher, particle):
    plain = matcher.match("ขอลิงก์แบบประเมิน EIT")
    assert finds(matcher, "ขอลิงก์แบบประเมิน EIT") == "survey.eit"
    assert matcher.match("ขอลิงก์แบบประเมิน EIT" + particle) == plain
    # ... nor in the middle of a message, before the next sentence
    assert matcher.match(f"ขอลิงก์แบบประเมิน{particle} EIT") == plain


def test_an_example_question_typed_differently_is_answered(matcher):
    # spaces, Thai digits, a particle, a misspelling: still that example, so the answer is given
    assert matcher.match("มูลค่า ของขวัญ ที่รับได้ ๓,๐๐๐ บาท ใช่ไหมคะ").id == "gift.limit"
    assert matcher.match("ขอลิ้งค์แบบวัด ผู้รับบริการ ค่ะ").id == "survey.eit"
    assert matcher.match("  ร้องเรียนแบบไม่ระบุตัวตนได้มั้ยครับ ").id == "complaint.anonymous"
    assert matcher.match("do i get a receipt for the fee").id == "bribe.fee"


def test_english_question_finds_the_thai_and_english_entry(matcher):
    assert finds(matcher, "Can I complain without telling my name?") == "complaint.anonymous"
    assert finds(matcher, "how much can a gift be worth") == "gift.limit"
    # English words meet the Thai examples through the synonym table
    assert finds(matcher, "bribe or tea money?") == "bribe.fee"


def test_mixed_thai_and_english(matcher):
    assert finds(matcher, "ขอ link แบบสอบถาม eit หน่อย") == "survey.eit"
    assert finds(matcher, "รับ gift ได้ไม่เกินกี่บาท") == "gift.limit"


@pytest.mark.parametrize(("typed", "expected"), [
    ("รับของขวันได้ไม่เกินกี่บาท", "gift.limit"),  # ญ typed as น
    ("ร้องเรียนแบบไม่ระบุตัวตนได้มั้ย", "complaint.anonymous"),  # spoken มั้ย
    ("ค่าธรรมเนียมกับสินบลต่างกันยังไง", "bribe.fee"),  # final น typed as ล, spoken ยังไง
    ("ค่านํ้าร้อนนํ้าชาเป็นสินบนไหม", "bribe.fee"),  # ํ + tone + า typed for ้ + ำ
    ("เเบบประเมิน eit คืออะไร", "survey.eit"),  # แ typed as เ + เ
    ("ไม่อยากบอกชื่อตอนแจ้งทุจริด", "complaint.anonymous"),  # ต typed as ด
    ("ร้องเรียนเเบบไม่ระบุตัวตนได้มั๊ยคับ", "complaint.anonymous"),  # an example, three slips: answered
])
def test_common_misspellings_still_match(matcher, typed, expected):
    assert finds(matcher, typed) == expected


def test_a_misspelled_example_is_still_answered(matcher):
    assert matcher.match("ร้องเรียนเเบบไม่ระบุตัวตนได้มั๊ยคับ").id == "complaint.anonymous"
    assert matcher.match("ของขวันราคาเท่าไหร่ถึงรับได้").id == "gift.limit"


@pytest.mark.parametrize("question", ["พรุ่งนี้ฝนจะตกไหม", "ร้านก๋วยเตี๋ยวแถวนี้อร่อยไหม",
                                      "What time does the football match start?", "สวัสดีค่ะ ขอถามหน่อย"])
def test_unrelated_question_is_not_sure_and_offers_three_choices(matcher, question):
    result = matcher.match(question)
    assert result.id is None
    assert len(result.candidates) == CANDIDATES
    ids = [i for i, _ in result.candidates]
    assert len(set(ids)) == CANDIDATES and set(ids) <= {e.id for e in FIXTURE}


@pytest.mark.parametrize("message,kind", [("สวัสดี", "hello"), ("ขอบคุณมากๆ ครับ", "thanks"), ("โอเคค่ะ", "ack"),
                                          ("🙏🙏", "ack"), ("5555", "ack"), ("ฮ่าๆๆ", "ack"),
                                          ("Thanks a lot!", "thanks")])
def test_greetings_and_thanks_are_small_talk_not_questions(matcher, message, kind):
    result = matcher.match(message)
    assert result.id is None and result.small_talk == kind


@pytest.mark.parametrize("message", ["ขอบคุณสำหรับคำตอบนะคะ น้องบอทเก่งมาก", "ขอบคุณที่ช่วยอธิบายครับ ชัดเจนมาก",
                                     "thanks for the info, very helpful!", "สุดยอดเลยค่ะ ตอบไวมาก", "ขอบคุณค้าบ",
                                     "thank u", "ขอบคุณเจ้าหน้าที่ทุกท่านค่ะ", "บ๊ายบายค่ะ", "ไม่มีแล้วครับ ขอบคุณ",
                                     "ok that's all, bye"])
def test_thanks_for_an_answer_and_praise_are_thanks_not_a_gift_question(matcher, message):
    # "ขอบคุณที่ตอบ" once reached the matcher and was answered with gift.citizen (thanking an officer)
    result = matcher.match(message)
    assert result.id is None and result.small_talk == "thanks"


@pytest.mark.parametrize("message", ["ช่วยด้วยค่ะ", "เจ้าหน้าที่", "ไม่มีสิทธิ์รับของขวัญเหรอ",
                                     "ขอบคุณค่ะ แล้วถ้าของขวัญเกินสามพันต้องทำยังไง", "บอทตอบไม่ชัดเจน",
                                     "thanks, but can I keep a gift from my aunt?"])
def test_thanks_or_praise_words_around_a_question_or_a_plea_are_not_small_talk(matcher, message):
    assert matcher.match(message).small_talk is None


def test_candidates_are_distinct_best_first_and_start_with_the_answer(matcher):
    result = matcher.match("ของขวัญราคาเท่าไหร่ถึงรับได้ครับ")
    assert result.id == "gift.limit"
    ids = [i for i, _ in result.candidates]
    scores = [s for _, s in result.candidates]
    assert ids[0] == result.id and result.score == scores[0]
    assert len(ids) == len(set(ids)) == CANDIDATES
    assert scores == sorted(scores, reverse=True)


def test_empty_or_punctuation_only_question_is_not_sure(matcher):
    for q in ("", "   ", "???", "\u200b"):
        result = matcher.match(q)
        assert result == Result(None, 0.0, result.candidates) and len(result.candidates) == CANDIDATES


def test_an_off_topic_neighbour_vetoes_a_confident_answer_only_when_it_is_closer_than_the_entry():
    # The off-topic veto compares the closest off-topic example with the best entry's profile score, whatever
    # the classifier's probability: a veto that gives way to a confident classifier was measured with
    # bench/qa/tune.py --veto and not adopted (the classifier is as sure about the off-topic mirror images).
    neighbours = ["What is a nice birthday present to buy for my mum?", "How much is a bank transfer fee?"]
    # The fixture's few documents cover less of a question than the shipped knowledge base does: the coverage
    # limit is left out, so that the veto alone decides here.
    m = Matcher(FIXTURE, offtopic=neighbours, min_coverage=0.0)
    # in scope, sharing words with an off-topic example (gift, baht, fee), closer to its entry: answered
    assert m.match("Can I accept a gift worth 2,000 baht from a contractor?").id == "gift.limit"
    assert m.match("รับของขวัญราคา 2000 บาทจากผู้รับเหมาได้ไหม").id == "gift.limit"
    # off topic, and the classifier is confident (bribe.fee, p ≈ 0.8): answered without the neighbour, not with it
    question = "What is the fee for a bank transfer?"
    unguarded = Matcher(FIXTURE, offtopic=[], min_coverage=0.0).match(question)
    assert unguarded.id == "bribe.fee" and unguarded.score >= 0.7
    guarded = m.match(question)
    assert guarded.id is None and guarded.candidates[0][0] == "bribe.fee" and guarded.score >= 0.7


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Matcher([FIXTURE[0], FIXTURE[0]])


# --- the real knowledge base ----------------------------------------------------------------------

KB_DIR = Path(__file__).resolve().parent.parent / "integrity" / "kb"


@pytest.fixture(scope="module")
def kb():
    if not any(KB_DIR.glob("*.toml")):
        pytest.skip("integrity/kb has no entries yet")
    from integrity.kb import load_entries

    return load_entries()


@pytest.fixture(scope="module")
def kb_matcher(kb) -> Matcher:
    return Matcher(kb)


def test_each_entry_is_found_by_its_own_titles(kb):
    m = Matcher(kb)
    for e in kb:
        for title in (e.title_th, e.title_en):
            assert m.match(title).id == e.id, (e.id, title, m.match(title))
        # as typed on a phone: no spaces, a particle
        typed = "".join(e.title_th.split()) + "ครับ"
        assert m.match(typed).id == e.id, (e.id, typed, m.match(typed))



@pytest.mark.parametrize("question,expected", [
    ("รับของขวัญวันเกิดจากแม่ได้ไหม", "gift.relatives"),
    ("Can I take a gift from my husband's family?", "gift.relatives"),
    ("Can my aunt give me a present for my wedding?", "gift.relatives"),
    ("Is a 5,000 baht gift allowed?", "gift.limit"),
    ("Where do I answer the EIT survey?", "survey.eit"),
])
def test_clear_questions_near_off_topic_examples_are_answered(kb_matcher, question, expected):
    # each shares words with off-topic examples (presents for a mother, family matters, satisfaction surveys)
    assert kb_matcher.match(question).id == expected


@pytest.mark.parametrize("message", [
    "What should I buy my mother for her birthday?", "Where can I buy a nice gift basket?",
    "Do you sell gift vouchers?", "บัตรประชาชนหายต้องทำยังไง", "How much does it cost to send money to another bank?",
    "Can you recommend a restaurant near the district office?", "ซื้อของขวัญวันแม่อะไรดี", "วันนี้อากาศดีจัง",
])
def test_off_topic_messages_are_not_sure_even_when_the_classifier_is_confident(kb_matcher, message):
    assert kb_matcher.match(message).id is None


def test_a_gift_from_a_mother_refused_by_the_off_topic_veto_is_offered_first(kb_matcher):
    # The exploratory tester's case: gift.relatives at p 0.90, but the off-topic example about a birthday present
    # for a mother scores 1.6 × the entry's profile score, so the answer is "not sure". Its mirror image (above,
    # "What should I buy my mother …": gift.relatives at p 0.81, 1.7 ×) sits on the same signals, and the veto
    # rule that let the first through on the tuning sets let the second through too; none was adopted
    # (bench/README.md, qa). The right entry is offered first, one tap away.
    result = kb_matcher.match("Can I accept a gift from my mother?")
    assert result.candidates[0][0] == "gift.relatives"


def test_match_decides_exactly_as_the_signals_tuning_records(kb_matcher):
    """``match`` works its signals out the cheap way (features once, one entry's profile score, the off-topic score only
    when it could veto); its answers must be the ones ``signals`` — what ``bench/qa/tune.py`` chose the settings
    on — gives, for answered, not-sure, off-topic and vetoed questions alike."""
    import json

    from integrity import matcher as mm
    from integrity import smalltalk

    dev = Path(__file__).resolve().parent.parent / "bench" / "qa" / "dev.jsonl"
    questions = [json.loads(line)["q"] for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions += ["", "???", "asdfgh", "ร้านกระเช้าผลไม้แถวนี้มีไหม", "Can I accept a gift from my mother?"]
    m = kb_matcher
    outcomes = set()
    for q in questions:
        if smalltalk.kind(q) is not None:
            continue
        probs, coverage, profile, off = m.signals(q)
        exact = m._exact.get(mm.exact_key(q))
        if exact is not None:
            top = m.ids[exact]
            probs = [(top, 1.0)] + [(i, p) for i, p in probs if i != top]
        if not probs or (coverage == 0.0 and exact is None):
            expected = (None, 0.0)
        else:
            sure = mm.lead(probs) >= m.min_lead and coverage >= m.min_coverage
            confident = exact is not None or (sure and off < m.offtopic_ratio * profile)
            expected = (probs[0][0] if confident else None, round(probs[0][1], 4))
            outcomes.add("answered" if confident else "vetoed" if sure else "not sure")
        got = m.match(q)
        assert (got.id, got.score) == expected, q
    assert outcomes == {"answered", "vetoed", "not sure"}  # every path was taken
