"""Matching a free-text question to a knowledge-base entry, or saying "not sure".

How it works
------------
1. **Fold** the text into a matching form (``fold``): ``handlers.text.normalize`` (NFC, zero-width
   characters, Thai digits → Arabic, lower case, spaces), then
   * particles (ครับ/ค่ะ/คะ/จ้า…) dropped wherever they end a phrase, not only at the end;
   * spoken question words unified (มั้ย/ไม๊ → ไหม, เท่าไหร่ → เท่าไร, ยังไง/ทำไง → อย่างไร …),
     "3,000" → "3000", "สามพัน"/"3 พัน" → "3000";
   * misspellings absorbed: ์ ็ ๆ dropped, letters that sound alike merged (ศ/ษ/ส, ณ/ญ/น, ฎ/ด,
     ธ/ฑ/ฒ/ท, ภ/พ …, ใ/ไ), ํา/ำ and เเ/แ repaired, runs of a repeated letter shortened — so
     ของขวัน, นํ้า, เเบบ, ได้ไหมมม meet the right spelling; the knowledge base goes through the same fold;
   * the **synonym table** (``integrity/synonyms.toml``, data the content owner can extend) rewrites
     other ways of saying a thing to one form, across languages: ผู้บังคับบัญชา/ผอ./boss → หัวหน้า,
     gift/present → ของขวัญ, ค่าน้ำร้อนน้ำชา/bribe → สินบน. This is what lets an English question
     meet the Thai examples, and a Thai paraphrase meet another.
2. **Features**: character 2-, 3- and 4-grams of Thai (spaces between Thai words removed, so
   "รับ ของขวัญ" = "รับของขวัญ"); English words (minus function words) plus their character 3- and
   4-grams; numbers whole; and one "concept" feature per synonym-table hit. TF is sub-linear; IDF,
   raised to the power 2, comes from the indexed texts.
3. **A classifier**: multinomial logistic regression (scikit-learn) trained on the unit-length
   TF-IDF vectors of every entry's titles, example questions and answer lines, one document each,
   labelled with the entry. It gives each entry a probability; the three most probable are the
   candidates ("did you mean"). A title or example typed as it is (after the fold) always answers
   its entry: quick replies and officer-added examples are answered for sure.
4. **Coverage**: the share of the question's (squared) feature weight that occurs anywhere in the
   knowledge base. A question about something else is mostly made of n-grams it has never seen.
5. **Off-topic examples** (``integrity/offtopic.toml``): a few hundred messages an office's account
   gets that the Q&A does not answer — other district services, gift shopping, a company's survey,
   bank fees, chit-chat. Each is its own vector; the closest one's cosine is the off-topic score,
   compared with the best entry's **profile** score (the cosine with the pooled vector of all its
   documents, answer lines counting double). They take no part in IDF, coverage or training.
6. **Not sure** unless the best entry's probability leads the second's by ≥ ``MIN_LEAD``, coverage ≥
   ``MIN_COVERAGE`` and the off-topic score < ``OFFTOPIC_RATIO`` × its profile score. Greetings and
   thanks never get this far (``integrity.smalltalk``).

Why this method
---------------
Measured with ``bench/qa/tune.py`` (5-fold cross-validation over the examples, three times, plus a development
set written blind, ``bench/qa/dev.jsonl``); the bench set is never used for choices:

* **Character n-grams, not a Thai word tokenizer.** N-grams need no segmentation, so unspaced Thai,
  typos, mixed Thai–English and English share one code path. PyThaiNLP's newmm words were tried
  (on an earlier version, 10-fold over the examples): added to the n-grams +0.4 points of top-1,
  instead of them −20 points — not worth a 68 MB dependency whose dictionary misses misspelled
  and spoken forms.
* **A trained classifier, not nearest profile.** With ~35 examples per entry, logistic regression
  learns which n-grams tell neighbouring entries apart (gift.limit from gift.policy); cosine with a
  pooled profile cannot weigh them. On the development set the best entry was right 98 % of the
  time instead of 96 %, and its probability is a usable confidence: on the pooled tuning sets,
  answered right rose from 59 % to 64 % at the same limits (profiles needed a score threshold, a
  lead over the second entry and a coverage limit, and still refused most long questions); on the
  held-out bench, measured once after the choice, from 60 % to 81 %.
  Training takes ~0.5 s with the SAG solver (L-BFGS: 8 s), once per knowledge-base revision.
* **Answer texts indexed** (+2 points answered right): they name the things people ask about
  (ทราฟฟี่ฟองดูว์, มาตรา 176, อั่งเปา) that the examples may not.
* **Synonym table** (+14 points) and its concept features (+4): lexical matching cannot know that
  ผู้บังคับบัญชา is a หัวหน้า or that "boss" is either; a short, editable table can.
* **Off-topic examples** (+6 points at the same false-answer rate): "ค่าธรรมเนียมโอนเงินธนาคาร" shares
  ค่าธรรมเนียม with bribe.fee and little else, but it is close to bank-fee questions among the
  off-topic examples. Nearest example, not a pooled profile: off-topic questions have nothing in
  common with each other.
* **Speed**: a question costs a few hundred dictionary look-ups and one small matrix product
  (~0.5–2 ms); building for 24 entries ~1 s plus scikit-learn's import.

The lead, coverage and off-topic ratio
--------------------------------------
Chosen by ``bench/qa/tune.py``: examples cross-validated, the development set and a list of
out-of-scope questions in tune.py matched by the full matcher; the setting that answers the most
in-scope questions right while answering at most 10 % of the out-of-scope ones and at most 5 % of
the in-scope ones wrongly. Run it again after large content changes; the bench
(``bench/qa/run.py``) is the held-out measurement.

**Why the lead, not the probability.** Until 2026-12-07 the gate was the best entry's probability
(≥ 0.28). The lead over the second entry (``lead``) says what the answer rests on: whether the
classifier can tell the best entry from its neighbour, which is where wrong answers come from (gift.limit
against gift.policy). Each at its own best setting on the tuning sets, three deals of the folds: answered
right 63.5 / 64.4 / 62.9 % against 60.7 / 61.4 / 59.8 % (+2.8 to +3.1 points; the deals' spread is
0.7), at the same limits; chosen on one half of the questions and measured on the other (30 halves):
+2.5 points right, out-of-scope answers unchanged (11.1 against 11.0 %). On ``bench/qa/dev2.jsonl``, kept out
of the choice: 169 of 183 right against 167 (the shipped 0.28), 2 wrong against 4, out of scope 12 of 69
both. On the held-out bench, run once afterwards: top-1 129/144 both, wrong 4 against 7, out of scope
"not sure" 48/51 against 47/51 (bench/README.md, qa). A question between two close entries is now "not
sure" with both offered first ("Can I accept a gift from someone I served?": gift.policy 0.32, gift.offered
0.23) where the probability rule answered the first.

The off-topic veto applies whatever the classifier's probability. Letting a confident classifier
override it was measured (``tune.py --veto``: a probability above which there is no veto, a ratio
that grows with the probability, the off-topic score compared with a blend of profile score and
probability) and not adopted. A ceiling gains at most 10 of 5,178 tuning rows. The search with a
blend gains 0.7–1.6 points on the tuning sets (nine deals of the folds); chosen on half the
questions and measured on the other half (``--halves``), most of that gain turns into more
out-of-scope answers. The classifier knows only the knowledge base, so it is nearly as sure about
"What should I buy my mother for her birthday?" (gift.relatives, p 0.81, off-topic 1.7 × the
profile score) as about "Can I accept a gift from my mother?" (p 0.90, 1.6 ×, vetoed): the
blend answers both. See bench/README.md (qa).
"""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.text import normalize
from integrity import smalltalk

