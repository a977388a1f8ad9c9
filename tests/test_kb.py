"""The integrity knowledge base: the shipped entries validate clean, ``validate`` catches every kind
of problem, the gift-limit answer never turns 3,000 baht into an allowance for BMA staff, and the
bench's evaluation set is well formed and worded apart from the example questions."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import date, timedelta
from difflib import SequenceMatcher
from pathlib import Path

import pytest

from integrity import kb
from integrity.kb import REQUIRED_IDS, Entry, KBError, Source, check, load_entries, normalize_question, validate

ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = ROOT / "bench" / "qa" / "questions.jsonl"
TODAY = date(2026, 11, 22)


# -- writing small knowledge bases for the negative tests ------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str | list | int):
        return json.dumps(v, ensure_ascii=False)  # JSON strings and arrays of strings are valid TOML
    raise TypeError(type(v))


def to_toml(data: dict) -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((f"[{k}]", v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.extend((f"[[{k}]]", x) for x in v)
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for header, t in tables:
        lines.append(header)
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in t.items())
    return "\n".join(lines) + "\n"


def good(eid: str, **changes) -> dict:
    d = {
        "id": eid,
        "title_th": "หัวข้อ " + eid,
        "title_en": "Title " + eid,
        "answer_th": "คำตอบสั้น ๆ สำหรับ " + eid,
        "answer_en": "A short answer for " + eid,
        "related": [],
        "reviewed": date(2026, 11, 1),
        "needs_legal_review": False,
        "sources": [{"th": "แหล่งที่มา", "en": "A source"}],
        "examples": {"th": [f"คำถาม{eid}ข้อ{i}" for i in range(6)], "en": [f"{eid} question {i}" for i in range(3)]},
    }
    d.update(changes)
    return d


def write(folder: Path, *entries: dict, names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, e in enumerate(entries):
        name = names[i] if names else e["id"]
        (folder / f"{name}.toml").write_text(to_toml(e), encoding="utf-8")
    return folder


def problems(folder: Path, required=()) -> list[str]:
    return check(folder, today=TODAY, required_ids=required)


# -- the shipped knowledge base --------------------------------------------------------------------

@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    return load_entries()


def test_the_knowledge_base_validates_clean(entries):
    assert validate(entries) == []
    assert check() == []


def test_every_required_entry_is_present(entries):
    ids = {e.id for e in entries}
    assert len(REQUIRED_IDS) == 24
    assert set(REQUIRED_IDS) <= ids
    assert {e.file.stem for e in entries} == ids


def test_entries_load_with_the_right_types(entries):
    e = next(x for x in entries if x.id == "gift.limit")
    assert type(e.reviewed) is date
    assert all(isinstance(s, Source) for s in e.sources)
    assert e.needs_legal_review is True
    assert e.title("en") == e.title_en and e.answer("th") == e.answer_th
    assert len(e.examples["th"]) >= 6 and len(e.examples["en"]) >= 3
    # asdict gives exactly the file's keys (the database copy of an entry is made this way)
    assert set(dataclasses.asdict(e)) == kb.KEYS


def test_answers_are_short_plain_text(entries):
    for e in entries:
        for lang in ("th", "en"):
            text = e.answer(lang)
            assert len(text) <= 650, (e.id, lang, len(text))
            assert "**" not in text and "](" not in text, e.id


def test_legal_figures_are_marked_for_review(entries):
    figure = re.compile(r"3,000|60,000|100,000|30 วัน|30 days|มาตรา|section", re.IGNORECASE)
    for e in entries:
        if figure.search(e.answer_th) or figure.search(e.answer_en):
            assert e.needs_legal_review, e.id
    for eid in ("gift.limit", "gift.penalty", "gift.report"):
        assert next(x for x in entries if x.id == eid).needs_legal_review


def test_penalties_match_the_organic_act(entries):
    e = next(x for x in entries if x.id == "gift.penalty")
    for text in (e.answer_th, e.answer_en):
        assert "169" in text and "176" in text and "60,000" in text and "100,000" in text
    assert "3 ปี" in e.answer_th and "5 ปี" in e.answer_th
    assert "3 years" in e.answer_en and "5 years" in e.answer_en


def test_survey_iit_describes_the_invite_code_as_the_bot_issues_it(entries):
    from datetime import timedelta

    from surveys.campaigns import INVITE_TTL

    e = next(x for x in entries if x.id == "survey.iit")
    assert "ใช้ได้ครั้งเดียวและมีอายุหนึ่งเดือน" in e.answer_th and "works once and lasts a month" in e.answer_en
    assert timedelta(days=28) <= INVITE_TTL <= timedelta(days=31)  # "a month"


def test_complaint_entries_describe_what_the_bot_does(entries):
    by = {e.id: e for e in entries}
    assert "แจ้งเบาะแส" in by["complaint.how"].answer_th and "20 ตัวอักษร" in by["complaint.how"].answer_th
    assert "สถานะ" in by["complaint.status"].answer_th and "status" in by["complaint.status"].answer_en
    general = by["complaint.general"]
    for text in (general.answer_th, general.answer_en):
        assert "@traffyfondue" in text and "1555" in text
    anon = by["complaint.anonymous"].answer_th
    assert "ไม่เปิดเผยตัวตน" in anon and "ปกปิด" in anon and "เปิดเผยชื่อ" in anon
    assert "แบบประเมิน" in by["survey.eit"].answer_th and "1 ปี" in by["survey.iit"].answer_th


# -- gift.limit never turns 3,000 baht into an allowance for BMA staff -----------------------------

FIGURE_TH = re.compile(r"3,?000|๓,?๐๐๐|สามพัน")


def test_gift_limit_leads_with_the_no_gift_policy(entries):
    e = next(x for x in entries if x.id == "gift.limit")
    th, en = e.answer_th, e.answer_en
    assert "No Gift Policy" in th and "No Gift Policy" in en
    first_th, first_en = th.strip().splitlines()[0], en.strip().splitlines()[0]
    # The first thing said is the BMA rule — no gifts from duties — and it carries no figure.
    assert "กทม" in first_th and "รับไม่ได้" in first_th and not FIGURE_TH.search(first_th)
    assert "BMA" in first_en and "no gift" in first_en.lower() and "3,000" not in first_en


def test_gift_limit_puts_the_figure_on_other_officials_only(entries):
    e = next(x for x in entries if x.id == "gift.limit")
    for line in e.answer_th.splitlines():
        if FIGURE_TH.search(line):
            # the line says whom the figure is for (officials in general) and that it is not a BMA right
            assert "เจ้าหน้าที่รัฐทั่วไป" in line and "ไม่ใช่สิทธิ์" in line, line
    for sentence in re.split(r"(?<=\.)\s+", e.answer_en):
        if "3,000" in sentence:
            assert "other" in sentence or "no right" in sentence, sentence
    allowance = re.compile(r"(บุคลากร|เจ้าหน้าที่|ข้าราชการ)\s*(กทม\.?|กรุงเทพมหานคร|เขต)\s*(รับ|เก็บ)[^\n]{0,20}ได้[^\n]{0,10}"
                           r"(ไม่เกิน|ถึง)\s*(3,?000|สามพัน)")
    assert not allowance.search(e.answer_th)
    assert not re.search(r"BMA (staff|officials?|employees) (may|can) (accept|keep)[^.]*3,000", e.answer_en)


def test_no_answer_offers_bma_staff_a_3000_baht_allowance(entries):
    allowance = re.compile(r"(บุคลากร|เจ้าหน้าที่|ข้าราชการ)\s*(กทม\.?|กรุงเทพมหานคร|เขต)\s*(รับ|เก็บ)[^\n]{0,20}ได้[^\n]{0,10}"
                           r"(ไม่เกิน|ถึง)\s*(3,?000|สามพัน)")
    for e in entries:
        assert not allowance.search(e.answer_th), e.id
        assert not re.search(r"BMA (staff|officials?) (may|can) (accept|keep)[^.]*3,000", e.answer_en), e.id


# -- validate() catches each kind of problem -------------------------------------------------------

def test_a_small_sound_knowledge_base_is_clean(tmp_path):
    folder = write(tmp_path / "kb", good("a.one", related=["a.two"]), good("a.two", read_more="https://www.nacc.go.th"))
    assert problems(folder) == []
    assert [e.id for e in load_entries(folder)] == ["a.one", "a.two"]


def _only(tmp_path, entry: dict, *others: dict, names=None) -> list[str]:
    folder = write(tmp_path / "kb", entry, *others, names=names)
    return problems(folder)


def _without(d: dict, key: str) -> dict:
    d = copy.deepcopy(d)
    del d[key]
    return d


@pytest.mark.parametrize(("entry", "expected"), [
    (_without(good("a.one"), "answer_en"), "missing key 'answer_en'"),
    (_without(good("a.one"), "sources"), "missing key 'sources'"),
    (good("a.one", colour="blue"), "unknown key 'colour'"),
    (good("a.one", needs_legal_review="yes"), "'needs_legal_review' must be true or false"),
    (good("a.one", reviewed="2026-01-01"), "'reviewed' must be a TOML date"),
    (good("a.one", related="a.two"), "'related' must be a list"),
    (good("a.one", title_th=["not", "a", "string"]), "'title_th' must be a string"),
    (good("a.one", answer_th="   "), "'answer_th' is empty"),
    (good("a.one", answer_en="x" * 1001), "'answer_en' is 1001 characters long"),
    (good("a.one", answer_th="**ตัวหนา** แบบ markdown"), "contains markdown"),
    (good("a.one", title_en="A title that is far too long for a quick reply button"), "'title_en' is 53 characters"),
    (good("a.one", sources=[]), "no sources"),
    (good("a.one", sources=[{"th": "แหล่ง", "en": "A source", "page": 3}]), "source 1: unknown key 'page'"),
    (good("a.one", sources=[{"th": "แหล่ง"}]), "source 1: missing key 'en'"),
    (good("a.one", related=["a.nowhere"]), "related id 'a.nowhere' does not exist"),
    (good("a.one", related=["a.one"]), "related to itself"),
    (good("a.one", reviewed=TODAY + timedelta(days=1)), "is in the future"),
    (good("a.one", read_more="http://example.org"), "must be an https:// address"),
    (good("a.one", examples={"th": ["ถามหนึ่ง", "ถามสอง", "ถามสาม", "ถามสี่", "ถามห้า"],
                             "en": ["one?", "two?", "three?"]}), "examples.th has 5 questions (at least 6)"),
    (good("a.one", examples={"th": [f"ถาม{i}" for i in range(6)], "en": ["one?", "two?"]}),
     "examples.en has 2 questions (at least 3)"),
    (good("a.one", examples={"th": [f"ถาม{i}" for i in range(6)]}), "examples: missing key 'en'"),
    (good("a.one", examples={"th": [f"ถาม{i}" for i in range(6)] + ["ถาม 0"], "en": ["a?", "b?", "c?"]}),
     "appears twice"),
    (good("Gift Limit"), "must look like 'topic.name'"),
])
def test_validate_reports(tmp_path, entry, expected):
    found = _only(tmp_path, entry, names=["a.one"])
    assert any(expected in p for p in found), found


def test_id_must_match_the_file_name(tmp_path):
    found = _only(tmp_path, good("a.one"), names=["a.other"])
    assert any("does not match the file name 'a.other'" in p for p in found), found


def test_duplicate_ids(tmp_path):
    found = _only(tmp_path, good("a.one"), good("a.one"), names=["a.one", "a.copy"])
    assert any("duplicate id 'a.one'" in p for p in found), found


def test_an_example_question_in_two_entries(tmp_path):
    two = good("a.two")
    two["examples"]["th"][0] = "คำถาม a.one ข้อ0"  # same as a.one's first example, spaced differently
    found = _only(tmp_path, good("a.one"), two)
    assert any("is also an example of a.one.toml" in p for p in found), found


def test_required_entries_missing(tmp_path):
    folder = write(tmp_path / "kb", good("gift.limit"))
    found = check(folder, today=TODAY)
    assert len(found) == 1 and "required entries missing" in found[0]
    assert "gift.policy" in found[0] and "gift.limit" not in found[0]


def test_a_file_that_is_not_toml(tmp_path):
    folder = write(tmp_path / "kb", good("a.one"))
    (folder / "a.broken.toml").write_text('id = "a.broken"\ntitle_th = "ยังไม่ปิดเครื่องหมายคำพูด\n', encoding="utf-8")
    with pytest.raises(KBError, match="a.broken.toml"):
        load_entries(folder)
    found = problems(folder)
    assert len(found) == 1 and "a.broken.toml: not valid TOML" in found[0]


def test_a_file_that_is_not_toml_does_not_hide_the_other_files_problems(tmp_path):
    folder = write(tmp_path / "kb", good("a.one", answer_th=""), good("a.two"))
    (folder / "a.broken.toml").write_text('id = "a.broken"\ntitle_th = [\n', encoding="utf-8")
    found = check(folder, today=TODAY, required_ids=["a.one", "a.broken", "a.three"])
    assert any("a.broken.toml: not valid TOML" in p for p in found), found
    assert any(p.startswith("a.one") and "answer_th" in p for p in found), found
    # The unreadable file is reported as such, not as a missing entry; a truly missing one still is.
    missing = [p for p in found if "required entries missing" in p]
    assert len(missing) == 1 and "a.three" in missing[0] and "a.broken" not in missing[0], found


def test_a_missing_folder(tmp_path):
    with pytest.raises(KBError):
        load_entries(tmp_path / "nowhere")


def test_entries_built_in_code_are_validated_too():
    e = Entry(id="a.one", title_th="หัวข้อ", title_en="Title", answer_th="ตอบ", answer_en="Answer",
              sources=[Source("แหล่ง", "Source")], examples={"th": ["ถาม"] * 1, "en": []}, related=["a.two"],
              reviewed=TODAY, needs_legal_review=False)
    found = validate([e], today=TODAY, required_ids=())
    assert any("examples.th has 1 questions" in p for p in found)
    assert any("related id 'a.two' does not exist" in p for p in found)


# -- the evaluation set for bench/qa ---------------------------------------------------------------

@pytest.fixture(scope="module")
def eval_rows() -> list[dict]:
    rows = []
    for n, line in enumerate(EVAL_SET.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            assert set(row) == {"q", "id"}, f"line {n}: {row}"
            assert isinstance(row["q"], str) and row["q"].strip(), f"line {n}"
            rows.append(row)
    return rows


def test_eval_set_ids_exist_and_cover_every_entry(eval_rows, entries):
    ids = {e.id for e in entries}
    per_id: dict[str, int] = {}
    for r in eval_rows:
        assert r["id"] is None or r["id"] in ids, r
        if r["id"] is not None:
            per_id[r["id"]] = per_id.get(r["id"], 0) + 1
    assert all(per_id.get(i, 0) >= 5 for i in REQUIRED_IDS), {i: per_id.get(i, 0) for i in REQUIRED_IDS}
    assert sum(per_id.values()) >= 120
    assert sum(1 for r in eval_rows if r["id"] is None) >= 40


def test_eval_questions_are_not_example_questions(eval_rows, entries):
    examples = {normalize_question(q): e.id for e in entries for lang in ("th", "en") for q in e.examples[lang]}
    titles = {normalize_question(t): e.id for e in entries for t in (e.title_th, e.title_en)}
    seen = set()
    for r in eval_rows:
        n = normalize_question(r["q"])
        assert n not in examples, (r["q"], examples.get(n))
        assert n not in titles, (r["q"], titles.get(n))
        assert n not in seen, f"asked twice: {r['q']}"
        seen.add(n)


def _near_copies(questions: list[str], docs: list[str], limit: float = 0.8) -> list[tuple[str, str, float]]:
    """(question, document, difflib ratio) for every pair at ``limit`` or above. Each document's matcher is
    built once, and the cheap upper bounds (real_quick_ratio ≥ quick_ratio ≥ ratio) rule most pairs out."""
    found = []
    normalized = [(q, normalize_question(q)) for q in questions]
    for d in docs:
        m = SequenceMatcher(None, "", d)
        for q, n in normalized:
            m.set_seq1(n)
            if m.real_quick_ratio() >= limit and m.quick_ratio() >= limit and m.ratio() >= limit:
                found.append((q, d, round(m.ratio(), 2)))
    return found


def test_eval_questions_are_not_near_copies_of_examples(eval_rows, entries):
    docs = [normalize_question(q) for e in entries for lang in ("th", "en") for q in e.examples[lang]]
    docs += [normalize_question(t) for e in entries for t in (e.title_th, e.title_en)]
    assert _near_copies([r["q"] for r in eval_rows], docs) == []


def test_evaluation_questions_are_not_near_copies_of_off_topic_examples(eval_rows):
    """The off-topic examples teach the matcher what is not its business; the bench and development sets
    must not be answered by having their own questions among them."""
    import json
    from pathlib import Path

    from integrity.matcher import offtopic_examples

    offtopic = [normalize_question(q) for q in offtopic_examples()]
    assert len(offtopic) >= 200
    rows = list(eval_rows)
    for name in ("dev.jsonl", "dev2.jsonl"):
        dev = Path(__file__).resolve().parent.parent / "bench" / "qa" / name
        rows += [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert _near_copies([r["q"] for r in rows], offtopic) == []


def test_off_topic_examples_are_not_knowledge_base_examples(entries):
    from integrity.matcher import offtopic_examples

    examples = {normalize_question(q) for e in entries for lang in ("th", "en") for q in e.examples[lang]}
    assert not [q for q in offtopic_examples() if normalize_question(q) in examples]
