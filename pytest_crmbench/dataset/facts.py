"""Whether a reply conveys a fact: numbers, amounts and dates in the forms people write.

Part of the dataset layer because both the verdict (required facts in a reply) and the
dataset tools (is a value stated in the user's words?) read text the same way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date

from pytest_crmbench.crm.validation import parse_date

_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−"})


def norm_text(text: str) -> str:
    """Case-, whitespace- and dash-insensitive form of free text."""
    return " ".join(text.translate(_DASHES).casefold().split())


_NUM_RE = re.compile(
    r"(?<![\w.])\$?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s?(k|m|bn|b|thousand|million|billion)?\b",
    re.IGNORECASE,
)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_FACT_NUM_RE = re.compile(
    r"\$?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s?(k|m|bn|b|thousand|million|billion)?%?"
)
_MONTHS = [
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
]


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text``: 85000, 85,000, $85K, 1.2M, 85 thousand."""
    out = []
    for whole, frac, scale in _NUM_RE.findall(text):
        value = float(whole.replace(",", "") + (frac or ""))
        if scale:
            value *= _SCALE[scale.lower()]
        out.append(value)
    return out


def _fact_number(fact: str) -> float | None:
    m = _FACT_NUM_RE.fullmatch(fact.strip())
    if not m:
        return None
    value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
    if m.group(3):
        value *= _SCALE[m.group(3).lower()]
    return value


def _date_forms(day: date) -> list[str]:
    month = _MONTHS[day.month - 1]
    short = month[:3]
    d, y = day.day, day.year
    return [
        day.isoformat(),
        f"{month} {d}, {y}",
        f"{month} {d} {y}",
        f"{short} {d}, {y}",
        f"{short} {d} {y}",
        f"{d} {month} {y}",
        f"{d} {short} {y}",
        f"{day.month:02d}/{d:02d}/{y}",
        f"{day.month}/{d}/{y}",
    ]


@functools.lru_cache(maxsize=8)
def _reply_text(reply: str) -> str:
    # Cached: a turn checks several facts (required and unwanted) against one reply.
    return norm_text(reply)


@functools.lru_cache(maxsize=8)
def _reply_numbers(reply: str) -> tuple[float, ...]:
    return tuple(numbers_in(reply))


def fact_present(fact: str, reply: str) -> bool:
    """Whether one required fact is conveyed by the reply (normalised)."""
    text = _reply_text(reply)
    day = parse_date(fact.strip())
    if day is not None:
        plain = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text).replace(".", "")
        return any(form in plain for form in _date_forms(day))
    number = _fact_number(fact)
    if number is not None:
        return any(abs(n - number) < 0.005 for n in _reply_numbers(reply))
    return norm_text(fact) in text


def missing_facts(facts: Iterable[str], reply: str) -> list[str]:
    return [f for f in facts if not fact_present(f, reply)]