#: Unless the classifier's best entry leads the second by at least this much probability, the matcher is
#: "not sure" (chosen by bench/qa/tune.py; see "The lead, coverage and off-topic ratio" above).
MIN_LEAD = 0.13
#: ... and also when less than this share of the question is made of n-grams the knowledge base has.
MIN_COVERAGE = 0.40
#: ... and also when the closest off-topic example scores at least this multiple of the best entry's
#: profile score.
OFFTOPIC_RATIO = 1.5
#: Scores are divided by coverage ** COVERAGE_POWER (see Matcher.scores).
COVERAGE_POWER = 0.5
#: Inverse regularisation strength of the logistic regression (scikit-learn's C).
REGULARISATION = 50.0
#: How many entries "did you mean" offers.
CANDIDATES = 3

#: Character n-gram sizes for Thai; for words in Latin script, the word itself plus these n-grams.
THAI_NGRAMS = (2, 3, 4)
LATIN_NGRAMS = (3, 4)
#: How much a title, an example question and one line of an answer weigh in an entry's profile.
TITLE_WEIGHT = 1.0
EXAMPLE_WEIGHT = 1.0
ANSWER_WEIGHT = 2.0
#: IDF is raised to this power: rare n-grams (names of things) count more than common ones.
IDF_POWER = 2.0
#: Extra feature weight of a word found in the synonym table (a "concept"), 0 to turn off.
CONCEPT_WEIGHT = 2.0

