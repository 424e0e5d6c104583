"""How users say things: template alternatives, amounts, dates, registers.

Templates use ``[a|b|c]`` for alternatives (nesting allowed, ``[a|]`` = optional) and
``<name>`` for values, so no braces ever reach a user's words. Every choice is drawn
from the caller's ``random.Random``; nothing here depends on set or dict order.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from datetime import date

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_VAR = re.compile(r"<([A-Za-z_0-9]+)>")


def _expand_once(rng: random.Random, text: str) -> str:
    """Resolve the innermost ``[..|..]`` groups, left to right."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "[":
            depth, j = 1, i + 1
            while j < len(text) and depth:
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]":
                    depth -= 1
                j += 1
            inner = text[i + 1 : j - 1]
            parts: list[str] = []
            level, start = 0, 0
            for k, c in enumerate(inner):
                if c == "[":
                    level += 1
                elif c == "]":
                    level -= 1
                elif c == "|" and level == 0:
                    parts.append(inner[start:k])
                    start = k + 1
            parts.append(inner[start:])
            out.append(_expand_once(rng, rng.choice(parts)))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def expand(rng: random.Random, template: str, values: Mapping[str, str] | None = None) -> str:
    """One rendering of ``template``: alternatives chosen, ``<name>`` values filled in."""
    text = _expand_once(rng, template)
    if values is not None:

        def fill(m: re.Match[str]) -> str:
            return values[m.group(1)]

        text = _VAR.sub(fill, text)
    if "<" in text or ">" in text or "[" in text or "|" in text:
        raise ValueError(f"template left unrendered: {text!r}")
    return tidy(text)


def say(rng: random.Random, templates: Sequence[str] | str, **values: str) -> str:
    """Pick one template (if several) and render it."""
    template = templates if isinstance(templates, str) else rng.choice(list(templates))
    return expand(rng, template, values)


