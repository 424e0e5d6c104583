"""What a turn's reply must say and must leave out, so the reply check measures the work.

* A refusal names its reason: a word of the CRM's own error (the field, the rule or the
  missing record), so a blanket "I can't" fails.
* A read turn asks for what the results hold and the user did not say: facts the user's
  words already contain are dropped (repeating the question would pass them), and a
  turn whose remaining facts are only small counts is not asked (a guess would pass).
* A read turn also lists records that do not match the request (``must_not_mention``):
  values a reply that dumps every search result would show, and an honest reply never
  needs — never in the turn's results, the user's words, or what the conversation has
  said so far, and never overlapping a required fact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_crmbench.dataset.facts import fact_present

# (a phrase of the CRM error, the fact that names the reason); first match wins.
_REASONS: tuple[tuple[str, str], ...] = (
    ("Close date must be", "close date"),
    ("Probability must be", "probability"),
    ("Cannot modify closed opportunity", "closed"),
    ("must not exceed 10,000,000", "10,000,000"),
    ("already exists with email", "already exists"),
    ("must be a valid email", "valid"),
    ("end date must not be before", "end date"),
    ("may only include letters", "file name"),
    ("must include an extension", "extension"),
    ("does not belong to client", "belong"),
)
_EXTENSION = re.compile(r"extension '\.([^']+)' is not supported")
_NOT_FOUND = re.compile(r"^(\w+) not found with ID")
_SMALL = re.compile(r"\$?(\d{1,2})%?")

#: Read tools whose answer is the whole table: nothing to over-report.
UNBOUNDED = frozenset({"quote_prefixes"})


def reason_fact(error: str) -> str:
    """The word of a CRM error that says why the request was refused."""
    m = _EXTENSION.search(error)
    if m:
        return m.group(1).lower()
    m = _NOT_FOUND.match(error)
    if m:
        return m.group(1).lower()  # the missing record: "opportunity", "quote" …
    for needle, fact in _REASONS:
        if needle in error:
            if fact.casefold() not in error.casefold():
                raise ValueError(f"reason {fact!r} is not in the error {error!r}")
            return fact
    raise ValueError(f"no reason fact for the CRM error {error!r}")


def echoed(fact: str, user: str) -> bool:
    """Whether repeating the user's words would already convey ``fact``."""
    return fact_present(fact, user)


def guessable(fact: str) -> bool:
    """A small number (0–10, a count or a percentage): a reply listing a few numbers
    would hit it by chance."""
    m = _SMALL.fullmatch(fact.strip())
    return m is not None and int(m.group(1)) <= 10


def result_text(results: Sequence[Any]) -> str:
    """Results as searchable text, with what a reply may compose from them: list sizes
    (counts), contacts' full names and the sum of the amounts (a total)."""
    extra: list[str] = []
    amounts: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            extra.append(str(len(value)))
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            first, last = value.get("first_name"), value.get("last_name")
            if isinstance(first, str) and isinstance(last, str):
                extra.append(f"{first} {last}")
            for key in ("amount", "value"):
                if isinstance(value.get(key), int | float):
                    amounts.append(float(value[key]))
            for item in value.values():
                walk(item)

    walk(list(results))
    if amounts:
        extra.append(f"{sum(amounts):.2f}")
    return json.dumps(list(results), ensure_ascii=False, default=str) + "\n" + "\n".join(extra)


def clean_avoid(
    candidates: Iterable[str],
    *,
    results: str,
    user: str,
    facts: Sequence[str],
    earlier: Sequence[str],
    limit: int = 3,
) -> list[str]:
    """The first ``limit`` candidates an honest reply has no reason to mention."""
    said = "\n".join([user, *earlier])
    out: list[str] = []
    for value in candidates:
        if not value.strip() or value in out:
            continue
        if fact_present(value, results) or fact_present(value, said):
            continue
        if any(fact_present(value, f) or fact_present(f, value) for f in facts):
            continue
        out.append(value)
        if len(out) == limit:
            break
    return out


# == notes ===========================================================================
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "of",
        "on",
        "or",
        "the",
        "to",
        "was",
        "were",
        "with",
        "after",
        "before",
        "their",
        "our",
        "they",
        "we",
    ]
)
_CLAUSE = re.compile(r"[.;:,()!?\"]+|\s[—–-]\s")


def note_phrase(content: str, others: Sequence[str] = ()) -> str:
    """A distinctive phrase of a note: 3–7 words of one clause, no punctuation inside,
    not found in the other notes — what a reply that relays the note will contain."""
    for clause in _CLAUSE.split(content):
        words = clause.split()
        for size in range(4, 8):
            cut = words[:size]
            while cut and cut[-1].lower() in _STOP:
                cut.pop()
            if len(cut) < 3:
                continue
            phrase = " ".join(cut)
            if not any(fact_present(phrase, o) for o in others):
                return phrase
    return content.strip()