#: English function words carry nothing a question is about; they are dropped (question words such as
#: "what" or "how" are not: the synonym table turns them into Thai ones).
_STOPWORDS = (
    "a an the is are am was were be been being do does did i me my mine we us our you your it its this that these "
    "those to of for in on at by with and or but if so will would shall should could can may might must have has "
    "had there they them their he him his she her someone something anyone about any some just please from")
ENGLISH_STOPWORDS = frozenset(_STOPWORDS.split())

SYNONYMS_FILE = Path(__file__).resolve().parent / "synonyms.toml"
OFFTOPIC_FILE = Path(__file__).resolve().parent / "offtopic.toml"


def offtopic_examples(path: Path = OFFTOPIC_FILE) -> list[str]:
    """The shipped off-topic example questions (other services, shopping, chit-chat …)."""
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        examples = tomllib.load(fh).get("examples", {})
    return [q for lang in ("th", "en") for q in examples.get(lang, ()) if q.strip()]

# --- the matching fold -----------------------------------------------------------------------------

# Particles anywhere, before a space, punctuation or the end. Not น้า/นะ/ค่า: หัวหน้า, มูลค่า end so.
_PARTICLES = re.compile(r"(?:นะครับ|นะคะ|ครับผม|ครับ|คับ|ค่ะ|คะ|จ้ะ|จ้า|จ๊ะ)(?=[\s?!.,~]|$)")
# Spoken or shortened spellings of question words, unified before folding (longest first).
_VARIANTS = {
    "มั้ย": "ไหม", "มั๊ย": "ไหม", "ไม๊": "ไหม",
    "เท่าไหร่": "เท่าไร", "เท่าไร่": "เท่าไร", "เท่าใด": "เท่าไร",
    "ยังไง": "อย่างไร", "ยังงัย": "อย่างไร", "ทำไง": "ทำอย่างไร",
    "รึเปล่า": "หรือเปล่า", "หรือป่าว": "หรือเปล่า", "รึป่าว": "หรือเปล่า", "ได้ป่าว": "ได้หรือเปล่า",
    "เหรอ": "หรือ", "อ่ะ": "", "ตรงไหน": "ที่ไหน",
}
_VARIANT_RE = re.compile("|".join(sorted(map(re.escape, _VARIANTS), key=len, reverse=True)))
_THAI_FOLD = str.maketrans({
    "\u0e4c": None, "\u0e47": None, "\u0e4d": None,  # karan, mai taikhu, nikhahit (ํา handled before)
    "\u0e46": None,  # mai yamok
    "ศ": "ส", "ษ": "ส",
    "ณ": "น", "ญ": "น",
    "ฎ": "ด", "ฏ": "ต", "ฐ": "ถ", "ฑ": "ท", "ฒ": "ท", "ธ": "ท",
    "ฆ": "ค", "ฅ": "ค", "ฃ": "ข",
    "ภ": "พ", "ฬ": "ล", "ฌ": "ช",
    "ใ": "ไ",
    "\u0e45": "\u0e32",  # lakkhangyao → sara aa
})
_NUMBER_WORDS = {"หนึ่ง": 1, "สอง": 2, "สาม": 3, "สี่": 4, "ห้า": 5, "หก": 6, "เจ็ด": 7, "แปด": 8, "เก้า": 9}
_MULTIPLIERS = {"ร้อย": 100, "พัน": 1000, "หมื่น": 10000, "แสน": 100000}
# Bounded and anchored to the start of a run of digits: "\d+" here backtracked over every start in a long
# run (5,000 digits took 0.5 s), and int() refuses more than 4,300 digits.
_NUMBER = re.compile(r"(?<![0-9])({}|[0-9]{{1,9}})\s*({})".format("|".join(_NUMBER_WORDS), "|".join(_MULTIPLIERS)))
_THAI = "\u0e01-\u0e4f"
_TOKEN = re.compile(rf"[{_THAI}]+(?:[\s.\-/]+[{_THAI}]+)*|[a-z]+|[0-9]+")
_SEP = re.compile(r"[\s.\-/]+")
_DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")
_REPEAT = re.compile(r"(\D)\1{2,}")
_NIKHAHIT_AA = re.compile("\u0e4d([\u0e48-\u0e4b]?)\u0e32")  # ํ + า typed for ำ, maybe with a tone between
_TONE_AFTER_AM = re.compile("\u0e33([\u0e48-\u0e4b])")