def tidy(text: str) -> str:
    """Collapse the double spaces and stray spaces that optional parts leave behind."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:?!])", r"\1", text)
    text = re.sub(r",,", ",", text)
    text = re.sub(r"(?<!\.)\.\.(?!\.)", ".", text)  # "Solstice Solar Co.." -> "Co."
    return text


def cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():
        return text  # an acronym or a name: keep
    return text[:1].lower() + text[1:] if text else text


# == numbers ========================================================================
def _words_below_1000(n: int) -> str:
    parts: list[str] = []
    if n >= 100:
        parts.append(_ONES[n // 100] + " hundred")
        n %= 100
    if n >= 20:
        parts.append(_TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else ""))
    elif n:
        parts.append(_ONES[n])
    return " ".join(parts)


def spell_amount(amount: float) -> str | None:
    """Words for round amounts one can say reliably (``eighty-five thousand``), else None."""
    if amount != int(amount):
        return None
    n = int(amount)
    if n >= 1_000_000:
        if n % 1_000_000 == 0 and n // 1_000_000 < 20:
            return _ONES[n // 1_000_000] + " million"
        if n % 500_000 == 0 and n // 1_000_000 < 20:
            return _ONES[n // 1_000_000] + " and a half million"
        return None
    if n % 1000 or n < 1000:
        return None
    return _words_below_1000(n // 1000) + " thousand"


def money_fact(amount: float) -> str:
    """The canonical written form used in reply facts: ``85,000`` (cents only if needed)."""
    if amount == int(amount):
        return f"{int(amount):,}"
    return f"{amount:,.2f}"


def _short_k(amount: float) -> str | None:
    n = int(amount)
    if amount != n:
        return None
    if n >= 1_000_000 and n % 10_000 == 0:
        m = n / 1_000_000
        text = f"{m:.2f}".rstrip("0").rstrip(".")
        return f"{text}M"
    if n % 1000 == 0 and n < 1_000_000:
        return f"{n // 1000}K"
    if n % 100 == 0 and 10_000 <= n < 1_000_000:
        return f"{n / 1000:.1f}K"
    return None


def money(rng: random.Random, amount: float) -> str:
    """The amount as a user writes it: $85K, 85,000, $85,000, 85000 dollars, eighty-five..."""
    forms = [f"${money_fact(amount)}", money_fact(amount), f"${money_fact(amount)}"]
    n = int(amount)
    if amount == n:
        forms.append(f"{n} dollars")
        forms.append(f"{money_fact(amount)} dollars")
        if n < 1_000_000:
            forms.append(str(n))
    short = _short_k(amount)
    if short:
        forms += [f"${short}", f"${short}", short.lower() if short.endswith("K") else short]
    words = spell_amount(amount)
    if words:
        forms += [words, words + " dollars"]
    return rng.choice(forms)


def money_adj(rng: random.Random, amount: float) -> str:
    """The amount as a modifier ("the $38.5K one", "the $38,500 quote")."""
    short = _short_k(amount)
    forms = [f"${money_fact(amount)}"] + ([f"${short}"] if short else [])
    return rng.choice(forms)


# == dates ==========================================================================
def date_forms(day: date, today: date, *, with_short: bool = True) -> list[str]:
    forms = [
        day.isoformat(),
        day.isoformat(),
        f"{_MONTHS[day.month - 1]} {day.day}, {day.year}",
        f"{_MONTHS[day.month - 1][:3]} {day.day}, {day.year}",
        f"{day.day} {_MONTHS[day.month - 1]} {day.year}",
    ]
    # Without a year only when the next such day after today is unambiguous.
    if with_short and today < day and (day - today).days < 300:
        forms += [f"{_MONTHS[day.month - 1][:3]} {day.day}", f"{_MONTHS[day.month - 1]} {day.day}"]
    return forms


def say_date(rng: random.Random, day: date, today: date, *, with_short: bool = True) -> str:
    return rng.choice(date_forms(day, today, with_short=with_short))


def percent(rng: random.Random, value: float) -> str:
    text = str(int(value)) if value == int(value) else str(value)
    return rng.choice([f"{text}%", f"{text}%", f"{text} percent"])


# == registers ======================================================================
# Openers are many and each rare, and most requests have none: no stock phrase may open
# more than 1 % of a dataset's turns (``crmbench lint``'s stock-phrase check).
_NONE = ("",) * 14
_OPENERS_FIRST = (
    *_NONE,
    *("",) * 6,
    "Hi! ",
    "Hey, ",
    "Morning! ",
    "Quick one: ",
    "Hello, ",
    "Hi there. ",
    "Good morning. ",
    "Hey there! ",
    "Hi team, ",
    "Afternoon! ",
    "Hello! ",
    "Got a sec? ",
    "Hiya. ",
    "Quick request: ",
)
_ONE_WORD_NEXT = (
    "Thanks. ",
    "Great. ",
    "OK, ",
    "Perfect. ",
    "Next, ",
    "Now ",
    "Also, ",
    "Good. ",
    "Alright, ",
    "And ",
    "Nice. ",
    "Super. ",
    "Right. ",
    "Excellent. ",
    "Okay. ",
    "Lovely. ",
    "Cheers. ",
    "Awesome. ",
    "Then ",
    "Noted. ",
    "Fine. ",
    "So ",
    "Brilliant. ",
    "Understood. ",
    "Wonderful. ",
    "Splendid. ",
    "Sure. ",
    "Excellent, ",
)
_OPENERS_NEXT = (
    *_NONE * 3,
    *_ONE_WORD_NEXT * 2,  # a one-word opener pairs with varied next words
    "Cool, thanks! ",
    "Got it. ",
    "Sounds good. ",
    "Thank you. ",
    "Moving on: ",
    "Another thing: ",
    "Oh, and ",
    "By the way, ",
    "While you're at it, ",
    "Next up: ",
    "Quick follow-up: ",
    "Much appreciated. ",
    "That works. ",
)
# How a request is put (<c>: the core, lower-cased; <C>: capitalised) …
_LEADS = (
    *("<C>.",) * 30,
    *("Please <c>.",) * 8,
    "Could you <c>?",
    "Can you <c>?",
    "Would you <c>?",
    "Can we <c>?",
    "Could we <c>?",
    "I need you to <c>.",
    "I'd like you to <c>.",
    "Let's <c>.",
    "Go ahead and <c>.",
    "Time to <c>.",
    "We need to <c>.",
    "Help me <c>.",
    "Kindly <c>.",
    "Mind if we <c>?",
    "I want to <c>.",
    "Need you to <c>.",
    "When you can, <c>.",
    "If you don't mind, <c>.",
    "Quick favour: <c>.",
    "Do me a favour and <c>.",
    "Just <c>.",
)
# Leads that speak for the user ("Let's …"): not for a core about "me" ("show me …").
_WE_LEADS = frozenset(
    f
    for f in _LEADS
    if f.startswith(
        (
            "Let's",
            "We ",
            "Mind",
            "Would you mind",
            "I want",
            "Can we",
            "Could we",
            "Time",
            "Help me",
        )
    )
)
_ME = re.compile(r"\b(?:me|my)\b", re.IGNORECASE)
# Closers that say when: not after a request that names a date.
_WHEN = frozenset(
    {" today", " this morning", " before lunch", " now", " soon", " asap", " right away"}
    | {" before my next call", " when you're free"}
)
_DATED = re.compile(
    r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\b(?:today|tomorrow|quarter|month|week)\b|"
    r"\b(?:" + "|".join(m for name in _MONTHS for m in (name, name[:3])) + r")\b",
    re.IGNORECASE,
)
# … and what may follow it (most requests end with their own words).
_CLOSERS = (
    *("",) * 80,
    " for me",
    " when you get a chance",
    " if you can",
    " when you have a moment",
    ", thanks",
    ", thank you",
    " — thanks",
    ", cheers",
    " today",
    " if possible",
    " asap",
    " right away",
    ", please",
    " soon",
    " at your convenience",
    " this morning",
    " before my next call",
    " for the team",
    " while you're in there",
    " — much appreciated",
    ", ta",
    " if that's OK",
    " now",
    " when you're free",
    " before lunch",
    " — cheers",
)
_QUESTION_OPENERS_FIRST = (
    *_NONE,
    *("",) * 6,
    "Quick question: ",
    "Hey, ",
    "Hi! ",
    "Question: ",
    "Hello, ",
    "Morning! ",
    "Just checking: ",
    "Hi there. ",
    "Quick check: ",
    "Curious: ",
)
_QUESTION_OPENERS_NEXT = (
    *_NONE * 3,
    "Thanks! ",
    "OK, and ",
    "And also, ",
    "Great! ",
    "One more thing: ",
    "Next: ",
    "Understood — ",
    "Another question: ",
    "Perfect! ",
    "Right, and ",
    "Cheers! ",
    "Very good. ",
    "Also curious: ",
    "OK then: ",
    "Many thanks. ",
    "Quick check: ",
    "Nice one. ",
    "Remind me: ",
    "Just wondering: ",
    "Follow-up question: ",
    "Different topic: ",
    "Side question: ",
)


_KEEP_CASE = ("I ", "I'")
_COMMON_FIRST = (
    "We ",
    "We've ",
    "We're ",
    "The ",
    "That ",
    "This ",
    "Our ",
    "New ",
    "Two ",
    "Note ",
    "Great ",
    "Sorry",
    "My ",
    "Right",
    "Fine",
    "Ah",
    "It ",
    "It's ",
    "Their ",
    "Opportunity ",
    "Pipeline ",
)


def _join(opener: str, body: str, *, imperative: bool = False) -> str:
    """Opener + body, lower-casing the body's first word when the opener runs on."""
    if opener.endswith((", ", "Now ", "And ", "and ", "Then ", "So ")) and not body.startswith(
        _KEEP_CASE
    ):
        if imperative or body.startswith(_COMMON_FIRST) or body[:1].islower():
            body = body[:1].lower() + body[1:]
    elif opener.endswith(": "):
        pass
    else:
        body = cap(body)
    return tidy(opener + body)


