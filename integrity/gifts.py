"""The gift decision helper: "I received (or was offered) a gift — may I keep it?"

The answer follows the BMA No Gift Policy (no gifts of any kind arising from one's duties,
stricter than the law) and, where the policy is silent, the law: Organic Act on
Anti-Corruption B.E. 2561 s.128 with the NACC announcement of 2563 (from relatives as custom
allows; from others up to 3,000 baht per person per occasion; more must be reported to the head
of the agency, who decides), and the Prime Minister's Office regulation on gifts B.E. 2565
(in force since 14 January 2023, replacing that of 2544; gifts to superiors). When in doubt
the helper takes the safe side. Figures are marked for the office's legal owner to confirm
(DOMAIN.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

LIMIT_BAHT = 3000  # per person per occasion (NACC announcement 2563)
GIVERS = ("relative", "served", "contractor", "colleague", "other")
OCCASIONS = ("festival", "personal", "after_service")
VALUES = ("small", "large", "unsure")  # ≤ 3,000 baht; more; not sure
DUTIES = ("yes", "no", "unsure")


def value_of(amount: Decimal | int) -> str:
    """The value answer for a known amount: "small" up to the limit (3,000.00 is not over), else "large"."""
    return "small" if amount <= LIMIT_BAHT else "large"


@dataclass(frozen=True)
class Verdict:
    key: str  # catalog suffix: gift_v_<key>
    may_keep: bool
    actions: tuple[str, ...]  # catalog suffixes: gift_do_<action>
    sources: tuple[str, ...]  # catalog suffixes: gift_src_<source>
    related: tuple[str, ...]  # knowledge-base ids to offer next


def decide(giver: str, occasion: str, value: str, duties: str) -> Verdict:
    if giver not in GIVERS or occasion not in OCCASIONS or value not in VALUES or duties not in DUTIES:
        raise ValueError("unknown answer")
    if giver == "contractor":
        # A contractor or bidder gives because of the work, whatever the occasion.
        return Verdict("contractor", False, ("decline", "return", "report"), ("policy", "s128", "s176"),
                       ("gift.offered", "gift.report", "gift.penalty"))
    if giver == "served" or occasion == "after_service" or duties in ("yes", "unsure"):
        return Verdict("duty", False, ("decline", "return", "hand_over", "report"), ("policy", "s128"),
                       ("gift.policy", "gift.offered", "gift.report"))
    if giver == "relative":
        return Verdict("relative", True, ("keep_custom",), ("s128", "nacc2563"), ("gift.relatives", "gift.policy"))
    # From here the value decides. Not knowing it is not a fact about it: the verdict says that it
    # depends, and takes the safe side (it may be over the limit).
    if giver == "colleague":
        if value == "small" and occasion in ("festival", "personal"):
            return Verdict("colleague_small", True, ("prefer_blessing",), ("pmo2565", "policy"),
                           ("gift.superior", "gift.festival"))
        return Verdict("colleague_unsure" if value == "unsure" else "colleague_large", False, ("return", "report"),
                       ("pmo2565", "s128"), ("gift.superior", "gift.report"))
    # someone else, for a reason unrelated to the work
    if value == "small":
        return Verdict("other_small", True, ("prefer_blessing",), ("s128", "nacc2563", "policy"),
                       ("gift.limit", "gift.policy"))
    return Verdict("other_unsure" if value == "unsure" else "other_large", False, ("report", "return"),
                   ("s128", "nacc2563"), ("gift.limit", "gift.report"))