def _number(m: re.Match) -> str:
    n = m.group(1)
    return str((int(n) if n.isdecimal() else _NUMBER_WORDS[n]) * _MULTIPLIERS[m.group(2)])


def spelling_fold(text: str) -> str:
    """``normalize`` plus the spelling part of the fold (everything but synonyms)."""
    # normalize() would cut trailing particles without a word boundary (หัวหน้า → หัว, มูลค่า → มูล);
    # _PARTICLES does the job here, only where a particle ends a phrase.
    t = normalize(text, particles=False)
    t = _PARTICLES.sub(" ", t)
    t = _DIGIT_GROUP.sub("", t)
    t = _NUMBER.sub(_number, t)
    t = _VARIANT_RE.sub(lambda m: _VARIANTS[m.group(0)], t)
    t = _NIKHAHIT_AA.sub("\\1\u0e33", t).replace("เเ", "แ")
    t = _TONE_AFTER_AM.sub("\\1\u0e33", t)
    t = t.translate(_THAI_FOLD)
    return _REPEAT.sub(r"\1", t)


class Synonyms:
    """The synonym table: every listed form (and the key itself) is rewritten to the key.

    Rewriting scans the text once, trying at each position the forms that start with its character,
    longest first (a dictionary look-up per length) — a regular expression with hundreds of
    alternatives was ten times slower. English forms match whole words only, with an optional
    plural -s/-es.
    """

    def __init__(self, table: Mapping[str, Sequence[str]]):
        self.canonical: dict[str, str] = {}
        for key, forms in table.items():
            target = spelling_fold(key).strip()
            for form in (key, *forms):
                f = " ".join(spelling_fold(form).split())
                if f and self.canonical.setdefault(f, target) != target:
                    raise ValueError(f"synonyms: {form!r} is listed under {key!r} and elsewhere")
        lengths: dict[str, set[int]] = defaultdict(set)
        for f in self.canonical:
            lengths[f[0]].add(len(f))
        self._lengths = {c: sorted(ls, reverse=True) for c, ls in lengths.items()}

    @classmethod
    def load(cls, path: Path = SYNONYMS_FILE) -> Synonyms:
        with open(path, "rb") as fh:
            return cls(tomllib.load(fh).get("words", {}))

    def rewrite(self, folded: str) -> tuple[str, list[str]]:
        """``folded`` with every known form replaced by its key, and the keys found."""
        out: list[str] = []
        found: list[str] = []
        canonical, lengths = self.canonical, self._lengths
        i, n = 0, len(folded)
        while i < n:
            c = folded[i]
            end = None
            for length in lengths.get(c, ()):
                form = folded[i:i + length]
                target = canonical.get(form)
                if target is None:
                    continue
                j = i + length
                if "a" <= c <= "z":  # a whole English word: not inside another, plural allowed
                    if i and "a" <= folded[i - 1] <= "z":
                        break
                    for suffix in ("es", "s", ""):
                        after = folded[j + len(suffix):j + len(suffix) + 1]
                        if folded.startswith(suffix, j) and not (after and "a" <= after <= "z"):
                            j += len(suffix)
                            break
                    else:
                        continue
                end = j
                break
            if end is None:
                out.append(c)
                i += 1
            else:
                found.append(target)
                out.append(f" {target} " if target.isascii() else target)
                i = end
        return "".join(out), found