def _end(body: str, mark: str) -> str:
    """Final punctuation, unless the body already ends a quoted sentence."""
    if re.search(r"[.!?]['\"]$", body) or body.endswith(("!", "?")):
        return body
    return body + mark


def request(rng: random.Random, core: str, *, first: bool, opener: bool = True) -> str:
    """Wrap a request in a register: polite, terse, chatty.

    ``core`` is an imperative ("log a deal ...") that may be wrapped in "Could you ...?";
    a core starting with ``!`` is a statement ("we won the deal! ...") said as it is.
    """
    statement = core.startswith("!")
    core = core.lstrip("!").strip()
    if core.endswith(".") and not re.search(r"[.!?]['\"]\.$", core):
        core = core[:-1]
    several = any(mark in core for mark in (". ", "? ", "! "))
    start = rng.choice(_OPENERS_FIRST if first else _OPENERS_NEXT) if opener else ""
    if statement or several:
        return _join(start, _end(core, "."))
    form = rng.choice(_LEADS)
    if form in _WE_LEADS and _ME.search(core):
        form = "<C>."
    closer = rng.choice(_CLOSERS)
    if ("please" in closer and "please" in (form + core).lower()) or (
        closer == " for me" and " me" in core
    ):
        closer = ""
    if re.search(r"[.!?]['\"]$", core):
        closer = ""  # the core ends with quoted words: nothing after them
    if closer in _WHEN and _DATED.search(core):
        closer = ""  # "… to March 15 today" would blur the date
    c = lower_first(core)
    tail = form[-1]
    body = form[:-1].replace("<C>", cap(c) + closer).replace("<c>", c + closer)
    return _join(start, _end(body, tail), imperative=True)


def question(rng: random.Random, text: str, *, first: bool) -> str:
    """A question as the user asks it (lighter wrapping than requests)."""
    text = text.strip()
    opener = rng.choice(_QUESTION_OPENERS_FIRST if first else _QUESTION_OPENERS_NEXT)
    if opener.endswith(": "):
        return tidy(opener + lower_first(text))
    return _join(opener, cap(text), imperative=True) if opener else tidy(cap(text))


def topic_words(topic: str) -> str:
    """A deal topic inside a sentence: 'Claims Analytics' -> 'claims analytics' (API kept)."""
    return " ".join(
        w if w.isupper() or (len(w) > 1 and w[1].isupper()) else w.lower() for w in topic.split()
    )


def quoted(rng: random.Random, name: str) -> str:
    """A name as the user writes it: quoted or bare."""
    return rng.choice([f"'{name}'", f'"{name}"', name, f"'{name}'"])


def quote_text(rng: random.Random, text: str) -> str:
    """Free text the user dictates (always quoted, so it is unambiguous)."""
    return rng.choice([f"'{text}'", f'"{text}"'])
