"""Whether the user's words state the literal values a reference call needs.

A conversation is only fair when every value the agent must send is either said by the
user or discoverable with the tools. Ids are discoverable (searches return them), and so
are references to earlier results; every other literal — an amount, a stage, a
probability, a status, a name, an email, a date — must appear in what the user said so
far. Comparison is normalised: numbers in any written form (``85000``, ``85,000``,
``$85K``, ``eighty-five thousand``, ``25%``), dates in the usual formats (with or without
the year when the day is unambiguous), text case-insensitively word by word.

Used by the Arc importer (an unstated value is a dataset defect) and by ``crmbench lint``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from pytest_crmbench.crm.catalog import BY_TOOL
from pytest_crmbench.crm.validation import canonical_id, parse_date
from pytest_crmbench.dataset.facts import fact_present, numbers_in

# Arguments that point at records rather than carry values the user must say: ids, id
# lists, and the type half of a polymorphic pointer (``entity_type`` + ``entity_id``).
_POINTER_KEYS = frozenset({"entity_type", "quote_ids"})

_WORD = re.compile(r"\w+", re.UNICODE)
_ONES = {
    w: i
    for i, w in enumerate(
        (
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
            *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
            *("seventeen", "eighteen", "nineteen"),
        )
    )
}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate(
        ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
    )
}
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_MONTHS = (
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
)


def _is_pointer(key: str, value: Any) -> bool:
    if key in _POINTER_KEYS or key.endswith(("_id", "_ids")):
        return True
    return isinstance(value, str) and canonical_id(value.strip()) is not None


def literal_values(args: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every literal the user must state; ``updates``/``criteria``
    objects are walked, ids and references (``{{turn_N.x}}``) are left out."""
    for key, value in args.items():
        path = f"{prefix}{key}"
        if value is None or isinstance(value, bool) or _is_pointer(str(key), value):
            continue
        if isinstance(value, Mapping):
            yield from literal_values(value, path + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from literal_values(item, f"{path}[{i}].")
                elif not (
                    item is None
                    or isinstance(item, bool)
                    or _is_pointer(key, item)
                    or (isinstance(item, str) and "{{" in item)
                ):
                    yield f"{path}[{i}]", item
        elif isinstance(value, str) and "{{" in value:
            continue
        else:
            yield path, value


def spelled_numbers(text: str) -> list[float]:
    """Numbers written in words: ``eighty-five thousand``, ``two and a half million``."""
    found: list[float] = []
    for segment in re.split(r"[^\w\s-]", text):
        found += _spelled_in(segment.replace("-", " ").casefold().split())
    return found


def _spelled_in(words: list[str]) -> list[float]:
    found: list[float] = []
    total = current = 0.0
    last = ""  # kind of the previous number word ("" = not inside a number)

    def flush() -> None:
        nonlocal total, current, last
        if last:
            found.append(total + current)
        total = current = 0.0
        last = ""

    i = 0
    while i < len(words):
        w = words[i]
        if w in _ONES:
            kind = "unit" if _ONES[w] < 10 else "teen"
            if last not in ("", "hundred", "scale", "and") and not (
                kind == "unit" and last == "tens"
            ):
                flush()
            current += _ONES[w]
            last = kind
        elif w in _TENS:
            if last not in ("", "hundred", "scale", "and"):
                flush()
            current += _TENS[w]
            last = "tens"
        elif w == "hundred" and last in ("unit", "teen", "tens"):
            current = current % 100 * 100
            last = "hundred"
        elif w in _SCALES and last in ("unit", "teen", "tens", "hundred"):
            total += current * _SCALES[w]
            current = 0.0
            last = "scale"
        elif (
            w == "and"
            and last in ("unit", "teen", "tens")
            and words[i + 1 : i + 3] == ["a", "half"]
        ):
            scale = _SCALES.get(words[i + 3], 0) if i + 3 < len(words) else 0
            if scale:
                total += (current + 0.5) * scale
                current = 0.0
                last = "scale"
                i += 4
                continue
            flush()
        elif w == "and" and last in ("hundred", "scale"):
            last = "and"
        else:
            if last == "and":
                last = "scale"
            flush()
        i += 1
    if last == "and":
        last = "scale"
    flush()
    return found


def _number_stated(value: float, said: str) -> bool:
    return any(abs(n - value) < 0.005 for n in [*numbers_in(said), *spelled_numbers(said)])


def _words(text: str) -> str:
    return " ".join(w.casefold() for w in _WORD.findall(text))


def _date_stated(day: date, said: str, today: date | None) -> bool:
    if fact_present(day.isoformat(), said):
        return True
    # Month and day without the year: fine when that day is the next such day after today.
    if today is not None and today <= day and (day - today).days < 366:
        text = " " + _words(re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", said)) + " "
        month = _MONTHS[day.month - 1]
        forms = (
            f"{month} {day.day}",
            f"{month[:3]} {day.day}",
            f"{day.day} {month}",
            f"{day.day} {month[:3]}",
        )
        return any(f" {form} " in text for form in forms)
    return False


def is_stated(value: Any, said: str, today: date | None = None) -> bool:
    """Whether one literal value appears in ``said`` (normalised)."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return _number_stated(float(value), said)
    if not isinstance(value, str):
        return _words(str(value)) in _words(said)
    day = parse_date(value.strip())
    if day is not None:
        return _date_stated(day, said, today)
    wanted = _words(value)
    if not wanted:
        return True  # punctuation only: nothing to say
    return f" {wanted} " in f" {_words(said)} "


def _loosely_stated(value: str, said: str) -> bool:
    """Every word of ``value`` is said somewhere (a plural counts): how a search term is
    built from a description ("the Acme deal for Data Platform Renewal")."""
    words = set(_words(said).split())
    return all({word, word + "s", word + "es"} & words for word in _words(value).split())


def unstated_values(
    tool: str, args: Mapping[str, Any], said: str, today: date | None = None
) -> list[tuple[str, Any]]:
    """The literal arguments of one call that ``said`` (the user's words so far) lacks.

    Search criteria (text and enum fields) only need their words said, in any order:
    the agent builds the search term from the user's description.
    """
    spec = BY_TOOL.get(tool)
    if spec is None:
        return []
    loose = {sf.name for sf in spec.search if sf.mode in ("text", "enum")}
    out = []
    for path, value in literal_values(args):
        key = path.rsplit(".", 1)[-1]
        if is_stated(value, said, today):
            continue
        if key in loose and isinstance(value, str) and _loosely_stated(value, said):
            continue
        out.append((path, value))
    return out


def describe_value(value: Any) -> str:
    """A short, readable rendering of a value for defect messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