_synonyms: Synonyms | None = None


def synonyms() -> Synonyms:
    global _synonyms
    if _synonyms is None:
        _synonyms = Synonyms.load()
    return _synonyms


def fold(text: str) -> str:
    """The matching form of ``text`` (see the module docstring); exposed for tests and tuning."""
    return synonyms().rewrite(spelling_fold(text))[0]


def exact_key(text: str) -> str:
    """The form in which a question counts as "the same" as a title or an example."""
    return "".join(ch for ch in fold(text) if unicodedata.category(ch)[0] in "LNM")


def features(text: str) -> dict[str, float]:
    """Sub-linear term frequencies of the n-gram and word features of ``text``."""
    folded, concepts = synonyms().rewrite(spelling_fold(text))
    counts: dict[str, float] = defaultdict(float)
    for tok in _TOKEN.findall(folded):
        c = tok[0]
        if "\u0e01" <= c <= "\u0e4f":
            s = _SEP.sub("", tok)
            if len(s) < THAI_NGRAMS[0]:
                counts[s] += 1
            for n in THAI_NGRAMS:
                for i in range(len(s) - n + 1):
                    counts[s[i:i + n]] += 1
        elif c.isdigit():
            counts["#" + tok] += 1
        elif tok not in ENGLISH_STOPWORDS:
            counts["w:" + tok] += 1
            s = f" {tok} "
            for n in LATIN_NGRAMS:
                for i in range(len(s) - n + 1):
                    counts[s[i:i + n]] += 1
    if CONCEPT_WEIGHT:
        for k in concepts:
            counts["c:" + k] += CONCEPT_WEIGHT
    return {f: 1.0 + math.log(k) if k >= 1 else k for f, k in counts.items()}


# --- the index -------------------------------------------------------------------------------------


def lead(probs: Sequence[tuple[str, float]]) -> float:
    """How far the most probable entry's probability is ahead of the second's: the matcher's confidence."""
    if not probs:
        return 0.0
    return probs[0][1] - (probs[1][1] if len(probs) > 1 else 0.0)


@dataclass(frozen=True)
class Result:
    """``id`` is None when the matcher is not sure; ``score`` is the best entry's probability; ``candidates`` are
    the best entries with theirs, best first."""

    id: str | None
    score: float
    candidates: list[tuple[str, float]] = field(default_factory=list)
    #: "hello", "thanks" or "ack" when the message is not a question at all (see integrity.smalltalk)
    small_talk: str | None = None


