"""The shape every task and refusal shares, and the values several workflows use.

A task locates a record, phrases a request about it and commits the lookups plus its call;
the helpers take only what differs. Values are drawn from ``b.rng`` in a fixed order: the
dataset depends on that order, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_crmbench.dataset import workflows
from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import (
    CLOSED,
    KEY_OF,
    TABLE_OF,
    Builder,
    Call,
    Draft,
    Facts,
    Skip,
)
from pytest_crmbench.generate.precision import misses
from pytest_crmbench.generate.refer import Ref, locate
from pytest_crmbench.generate.replies import note_phrase

# The workflow names, from the one table of them.
OPP = workflows.OPPORTUNITY
CLIENT = workflows.CLIENT
CONTACT = workflows.CONTACT
QUOTE = workflows.QUOTE
CONTRACT = workflows.CONTRACT
COMPANY = workflows.COMPANY
DOCUMENT = workflows.DOCUMENT
NOTES = workflows.NOTES

m = P.money_fact
Wrap = Callable[[Builder, str], str]
Rubric = Callable[[list[Any]], str]


# == the user's words ================================================================
def req(b: Builder, core: str) -> str:
    return P.request(b.rng, core, first=b.first)


def ask(b: Builder, text: str) -> str:
    return P.question(b.rng, text, first=b.first)


def req_or_ask(b: Builder, text: str) -> str:
    return ask(b, text) if text.endswith("?") else req(b, text)


RECOVER_OPENERS = (
    "!sorry — <x>",
    "!my mistake, <x>",
    "!OK, <x>",
    "!right, <x>",
    "!fine, <x>",
    "!ah, of course. <X>",
    "!hm, OK. <X>",
    "!<x>",
)


def recovery(b: Builder, text: str) -> str:
    """A correction after a refusal ("sorry — use Dec 15 instead")."""
    said = P.say(b.rng, RECOVER_OPENERS, x=text, X=P.cap(text))
    return P.request(b.rng, said, first=False, opener=False)


# == one turn ========================================================================
# How templates name a located record: <opp>, <q>, <c>, <p>, <k>; with an "n" (<cn>,
# <pn>) a name usable as a subject; <it> may be a pronoun.
SLOT = {"opportunity": "opp", "quote": "q", "client": "c", "contact": "p", "contract": "k"}


def commit(
    b: Builder,
    topic: str,
    user: str,
    calls: Sequence[Call],
    facts: Facts | None = None,
    *,
    about: Sequence[tuple[str, str]] = (),
    shown: tuple[str, list[str]] | None = None,
    task: str = "",
    error: str | None = None,
    avoid: Facts | None = None,
    rubric: Rubric | None = None,
) -> None:
    """Execute one turn.

    ``task`` defaults to the last call's tool. ``shown`` are the records a search showed
    the user: one is talked about, several are a list to pick from. With ``error`` the
    turn is a refusal: its last call must fail with that message. ``avoid`` gives a read
    turn's records outside the answer (:mod:`..precision`); ``rubric`` a judge's brief.
    """
    mentions = list(about)
    listed = None
    if shown is not None and len(shown[1]) == 1:
        mentions.append((shown[0], shown[1][0]))
    elif shown is not None and len(shown[1]) > 1:
        listed = shown
    b.commit(
        Draft(
            user,
            list(calls),
            topic,
            task or calls[-1].tool,
            facts=facts,
            expect="success" if error is None else "failure",
            error_contains=error,
            mentions=mentions,
            listed=listed,
            avoid=avoid,
            rubric=rubric,
        )
    )


def act(
    b: Builder,
    topic: str,
    ref: Ref | None,
    templates: Sequence[str],
    call: Call | None,
    facts: Facts | None = None,
    *,
    wrap: Wrap = req,
    shown: tuple[str, list[str]] | None = None,
    error: str | None = None,
    task: str = "",
    avoid: Facts | None = None,
    rubric: Rubric | None = None,
    **values: str,
) -> None:
    """The usual turn: a request phrased about ``ref`` (if any); its lookups, then ``call``."""
    if ref is not None:
        slot = SLOT[ref.kind]
        values = {slot: ref.np, f"{slot}n": ref.name, "it": ref.it, **values}
    text = wrap(b, P.say(b.rng, templates, **values))
    calls = [*(ref.calls if ref else ()), *([call] if call else ())]
    about = [ref.about] if ref else []
    commit(
        b,
        topic,
        text,
        calls,
        facts,
        about=about,
        shown=shown,
        task=task,
        error=error,
        avoid=avoid,
        rubric=rubric,
    )


def refuse(
    b: Builder,
    topic: str,
    ref: Ref | None,
    templates: Sequence[str],
    call: Call,
    error: str,
    **values: str,
) -> None:
    """A request the CRM refuses: ``call`` fails with ``error`` and nothing changes."""
    act(
        b,
        topic,
        ref,
        templates,
        call,
        None,
        wrap=req,
        shown=None,
        error=error,
        task="",
        avoid=None,
        rubric=None,
        **values,
    )


def recovers(b: Builder, room: int) -> bool:
    """Whether the user corrects a refused request on the next turn (when there is one)."""
    return room >= 2 and b.rng.random() < 0.7


def recover(
    b: Builder,
    topic: str,
    templates: Sequence[str],
    call: Call,
    facts: Facts | None = None,
    *,
    about: Sequence[tuple[str, str]] = (),
    **values: str,
) -> None:
    """The corrected request after a refusal: one call, no lookups (all is known now)."""
    commit(b, topic, recovery(b, P.say(b.rng, templates, **values)), [call], facts, about=about)


@dataclass
class Search:
    """A search the user asks for: its criteria, their words for them, a record they name."""

    criteria: dict[str, Any] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    ref: Ref | None = None

    def add(self, key: str, value: Any, said: str) -> None:
        self.criteria[key] = value
        self.words.append(said)


def search_until(
    b: Builder,
    tool: str,
    draw: Callable[[], Search | None],
    good: Callable[[Search, list[Any]], bool],
) -> tuple[Search, list[Any]]:
    """Draw a search (None: not usable) until its results are worth asking for; 8 tries."""
    for _ in range(8):
        search = draw()
        if search is None:
            continue
        found = b.probe(tool, search.criteria)
        if good(search, found):
            return search, found
    raise Skip(f"no {tool} worth asking for")


def ask_list(
    b: Builder,
    topic: str,
    kind: str,
    search: Search,
    found: list[Any],
    templates: Sequence[str],
    facts: Facts,
    *,
    w: str,
    also: tuple[str, Sequence[str]] | None = None,
) -> None:
    """Ask for the ``kind`` records a search finds (the user may pick one of them next);
    the reply must not list records outside them (``also``: see :func:`.precision.misses`)."""
    shown = (kind, [str(x[KEY_OF[kind]]) for x in found])
    call = Call(f"{kind}_search", search.criteria)
    avoid = misses(b, kind, criteria=search.criteria, also=also)
    act(
        b, topic, search.ref, templates, call, facts, wrap=req_or_ask, shown=shown, avoid=avoid, w=w
    )


def modify(kind: str, rid: str, **updates: Any) -> Call:
    """The ``modify_<kind>`` call of one record."""
    return Call(f"modify_{kind}", {KEY_OF[kind]: rid, "updates": updates})


# == values ==========================================================================
def pct(p: float) -> str:
    return f"{int(p)}%" if p == int(p) else f"{p}%"


def stage_say(b: Builder, stage: str) -> str:
    if stage in CLOSED:
        return stage
    return stage if b.rng.random() < 0.75 else stage.lower()


def names_facts(rows: Sequence[dict[str, Any]], key: str = "name", limit: int = 4) -> list[str]:
    if len(rows) <= limit:
        return [str(r[key]) for r in rows]
    return [str(len(rows)), str(rows[0][key]), str(rows[1][key])]


def listed_names(r: list[Any]) -> list[str]:
    """The facts of a list the last call returned: its names (or how many, and two)."""
    return names_facts(r[-1])


def notes_facts(notes: list[dict[str, Any]]) -> list[str]:
    """What the notes say (a distinctive phrase of the first two), never who wrote them."""
    facts = [str(len(notes))] if len(notes) > 1 else []
    contents = [str(n["content"]) for n in notes]
    for i, content in enumerate(contents[:2]):
        facts.append(note_phrase(content, contents[:i] + contents[i + 1 :]))
    return facts


def person(r: dict[str, Any]) -> str:
    return f"{r['first_name']} {r['last_name']}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def file_word(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def amount_near(b: Builder, base: float, low: float = 0.8, high: float = 1.25) -> float:
    for _ in range(20):
        value = b.amount(max(1000.0, base * low), min(9_900_000.0, base * high))
        if value != base:
            return value
    return base + 1000


def new_owner(b: Builder, current: Any = None) -> str:
    choices = [o for o in (*pools.OWNERS, *pools.NEW_OWNERS) if o != current]
    return b.rng.choice(choices)


def note_text(b: Builder) -> str:
    rng = b.rng
    return P.say(
        rng,
        pools.NOTE_TEMPLATES,
        person=f"{rng.choice(pools.FIRST_NAMES)} {rng.choice(pools.LAST_NAMES)}",
        n=str(rng.choice((5, 10, 12, 20, 25, 40, 50))),
        competitor=rng.choice(pools.COMPETITORS),
        month=rng.choice(pools.MONTHS_SOON),
        pct=str(rng.choice((5, 8, 10, 12, 15))),
    )


def future_iso(b: Builder, low: int = 14, high: int = 420) -> tuple[str, str]:
    d = b.future_date(low, high)
    return d.isoformat(), b.say_date(d)


def phone(b: Builder) -> str:
    return f"({b.rng.randint(201, 989)}) 555-{b.rng.randint(100, 199):04d}"


def list_ok(rows: Sequence[Any], total: int, high: int = 8) -> bool:
    """A list worth showing: some rows, not too many, not the whole table."""
    return 1 <= len(rows) <= high and len(rows) < total


def looked_up(r: list[Any], ref: Ref) -> dict[str, Any]:
    """The record ``ref`` points at, as the last of its lookups returned it."""
    key = KEY_OF[ref.kind]
    return next(x for x in r[len(ref.calls) - 1] if x[key] == ref.rid)


# == pickers =========================================================================
def pick_unseen(b: Builder, kind: str) -> dict[str, Any]:
    """A record the user has not seen yet in this conversation (so it must be looked up)."""
    key = KEY_OF[kind]
    pool = [r for r in b.rows(TABLE_OF[kind]) if r[key] not in b.known]
    if not pool:
        raise Skip(f"every {kind} known")
    return b.choose(pool, key)


def pick_client(b: Builder, p_focus: float = 0.8, *, active: bool = False) -> dict[str, Any]:
    clients = b.rows("clients")
    if active:
        clients = [c for c in clients if c["status"] != "Inactive" or b.rng.random() < 0.15]
    return b.prefer("client", clients, p_focus)


def pick_open_opp(b: Builder, p_focus: float = 0.8) -> dict[str, Any]:
    return b.prefer("opportunity", b.open_opps(), p_focus)


TARGET_KINDS_DOC = ("opportunity", "quote", "contract", "client")
TARGET_KINDS_NOTE = ("opportunity", "quote", "contract", "client", "contact")
ENTITY_TYPE = {
    "opportunity": "Opportunity",
    "quote": "Quote",
    "contract": "Contract",
    "client": "Client",
    "contact": "Contact",
}


def entity(kind: str, rid: str) -> dict[str, Any]:
    """The arguments naming the record a document or note goes on."""
    return {"entity_type": ENTITY_TYPE[kind], "entity_id": rid}


TARGET_WEIGHT = {"opportunity": 50, "quote": 18, "contract": 12, "client": 14, "contact": 8}


def pick_target(b: Builder, kinds: Sequence[str]) -> Ref:
    """The record a document or note goes on: usually the one just talked about."""
    last = [(k, r) for k, r in reversed(b.last_mentions) if k in kinds and b.exists(k, r)]
    if last and b.rng.random() < 0.8:
        kind, rid = last[0]
    else:
        kind = b.rng.choices(list(kinds), [TARGET_WEIGHT[k] for k in kinds])[0]
        rid = str(b.prefer(kind, b.rows(TABLE_OF[kind]), 0.7)[KEY_OF[kind]])
    return locate(b, kind, rid)