def documents(entry: Any) -> list[tuple[str, float, str]]:
    """What is indexed for one entry, as (text, weight, kind): titles, examples, lines of answers."""
    docs = [(t, TITLE_WEIGHT, "title") for t in (getattr(entry, "title_th", ""), getattr(entry, "title_en", ""))]
    examples = getattr(entry, "examples", None) or {}
    for lang in ("th", "en"):
        docs += [(t, EXAMPLE_WEIGHT, "example") for t in examples.get(lang, ()) or ()]
    if ANSWER_WEIGHT:
        for answer in (getattr(entry, "answer_th", ""), getattr(entry, "answer_en", "")):
            docs += [(line, ANSWER_WEIGHT, "answer") for line in (answer or "").splitlines()]
    return [(t, w, k) for t, w, k in docs if t and t.strip()]


class Matcher:
    """An index of the knowledge base and a classifier over it; ``match`` answers one question."""

    def __init__(self, entries: Iterable[Any], *, min_lead: float = MIN_LEAD,
                 min_coverage: float = MIN_COVERAGE, offtopic_ratio: float = OFFTOPIC_RATIO,
                 offtopic: Sequence[str] | None = None):
        ids: list[str] = []
        docs: list[tuple[int, str, float, str]] = []
        for entry in entries:
            if entry.id in ids:
                raise ValueError(f"duplicate entry id {entry.id!r}")
            ids.append(entry.id)
            docs += [(len(ids) - 1, t, w, k) for t, w, k in documents(entry)]
        self.min_lead, self.min_coverage, self.offtopic_ratio = min_lead, min_coverage, offtopic_ratio
        self._build(ids, docs, offtopic_examples() if offtopic is None else offtopic)

    @classmethod
    def from_documents(cls, ids: Sequence[str], docs: Sequence[tuple[int, str, float, str]], *,
                       offtopic: Sequence[str] = (), cache: dict[str, dict[str, float]] | None = None,
                       min_lead: float = MIN_LEAD, min_coverage: float = MIN_COVERAGE,
                       offtopic_ratio: float = OFFTOPIC_RATIO) -> Matcher:
        """A matcher over explicit (entry index, text, weight, kind) documents — for tuning."""
        self = cls.__new__(cls)
        self.min_lead, self.min_coverage, self.offtopic_ratio = min_lead, min_coverage, offtopic_ratio
        self._build(list(ids), docs, offtopic, cache)
        return self

    # -- building ---------------------------------------------------------------------------------

    @staticmethod
    def _features(text: str, cache: dict[str, dict[str, float]] | None) -> dict[str, float]:
        v = cache.get(text) if cache is not None else None
        if v is None:
            v = features(text)
            if cache is not None:
                cache[text] = v
        return v

    def _weighted(self, v: Mapping[str, float]) -> dict[str, float]:
        """TF-IDF weights of a feature vector, unit length."""
        idf, unseen = self._idf, self._unseen_idf
        w = {f: tf * idf.get(f, unseen) for f, tf in v.items()}
        norm = math.sqrt(sum(x * x for x in w.values())) or 1.0
        return {f: x / norm for f, x in w.items()}

    def _build(self, ids, docs, offtopic: Sequence[str], cache=None) -> None:
        self.ids = ids
        vectors = [self._features(text, cache) for _, text, _, _ in docs]
        df: dict[str, int] = defaultdict(int)
        for v in vectors:
            for f in v:
                df[f] += 1
        n = len(vectors)
        self._idf = {f: (math.log((n + 1) / (k + 1)) + 1.0) ** IDF_POWER for f, k in df.items()}
        self._unseen_idf = (math.log(n + 1) + 1.0) ** IDF_POWER
        weighted = [self._weighted(v) for v in vectors]
        # Profiles: one pooled vector per entry (the off-topic comparison's scale, see ``scores``).
        profiles: list[dict[str, float]] = [defaultdict(float) for _ in ids]
        for (e, _, weight, _), w in zip(docs, weighted, strict=True):
            profile = profiles[e]
            for f, x in w.items():
                profile[f] += weight * x
        self._profiles: list[dict[str, float]] = []  # unit length
        for profile in profiles:
            norm = math.sqrt(sum(x * x for x in profile.values())) or 1.0
            self._profiles.append({f: x / norm for f, x in profile.items()})
        self._train(weighted, [e for e, _, _, _ in docs])
        # Titles and example questions typed (or tapped) as they are: that entry, whatever the scores.
        exact: dict[str, int | None] = {}
        for e, text, _, kind in docs:
            if kind != "answer":
                key = exact_key(text)
                exact[key] = e if exact.get(key, e) == e else None
        self._exact = {k: e for k, e in exact.items() if e is not None and k}
        self.documents = len(docs)
        # Off-topic examples: each its own vector (the nearest one counts), with the knowledge base's IDF;
        # they take no part in IDF or coverage, which describe the knowledge base.
        off: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for d, text in enumerate(offtopic):
            for f, x in self._weighted(self._features(text, cache)).items():
                off[f].append((d, x))
        self._offtopic = dict(off)
        self.offtopic_examples = len(offtopic)

    def _train(self, weighted: list[dict[str, float]], labels: list[int]) -> None:
        """Multinomial logistic regression over the documents' TF-IDF vectors (scikit-learn's SAG solver:
        ~0.5 s for 24 entries and 1,000 documents, where L-BFGS took 8 s to the same accuracy)."""
        self._vocab: dict[str, int] = {}
        if len(set(labels)) < 2:  # one entry (or none): nothing to tell apart
            self._coef = self._intercept = None
            return
        import numpy as np
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression

        rows, cols, vals = [], [], []
        for r, w in enumerate(weighted):
            for f, x in w.items():
                rows.append(r)
                cols.append(self._vocab.setdefault(f, len(self._vocab)))
                vals.append(x)
        x = csr_matrix((vals, (rows, cols)), shape=(len(weighted), len(self._vocab)))
        model = LogisticRegression(C=REGULARISATION, solver="sag", tol=1e-3, max_iter=1000, random_state=0)
        model.fit(x, labels)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row (for the second class)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
        # Columns in entry order (classes_ are the entry indices that have documents).
        self._coef = np.zeros((len(self._vocab), len(self.ids)))
        self._intercept = np.full(len(self.ids), -1e9)
        for k, e in enumerate(model.classes_):
            self._coef[:, e] = coef[k]
            self._intercept[e] = intercept[k]

    # -- answering ------------------------------------------------------------------------------------

    def probabilities(self, question: str) -> list[tuple[str, float]]:
        """Every entry with the classifier's probability, best first."""
        return self._probabilities(self._weighted(features(question)))

    def _probabilities(self, w: Mapping[str, float]) -> list[tuple[str, float]]:
        if self._coef is None:
            return [(i, 1.0) for i in self.ids]
        import numpy as np

        known = [(self._vocab[f], x) for f, x in w.items() if f in self._vocab]
        z = self._intercept.copy()
        if known:
            idx, vals = zip(*known, strict=True)
            z += np.asarray(vals) @ self._coef[list(idx)]
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        return [(self.ids[e], float(p[e])) for e in order]

    def scores(self, question: str) -> tuple[list[tuple[str, float]], float]:
        """Every entry with a non-zero profile score, best first, and the question's coverage.

        Coverage is the share of the question's (squared) feature weight that occurs anywhere in the
        knowledge base; a score is the cosine with the entry's profile divided by
        ``coverage ** COVERAGE_POWER``, so words the knowledge base has never seen do not drag a
        good match down — the coverage itself is checked against ``min_coverage`` instead.
        """
        weighed = self._coverage(features(question))
        if weighed is None:
            return [], 0.0
        weights, coverage, scale = weighed
        totals = [self._profile_dot(weights, e) for e in range(len(self.ids))]
        ranked = sorted(((s * scale, e) for e, s in enumerate(totals) if s > 0), key=lambda se: (-se[0], se[1]))
        return [(self.ids[e], s) for s, e in ranked], coverage

    def _coverage(self, q: Mapping[str, float]) -> tuple[dict[str, float], float, float] | None:
        """The question's TF-IDF weights, its coverage and the scale of its profile scores (see ``scores``); None
        when nothing of it occurs in the knowledge base."""
        idf, unseen = self._idf, self._unseen_idf
        weights = {f: tf * idf.get(f, unseen) for f, tf in q.items()}
        total = sum(x * x for x in weights.values())
        known = sum(x * x for f, x in weights.items() if f in idf)
        if not known:
            return None
        coverage = known / total
        return weights, coverage, 1.0 / (math.sqrt(total) * coverage ** COVERAGE_POWER)

    def _profile_dot(self, weights: Mapping[str, float], e: int) -> float:
        profile = self._profiles[e]
        dot = 0.0
        for f, x in weights.items():
            y = profile.get(f)
            if y is not None:
                dot += x * y
        return dot

    def offtopic_score(self, question: str) -> float:
        """Cosine of the question with the closest off-topic example (same scale as ``scores``)."""
        return self._offtopic_score(self._weighted(features(question)))

    def _offtopic_score(self, w: Mapping[str, float]) -> float:
        if not self._offtopic:
            return 0.0
        dots: dict[int, float] = defaultdict(float)
        for f, x in w.items():
            for d, y in self._offtopic.get(f, ()):
                dots[d] += x * y
        return max(dots.values(), default=0.0)

    def signals(self, question: str) -> tuple[list[tuple[str, float]], float, float, float]:
        """What the decision rests on: entries by probability, coverage, the top entry's profile score and
        the off-topic score (``bench/qa/tune.py`` records these to choose the settings)."""
        ranked, coverage = self.scores(question)
        if not ranked:
            return self.probabilities(question), 0.0, 0.0, 0.0
        probs = self.probabilities(question)
        profile = dict(ranked).get(probs[0][0], 0.0)
        return probs, coverage, profile, self.offtopic_score(question)

    def _decision_signals(self, question: str) -> tuple[list[tuple[str, float]], float, float, float]:
        """``signals`` as ``match`` needs them, at less cost: the question's features worked out once; the profile
        score of the most probable entry only (``scores`` works out every entry's); and the off-topic score only
        when the answer would otherwise be given (it can only veto). The same numbers as ``signals``."""
        q = features(question)
        w = self._weighted(q)
        probs = self._probabilities(w)
        weighed = self._coverage(q)
        if weighed is None:
            return probs, 0.0, 0.0, 0.0
        weights, coverage, scale = weighed
        dot = self._profile_dot(weights, self.ids.index(probs[0][0]))
        profile = dot * scale if dot > 0 else 0.0
        if lead(probs) < self.min_lead or coverage < self.min_coverage:
            return probs, coverage, profile, 0.0  # not sure whatever the off-topic score
        return probs, coverage, profile, self._offtopic_score(w)

    def match(self, question: str) -> Result:
        chat = smalltalk.kind(question)
        if chat is not None:
            return Result(None, 0.0, [], small_talk=chat)
        probs, coverage, profile, off = self._decision_signals(question)
        exact = self._exact.get(exact_key(question))
        if exact is not None:
            top = self.ids[exact]
            probs = [(top, 1.0)] + [(i, p) for i, p in probs if i != top]
        candidates = [(i, round(p, 4)) for i, p in probs[:CANDIDATES]]
        if not probs or (coverage == 0.0 and exact is None):
            return Result(None, 0.0, candidates)
        top, p1 = probs[0]
        confident = exact is not None or (
            lead(probs) >= self.min_lead and coverage >= self.min_coverage and off < self.offtopic_ratio * profile)
        return Result(top if confident else None, round(p1, 4), candidates)
