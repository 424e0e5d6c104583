"""The task library: one function per kind of user request, each writing one turn.

A task picks its target (usually the record the conversation is about, so turns chain:
find → modify → quote → document → note), chooses values, phrases the request with one
of several templates, lists the reference calls (lookups first) and says which facts of
the results the reply must convey. It raises :class:`Skip` before committing anything
when it does not apply to the current state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import (
    CLOSED,
    OPEN_STAGES,
    Builder,
    Call,
    Draft,
    Skip,
    short_client,
    split_deal,
)
from pytest_crmbench.generate.refer import (
    Ref,
    count_sub,
    locate_client,
    locate_contact,
    locate_contract,
    locate_opp,
    locate_quote,
)

OPP = "Opportunity Management"
CLIENT = "Client Management"
CONTACT = "Contact Management"
QUOTE = "Quote Management"
CONTRACT = "Contract Management"
COMPANY = "Company / Account Management"
DOCUMENT = "Document Management"
NOTES = "Notes & Collaboration"

m = P.money_fact


def req(b: Builder, core: str) -> str:
    return P.request(b.rng, core, first=b.first)


def ask(b: Builder, text: str) -> str:
    return P.question(b.rng, text, first=b.first)


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


def person(r: dict[str, Any]) -> str:
    return f"{r['first_name']} {r['last_name']}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _file_word(text: str) -> str:
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


def new_topic(b: Builder) -> str:
    names = [str(o["name"]) for o in b.rows("opportunities")]
    for _ in range(40):
        topic = b.rng.choice(pools.DEAL_TOPICS)
        if b.rng.random() < 0.2:
            phase = b.rng.choice(pools.PHASES)
            if phase.split()[0] not in topic:
                topic = f"{topic} {phase}"
        if topic not in b.used_topics and count_sub(topic, names) == 0:
            b.used_topics.add(topic)
            return topic
    raise Skip("no free topic")


def deal_name(b: Builder, client_name: str, topic: str) -> str:
    head = short_client(client_name)
    return f"{head} – {topic}"


def prob_for(b: Builder, stage: str) -> int:
    low, high = {
        "Prospecting": (1, 4),
        "Qualification": (3, 8),
        "Proposal": (6, 12),
        "Negotiation": (12, 18),
    }.get(stage, (2, 18))
    return b.rng.randint(low, high) * 5


def future_iso(b: Builder, low: int = 14, high: int = 420) -> tuple[str, str]:
    d = b.future_date(low, high)
    return d.isoformat(), b.say_date(d)


def pick_client(b: Builder, p_focus: float = 0.8, *, active: bool = False) -> dict[str, Any]:
    clients = b.rows("clients")
    if active:
        clients = [c for c in clients if c["status"] != "Inactive" or b.rng.random() < 0.15]
    return b.prefer("client", clients, p_focus)


def pick_open_opp(b: Builder, p_focus: float = 0.8) -> dict[str, Any]:
    return b.prefer("opportunity", b.open_opps(), p_focus)


# == opportunities ===================================================================
T_CREATE_OPP = (
    "log a new [deal|opportunity|opp] for <client>: <qname>, <amount>, <stage> stage<extras>",
    "create an opportunity called <qname> for <client> — <amount>, stage <stage><extras>",
    "open a new deal in <stage> with <client> named <qname>, worth <amount><extras>",
    "add a <amount_adj> [deal|opportunity|opp] for <client>. Name it <qname> and put it in "
    "<stage><extras>",
    "set up a new [deal|opportunity] under <client>: <qname>, <amount>, currently in "
    "<stage><extras>",
    "create [a deal|an opportunity] for <client> named <qname>. Amount <amount>, stage "
    "<stage><extras>",
    "!new opp for <client>: <qname>, <amount>, <stage><extras>",
    "add the <qname> opportunity for <client> at <amount> in <stage><extras>",
    "register a [deal|new opportunity] with <client>, <amount>, named <qname>, stage "
    "<stage><extras>",
    "!<client_name> [wants|is interested in|asked about] <topic_lc>. Create [a deal|an "
    "opportunity] <qname> for <amount> at the <stage> stage<extras>",
    "!we've got a new [deal|opportunity] with <client_name>: <qname>, <amount>, "
    "<stage><extras>. [Log it|Add it to the CRM|Please create it]",
)


def t_create_opportunity(b: Builder, topic: str) -> None:
    rng = b.rng
    c = pick_client(b, 0.85, active=True)
    cid = str(c["client_id"])
    subject = new_topic(b)
    name = deal_name(b, str(c["name"]), subject)
    amount = b.amount()
    stage = rng.choices(OPEN_STAGES, (35, 30, 22, 13))[0]
    args: dict[str, Any] = {"name": name, "client_id": cid, "amount": amount, "stage": stage}
    extras = []
    if rng.random() < 0.65:
        iso, said = future_iso(b)
        args["close_date"] = iso
        extras.append(
            P.say(
                rng,
                [
                    ", closing <d>",
                    ", expected to close <d>",
                    ", with a close date of <d>",
                    ", target close <d>",
                    ", close date <d>",
                ],
                d=said,
            )
        )
    if rng.random() < 0.4:
        p = prob_for(b, stage)
        args["probability"] = p
        extras.append(
            P.say(
                rng,
                [", <p> probability", ", probability <p>", ", <p> likely", ", win probability <p>"],
                p=P.percent(rng, p),
            )
        )
    if rng.random() < 0.25:
        owner = new_owner(b)
        args["owner"] = owner
        extras.append(
            P.say(rng, [", owned by <o>", ", assigned to <o>", ", with <o> as owner"], o=owner)
        )
    if rng.random() < 0.08:
        notes = note_text(b)
        args["notes"] = notes
        extras.append(
            P.say(rng, ["; notes: <n>", ", with the note <n>"], n=P.quote_text(rng, notes))
        )
    ref = locate_client(b, cid)
    core = P.say(
        rng,
        T_CREATE_OPP,
        client=ref.np,
        client_name=ref.name,
        qname=P.quoted(rng, name),
        amount=b.say_money(amount),
        amount_adj=rng.choice([f"${m(amount)}", f"${m(amount)}"]),
        stage=stage_say(b, stage),
        extras="".join(extras),
        topic_lc=P.topic_words(subject),
    )
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("create_new_opportunity", args)],
            topic,
            "create_new_opportunity",
            facts=lambda r: [str(r[-1]["name"]), m(r[-1]["amount"])],
            mentions=[("client", cid)],
        )
    )


T_MOD_ONE: dict[str, tuple[str, ...]] = {
    "stage": (
        "move <it> to <v>",
        "advance <opp> to <v>",
        "set the stage of <opp> to <v>",
        "update <opp> — it's in <v> now",
        "change <opp> to the <v> stage",
        "put <it> in <v>",
    ),
    "amount": (
        "change the amount on <opp> to <v>",
        "bump <it> to <v>",
        "update the value of <opp> to <v>",
        "set the amount for <opp> to <v>",
        "!<opp> should be <v> now — update it",
        "revise <opp> to <v>",
    ),
    "close_date": (
        "push the close date of <opp> to <v>",
        "move the expected close of <opp> to <v>",
        "change the close date on <opp> to <v>",
        "set <it> to close on <v>",
        "!<opp> will now close <v>; update it",
    ),
    "probability": (
        "set the probability on <opp> to <v>",
        "update <it> to a <v> win probability",
        "change the win probability of <opp> to <v>",
        "make the probability on <opp> <v>",
    ),
    "owner": (
        "assign <it> to <v>",
        "make <v> the owner of <opp>",
        "reassign <it> to <v>",
        "hand <opp> over to <v>",
        "change the owner of <opp> to <v>",
    ),
    "name": (
        "rename <it> to <v>",
        "change the name of <opp> to <v>",
        "call <it> <v> from now on",
    ),
    "notes": (
        "set the notes on <opp> to <v>",
        "replace the notes of <opp> with <v>",
    ),
}
T_WON = (
    "mark <it> as Closed-Won — we won it",
    "!we won <opp>! Set it to Closed-Won",
    "close <it> as won (Closed-Won)",
    "!great news, <opp> is signed. Move it to Closed-Won",
)
T_LOST = (
    "mark <it> Closed-Lost",
    "!we lost <opp>; set the stage to Closed-Lost",
    "!<opp> is lost — move it to Closed-Lost",
)
T_MOD_TWO = (
    "update <opp>: <c1> and <c2>",
    "change <opp> — <c1>, <c2>",
    "!for <opp>, set <c1> and <c2>",
    "!two changes on <opp>: <c1>; <c2>",
    "on <opp>, change <c1> and <c2>",
)
CLAUSE = {
    "stage": ("stage to <v>", "the stage to <v>"),
    "amount": ("amount to <v>", "the value to <v>"),
    "close_date": ("close date to <v>", "the expected close to <v>"),
    "probability": ("probability to <v>", "the win probability to <v>"),
    "owner": ("owner to <v>", "the owner to <v>"),
    "name": ("name to <v>",),
    "notes": ("notes to <v>",),
}


def opp_update_value(b: Builder, o: dict[str, Any], fld: str) -> tuple[Any, str]:
    """A new value for one opportunity field, and how the user says it."""
    rng = b.rng
    if fld == "stage":
        current = OPEN_STAGES.index(o["stage"]) if o["stage"] in OPEN_STAGES else 0
        later = [s for s in OPEN_STAGES[current + 1 :]] or [OPEN_STAGES[max(0, current - 1)]]
        stage = rng.choice(later)
        if stage == o["stage"]:
            raise Skip("same stage")
        return stage, stage_say(b, stage)
    if fld == "amount":
        value = amount_near(b, float(o["amount"]), 0.7, 1.4)
        return value, b.say_money(value)
    if fld == "close_date":
        iso, said = future_iso(b)
        if iso == o.get("close_date"):
            raise Skip("same date")
        return iso, said
    if fld == "probability":
        p = rng.choice([v for v in range(10, 96, 5) if v != o.get("probability")])
        return p, P.percent(rng, p)
    if fld == "owner":
        owner = new_owner(b, o.get("owner"))
        return owner, owner
    if fld == "name":
        base = str(o["name"])
        suffix = rng.choice(("EMEA", "Phase 2", "2026 Renewal", "Expansion", "North America"))
        if suffix.split()[-1] in base:
            raise Skip("suffix already in the name")
        name = f"{base} {suffix}"
        if count_sub(name, [str(x["name"]) for x in b.rows("opportunities")]):
            raise Skip("name taken")
        return name, P.quoted(rng, name)
    notes = note_text(b)
    return notes, P.quote_text(rng, notes)


def opp_fact(fld: str, value: Any) -> str:
    if fld == "amount":
        return m(value)
    if fld == "probability":
        return pct(value)
    return str(value)


def t_modify_opportunity(b: Builder, topic: str) -> None:
    rng = b.rng
    closed_ok = rng.random() < 0.12
    candidates = b.open_opps() + (b.closed_opps() if closed_ok else [])
    o = b.prefer("opportunity", candidates, 0.8)
    oid = str(o["opportunity_id"])
    if o["stage"] in CLOSED:
        fields = [rng.choice(["owner", "notes", "name"])]
    else:
        names = ["stage", "amount", "close_date", "probability", "owner", "name", "notes"]
        weights = [30, 25, 18, 12, 10, 3, 2]
        fields = [rng.choices(names, weights)[0]]
        if rng.random() < 0.25:
            second = rng.choices(names, weights)[0]
            if second != fields[0] and "name" not in (second, fields[0]):
                fields.append(second)
    updates: dict[str, Any] = {}
    said: dict[str, str] = {}
    won = None
    if fields == ["stage"] and rng.random() < 0.18:
        won = rng.choice(["Closed-Won", "Closed-Won", "Closed-Lost"])
        updates["stage"] = won
    else:
        for fld in fields:
            updates[fld], said[fld] = opp_update_value(b, o, fld)
    ref = locate_opp(b, oid)
    if won is not None:
        core = P.say(rng, T_WON if won == "Closed-Won" else T_LOST, opp=ref.np, it=ref.it)
    elif len(fields) == 1:
        fld = fields[0]
        core = P.say(rng, T_MOD_ONE[fld], opp=ref.np, it=ref.it, v=said[fld])
    else:
        c1 = P.say(rng, CLAUSE[fields[0]], v=said[fields[0]])
        c2 = P.say(rng, CLAUSE[fields[1]], v=said[fields[1]])
        core = P.say(rng, T_MOD_TWO, opp=ref.np, c1=c1, c2=c2)
    facts = [opp_fact(f, v) for f, v in updates.items() if f != "notes"]
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("modify_opportunity", {"opportunity_id": oid, "updates": updates})],
            topic,
            "modify_opportunity",
            facts=lambda r: facts,
            mentions=[("opportunity", oid)],
        )
    )


T_CLONE = (
    "clone <it>",
    "make a copy of <opp>",
    "duplicate <it>",
    "clone <opp> — we're pitching the same package [to another division|again next year]",
    "create a clone of <opp>",
    "!can we reuse <opp>? Clone it",
)


def t_clone_opportunity(b: Builder, topic: str) -> None:
    rng = b.rng
    pool = b.open_opps() if rng.random() < 0.85 else b.closed_opps()
    pool = [o for o in pool if "(Clone)" not in str(o["name"])]
    o = b.prefer("opportunity", pool, 0.8)
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    core = P.say(rng, T_CLONE, opp=ref.np, it=ref.it)
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("clone_opportunity", {"opportunity_id": oid})],
            topic,
            "clone_opportunity",
            facts=lambda r: [str(r[-1]["name"])],
            mentions=[("opportunity", oid)],
        )
    )


T_DELETE_OPP = (
    "delete <it>",
    "remove <opp> from the CRM",
    "!<opp> is dead — delete it",
    "get rid of <opp>",
    "delete <opp>, it was a duplicate",
    "remove <opp> entirely",
)


def t_delete_opportunity(b: Builder, topic: str) -> None:
    rng = b.rng
    created = [o for o in b.rows("opportunities") if o["opportunity_id"] in b.created]
    if created and rng.random() < 0.6:
        o = b.prefer("opportunity", created, 0.7)
    else:
        o = b.prefer("opportunity", b.open_opps(), 0.6)
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    core = P.say(rng, T_DELETE_OPP, opp=ref.np, it=ref.it)
    searched = bool(ref.calls)
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("delete_opportunity", {"opportunity_id": oid})],
            topic,
            "delete_opportunity",
            facts=(lambda r: [str(o["name"])]) if searched else None,
            mentions=[("opportunity", oid)],
        )
    )


def _unknown(b: Builder, rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in rows if r[key] not in b.known]


Q_OPP_SINGLE: dict[str, tuple[str, ...]] = {
    "stage": (
        "what stage is <opp> in?",
        "where does <opp> stand — which stage?",
        "which stage is <opp> at right now?",
    ),
    "amount": (
        "how big is <opp>?",
        "what's <opp> worth?",
        "what's the amount on <opp>?",
    ),
    "close_date": (
        "when is <opp> expected to close?",
        "what's the close date of <opp>?",
    ),
    "owner": ("who owns <opp>?", "who's the owner of <opp>?"),
    "probability": ("what's the win probability on <opp>?", "how likely is <opp> to close?"),
    "overview": (
        "pull up <opp>. What stage and amount?",
        "find <opp> for me — stage and value, please.",
        "look up <opp> and tell me its stage and amount.",
    ),
}


def t_find_opportunity(b: Builder, topic: str) -> None:
    """opportunity_search for one deal the user names (a lookup that answers a question)."""
    rng = b.rng
    pool = _unknown(b, b.rows("opportunities"), "opportunity_id")
    if not pool:
        raise Skip("every deal known")
    o = b.choose(pool, "opportunity_id")
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    if not ref.calls:
        raise Skip("no lookup")
    kinds = ["stage", "amount", "overview", "overview", "owner"]
    if o.get("close_date"):
        kinds.append("close_date")
    if o.get("probability"):
        kinds.append("probability")
    kind = rng.choice(kinds)
    text = P.say(rng, Q_OPP_SINGLE[kind], opp=ref.np)
    index = len(ref.calls) - 1

    def facts(r: list[Any]) -> list[str]:
        rec = next(x for x in r[index] if x["opportunity_id"] == oid)
        if kind == "overview":
            return [str(rec["stage"]), m(rec["amount"])]
        if kind == "amount":
            return [m(rec["amount"])]
        if kind == "probability":
            return [pct(rec["probability"])]
        return [str(rec[kind])]

    b.commit(
        Draft(
            ask(b, text),
            list(ref.calls),
            topic,
            "opportunity_search",
            facts=facts,
            mentions=[("opportunity", oid)],
        )
    )


def _opp_criteria(b: Builder, *, with_client: bool) -> tuple[dict[str, Any], list[str], Ref | None]:
    """Criteria for a list of deals, and the words for them."""
    rng = b.rng
    parts: dict[str, Any] = {}
    words: list[str] = []
    client_ref: Ref | None = None
    choice = rng.choice(
        ["stage", "owner_stage", "owner", "client", "min", "min_stage", "window", "name"]
        if not with_client
        else ["client", "client", "client_stage"]
    )
    if choice in ("client", "client_stage"):
        c = pick_client(b, 0.7)
        client_ref = locate_client(b, str(c["client_id"]))
        parts["client_id"] = c["client_id"]
        words.append(rng.choice([f"with {client_ref.np}", f"for {client_ref.np}"]))
    if choice in ("stage", "owner_stage", "min_stage", "client_stage"):
        stage = rng.choice((*OPEN_STAGES, "Closed-Won", "Closed-Lost"))
        parts["stage"] = stage
        words.append(rng.choice([f"in {stage}", f"at the {stage} stage", f"in the {stage} stage"]))
    if choice in ("owner", "owner_stage"):
        owner = rng.choice(pools.OWNERS)
        parts["owner"] = owner
        words.append(rng.choice([f"owned by {owner}", f"that {owner} owns"]))
    if choice in ("min", "min_stage"):
        low = rng.choice((100_000, 150_000, 200_000, 250_000, 300_000, 500_000, 1_000_000))
        parts["min_amount"] = low
        words.append(
            rng.choice([f"worth at least {b.say_money(low)}", f"of {b.say_money(low)} or more"])
        )
    if choice == "window":
        end = b.future_date(30, 200)
        parts["close_date_after"] = b.today.isoformat()
        parts["close_date_before"] = end.isoformat()
        words.append(
            rng.choice(
                [
                    f"closing between {b.say_date(b.today, with_short=False)} and "
                    f"{b.say_date(end)}",
                    f"with a close date from today ({b.today.isoformat()}) through "
                    f"{b.say_date(end)}",
                ]
            )
        )
    if choice == "name":
        frag = rng.choice(("Renewal", "Portal", "Platform", "Phase", "Analytics", "Pilot"))
        parts["name"] = frag
        words.append(rng.choice([f"with '{frag}' in the name", f"whose name contains {frag}"]))
    return parts, words, client_ref


Q_OPP_LIST = (
    "which deals do we have <w>?",
    "show me the opportunities <w>.",
    "list all opps <w>.",
    "what opportunities are there <w>?",
    "pull up every deal <w>.",
    "can you find the deals <w>?",
)


def _list_ok(rows: Sequence[Any], total: int, high: int = 8) -> bool:
    return 1 <= len(rows) <= high and len(rows) < total


def t_list_opportunities(b: Builder, topic: str, *, with_client: bool = False) -> None:
    rng = b.rng
    total = len(b.rows("opportunities"))
    for _ in range(8):
        criteria, words, cref = _opp_criteria(b, with_client=with_client)
        found = b.probe("opportunity_search", criteria)
        if _list_ok(found, total):
            break
    else:
        raise Skip("no good list")
    w = " and ".join(words)
    text = P.say(rng, Q_OPP_LIST, w=w)
    calls = [*(cref.calls if cref else []), Call("opportunity_search", criteria)]
    mentions = [("client", str(criteria["client_id"]))] if "client_id" in criteria else []
    ids = [str(o["opportunity_id"]) for o in found]
    if len(found) == 1:
        mentions.append(("opportunity", ids[0]))
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            calls,
            topic,
            "opportunity_search",
            facts=lambda r: names_facts(r[-1]),
            mentions=mentions,
            listed=("opportunity", ids) if len(found) > 1 else None,
        )
    )


def t_account_deals(b: Builder, topic: str) -> None:
    t_list_opportunities(b, topic, with_client=True)


T_VIEW: dict[str, tuple[str, ...]] = {
    "overview": (
        "give me the full picture of <opp>: client, stage and amount.",
        "show me everything on <opp> — who's the client, what stage, how much?",
        "open <opp> and tell me the client, stage and amount.",
        "what are the details of <opp>? Client, stage, value.",
    ),
    "quotes": (
        "what quotes are on <opp>?",
        "how many quotes does <opp> have, and for how much?",
        "show me the quotes attached to <opp>.",
    ),
    "docs": (
        "what documents are attached to <opp>?",
        "which files do we have on <opp>?",
        "list the documents on <opp>.",
        "show me the files uploaded to <opp>.",
    ),
    "notes": (
        "what notes are there on <opp>?",
        "read me the notes on <opp>.",
        "any notes logged on <opp>?",
        "what has the team noted on <opp>?",
    ),
}
T_DETAILS_ALIAS = (
    "get me the opportunity details for <opp>.",
    "!I need the details of <opp>.",
    "!opportunity details for <opp>, please.",
    "fetch the details on <opp>.",
)


def _notes_facts(notes: list[dict[str, Any]]) -> list[str]:
    facts = [str(len(notes))] if len(notes) > 1 else []
    for n in notes[:2]:
        content = str(n["content"])
        if len(content) <= 70:
            facts.append(content)
        elif n.get("created_by"):
            facts.append(str(n["created_by"]))
    return facts or [str(notes[0]["content"])[:40]]


def _view(b: Builder, topic: str, tool: str, kind: str) -> None:
    rng = b.rng
    opps = b.rows("opportunities")
    if kind in ("docs", "notes", "quotes"):
        table = {"docs": "documents", "notes": "notes", "quotes": "quotes"}[kind]
        if kind == "quotes":
            having = {str(q["opportunity_id"]) for q in b.rows("quotes")}
        else:
            having = {
                str(d["entity_id"]) for d in b.rows(table) if d["entity_type"] == "Opportunity"
            }
        opps = [o for o in opps if o["opportunity_id"] in having]
    o = b.prefer("opportunity", opps, 0.75)
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    if tool == "opportunity_details" and kind == "overview":
        text = P.say(rng, T_DETAILS_ALIAS, opp=ref.np)
    else:
        text = P.say(rng, T_VIEW[kind], opp=ref.np)

    def facts(r: list[Any]) -> list[str]:
        d = r[-1]
        if kind == "overview":
            return [str(d["client"]["name"]), str(d["stage"]), m(d["amount"])]
        if kind == "quotes":
            qs = d["quotes"]
            return ([str(len(qs))] if len(qs) > 1 else []) + [m(q["amount"]) for q in qs[:3]]
        if kind == "docs":
            return [str(x["file_name"]) for x in d["documents"][:4]]
        return _notes_facts(d["notes"])

    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*ref.calls, Call(tool, {"opportunity_id": oid})],
            topic,
            tool,
            facts=facts,
            mentions=[("opportunity", oid)],
        )
    )


def t_view_opportunity(b: Builder, topic: str) -> None:
    _view(b, topic, "view_opportunity_details", b.rng.choice(["overview", "overview", "quotes"]))


def t_opportunity_details(b: Builder, topic: str) -> None:
    _view(b, topic, "opportunity_details", b.rng.choice(["overview", "overview", "quotes"]))


def t_opp_documents(b: Builder, topic: str) -> None:
    tool = "view_opportunity_details" if b.rng.random() < 0.85 else "opportunity_details"
    _view(b, topic, tool, "docs")


def t_opp_notes(b: Builder, topic: str) -> None:
    tool = "view_opportunity_details" if b.rng.random() < 0.85 else "opportunity_details"
    _view(b, topic, tool, "notes")


Q_SUMMARY = (
    "how many deals are there <w>, and what are they worth in total?",
    "give me a pipeline summary <w>: count and total value.",
    "summarize the opportunities <w>.",
    "what's the total value of the deals <w>, and how many are there?",
    "pipeline check: count and total amount of opportunities <w>?",
)


def t_summarize(b: Builder, topic: str, *, with_client: bool = False) -> None:
    rng = b.rng
    total = len(b.rows("opportunities"))
    for _ in range(8):
        criteria, words, cref = _opp_criteria(b, with_client=with_client)
        if "name" in criteria:
            continue
        found = b.probe("opportunity_search", criteria)
        if 1 <= len(found) < total:
            break
    else:
        raise Skip("no summary")
    text = P.say(rng, Q_SUMMARY, w=" and ".join(words))
    mentions = [("client", str(criteria["client_id"]))] if "client_id" in criteria else []
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*(cref.calls if cref else []), Call("summarize_opportunities", criteria)],
            topic,
            "summarize_opportunities",
            facts=lambda r: [str(r[-1]["total_count"]), m(r[-1]["total_amount"])],
            mentions=mentions,
        )
    )


def t_account_pipeline(b: Builder, topic: str) -> None:
    t_summarize(b, topic, with_client=True)


# == quotes ===========================================================================
T_CREATE_QUOTE = (
    "create a <status_lc> quote on <opp> for <amount><extras>",
    "draft a quote for <opp>: <amount>, status <status><extras>",
    "put together a quote of <amount> on <it> and mark it <status><extras>",
    "quote <opp> at <amount>, status <status><extras>",
    "add a quote to <opp> — <amount>, <status><extras>",
    "!I need a new quote for <opp>: <amount>, <status_lc><extras>",
    "prepare a <status_lc> quote for <amount> on <opp><extras>",
)


def t_create_quote(b: Builder, topic: str) -> None:
    rng = b.rng
    o = pick_open_opp(b, 0.85)
    oid = str(o["opportunity_id"])
    existing = b.probe("quote_search", {"opportunity_id": oid})
    amount = float(o["amount"]) if rng.random() < 0.3 else amount_near(b, float(o["amount"]))
    status = rng.choices(("Draft", "Sent", "Approved"), (50, 35, 15))[0]
    args: dict[str, Any] = {"opportunity_id": oid, "amount": amount, "status": status}
    extras = []
    versions = {q.get("version") for q in existing}
    version = next((v for v in ("v1", "v2", "v3", "v4", "v5", "v6") if v not in versions), None)
    if version is not None and rng.random() < 0.5:
        args["version"] = version
        extras.append(rng.choice([f", version {version}", f", {version}", f" (version {version})"]))
    if rng.random() < 0.4:
        prefixes = sorted({str(q["quote_prefix"]) for q in existing if q.get("quote_prefix")})
        prefix = rng.choice(prefixes) if prefixes and rng.random() < 0.5 else None
        prefix = prefix or rng.choice((*pools.QUOTE_PREFIXES_NEW, "Q2025"))
        args["quote_prefix"] = prefix
        extras.append(rng.choice([f", prefix {prefix}", f", quote prefix {prefix}"]))
    if rng.random() < 0.35:
        iso, said = future_iso(b, 20, 120)
        args["valid_until"] = iso
        extras.append(rng.choice([f", valid until {said}", f", good through {said}"]))
    ref = locate_opp(b, oid)
    core = P.say(
        rng,
        T_CREATE_QUOTE,
        opp=ref.np,
        it=ref.it,
        amount=b.say_money(amount),
        status=status,
        status_lc=status.lower(),
        extras="".join(extras),
    )
    core = core.replace("a approved", "an approved")
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("create_quote", args)],
            topic,
            "create_quote",
            facts=lambda r: [m(r[-1]["amount"]), str(r[-1]["status"])],
            mentions=[("opportunity", oid)],
        )
    )


def pick_quote(b: Builder, p_focus: float = 0.8, *, live: bool = True) -> dict[str, Any]:
    quotes = b.rows("quotes")
    if live:
        quotes = [q for q in quotes if q["status"] not in ("Canceled", "Rejected")]
        opps = {str(o["opportunity_id"]) for o in b.open_opps()}
        quotes = [q for q in quotes if q["opportunity_id"] in opps]
    return b.prefer("quote", quotes, p_focus)


T_MOD_QUOTE: dict[str, tuple[str, ...]] = {
    "status": (
        "mark <it> as <v>",
        "set the status of <q> to <v>",
        "change <q> to <v>",
        "!<q> has been <v_lc> — update the status",
        "update <q>: status <v>",
    ),
    "amount": (
        "change the amount on <q> to <v>",
        "revise <q> to <v>",
        "update <q> — the amount should be <v>",
        "set <q> to <v>",
    ),
    "valid_until": (
        "extend <q> until <v>",
        "make <q> valid until <v>",
        "set the valid-until date of <q> to <v>",
    ),
    "version": ("set the version of <q> to <v>", "label <q> as version <v>"),
}


def t_modify_quote(b: Builder, topic: str) -> None:
    rng = b.rng
    q = pick_quote(b)
    qid = str(q["quote_id"])
    fld = rng.choices(["status", "amount", "valid_until", "version"], (45, 30, 15, 10))[0]
    if fld == "status":
        nxt = {"Draft": ["Sent"], "Sent": ["Approved", "Rejected"], "Approved": ["Sent"]}
        value: Any = rng.choice(nxt.get(str(q["status"]), ["Sent"]))
        said = value
    elif fld == "amount":
        value = amount_near(b, float(q["amount"]), 0.85, 1.15)
        said = b.say_money(value)
    elif fld == "valid_until":
        iso, said = future_iso(b, 20, 150)
        value = iso
    else:
        value = rng.choice([v for v in ("v2", "v3", "v4", "final") if v != q.get("version")])
        said = value
    ref = locate_quote(b, qid)
    core = P.say(rng, T_MOD_QUOTE[fld], q=ref.np, it=ref.it, v=said, v_lc=str(said).lower())
    fact = m(value) if fld == "amount" else str(value)
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("modify_quote", {"quote_id": qid, "updates": {fld: value}})],
            topic,
            "modify_quote",
            facts=lambda r: [fact],
            mentions=[("quote", qid)],
        )
    )


T_CANCEL = (
    "cancel <it>",
    "cancel <q> now",
    "!the client pulled out — cancel <q>",
    "set <q> to canceled",
    "!we won't go ahead with <q>; cancel it",
)


def t_cancel_quote(b: Builder, topic: str) -> None:
    rng = b.rng
    q = pick_quote(b)
    qid = str(q["quote_id"])
    ref = locate_quote(b, qid)
    core = P.say(rng, T_CANCEL, q=ref.np, it=ref.it)
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("cancel_quote", {"quote_id": qid})],
            topic,
            "cancel_quote",
            facts=lambda r: [str(r[-1]["status"])],
            mentions=[("quote", qid)],
        )
    )


T_DELETE_QUOTE = (
    "delete <it>",
    "remove <q> completely",
    "get rid of <q>",
    "!<q> was a mistake — delete it",
    "delete <q> from the system",
)


def t_delete_quote(b: Builder, topic: str) -> None:
    rng = b.rng
    q = pick_quote(b, 0.8, live=rng.random() < 0.5)
    qid = str(q["quote_id"])
    ref = locate_quote(b, qid)
    core = P.say(rng, T_DELETE_QUOTE, q=ref.np, it=ref.it)
    amount = m(q["amount"])
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("delete_quote", {"quote_id": qid})],
            topic,
            "delete_quote",
            facts=(lambda r: [amount]) if ref.calls else None,
            mentions=[("quote", qid)],
        )
    )


Q_QUOTE_LIST = (
    "which quotes are there <w>?",
    "show me the quotes <w>.",
    "list every quote <w>.",
    "what quotes do we have <w>?",
)


def t_quote_search(b: Builder, topic: str) -> None:
    rng = b.rng
    total = len(b.rows("quotes"))
    for _ in range(8):
        calls: list[Call] = []
        words: list[str] = []
        criteria: dict[str, Any] = {}
        mentions: list[tuple[str, str]] = []
        kind = rng.choice(["opp", "opp", "status", "prefix", "min", "status_min"])
        if kind == "opp":
            having = {str(q["opportunity_id"]) for q in b.rows("quotes")}
            o = b.prefer(
                "opportunity",
                [x for x in b.rows("opportunities") if x["opportunity_id"] in having],
                0.7,
            )
            ref = locate_opp(b, str(o["opportunity_id"]))
            calls = list(ref.calls)
            criteria["opportunity_id"] = o["opportunity_id"]
            words.append(rng.choice([f"on {ref.np}", f"for {ref.np}"]))
            mentions.append(("opportunity", str(o["opportunity_id"])))
        if kind in ("status", "status_min"):
            status = rng.choice(("Draft", "Sent", "Approved", "Rejected", "Canceled"))
            criteria["status"] = status
            words.append(rng.choice([f"in {status} status", f"marked {status}"]))
        if kind == "prefix":
            prefixes = b.probe("quote_prefixes", {})
            prefix = rng.choice(prefixes)
            criteria["quote_prefix"] = prefix
            words.append(rng.choice([f"with the {prefix} prefix", f"with prefix {prefix}"]))
        if kind in ("min", "status_min"):
            low = rng.choice((100_000, 200_000, 300_000, 500_000, 1_000_000))
            criteria["min_amount"] = low
            words.append(
                rng.choice([f"worth {b.say_money(low)} or more", f"of at least {b.say_money(low)}"])
            )
        found = b.probe("quote_search", criteria)
        if _list_ok(found, total, 10):
            break
    else:
        raise Skip("no quote list")
    text = P.say(rng, Q_QUOTE_LIST, w=" and ".join(words))

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        out = [str(len(rows))] if len(rows) > 1 else []
        return out + [m(q["amount"]) for q in rows[:3]]

    ids = [str(q["quote_id"]) for q in found]
    if len(found) == 1:
        mentions.append(("quote", ids[0]))
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*calls, Call("quote_search", criteria)],
            topic,
            "quote_search",
            facts=facts,
            mentions=mentions,
            listed=("quote", ids) if len(found) > 1 else None,
        )
    )


Q_QUOTE_DETAILS = (
    "what are the details of <q>? Amount, status and the deal it belongs to.",
    "pull up <q> — which deal is it for, how much, and what status?",
    "give me the details on <q>.",
    "show me <q>: amount, status, opportunity.",
)
Q_QUOTE_DOCS = (
    "which documents are attached to <q>?",
    "what files are on <q>?",
    "list the attachments of <q>.",
)
Q_QUOTE_NOTES = ("what notes are on <q>?", "any notes on <q>?", "read me the notes on <q>.")


def _quote_details(b: Builder, topic: str, kind: str) -> None:
    rng = b.rng
    quotes = b.rows("quotes")
    if kind in ("docs", "notes"):
        table = "documents" if kind == "docs" else "notes"
        having = {str(d["entity_id"]) for d in b.rows(table) if d["entity_type"] == "Quote"}
        quotes = [q for q in quotes if q["quote_id"] in having]
    q = b.prefer("quote", quotes, 0.75)
    qid = str(q["quote_id"])
    ref = locate_quote(b, qid)
    templates = {"overview": Q_QUOTE_DETAILS, "docs": Q_QUOTE_DOCS, "notes": Q_QUOTE_NOTES}[kind]
    text = P.say(rng, templates, q=ref.np)

    def facts(r: list[Any]) -> list[str]:
        d = r[-1]
        if kind == "docs":
            return [str(x["file_name"]) for x in d["documents"][:4]]
        if kind == "notes":
            return _notes_facts(d["notes"])
        return [m(d["amount"]), str(d["status"]), str(d["opportunity"]["name"])]

    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*ref.calls, Call("quote_details", {"quote_id": qid})],
            topic,
            "quote_details",
            facts=facts,
            mentions=[("quote", qid)],
        )
    )


def t_quote_details(b: Builder, topic: str) -> None:
    _quote_details(b, topic, "overview")


def t_quote_documents(b: Builder, topic: str) -> None:
    _quote_details(b, topic, "docs")


def t_quote_notes(b: Builder, topic: str) -> None:
    _quote_details(b, topic, "notes")


T_COMPARE = (
    "compare <pair>",
    "put <pair> side by side",
    "how do <pair> compare?",
    "show me <pair> next to each other",
)
T_COMPARE_DETAILS = (
    "compare the details of <pair> — amounts, statuses and the total",
    "give me a comparison of <pair> with the total amount",
    "what's the combined amount of <pair>, and how do they differ?",
    "compare <pair> in detail: amounts, statuses, total",
)


def t_compare(b: Builder, topic: str, tool: str = "compare_quotes") -> None:
    rng = b.rng
    by_opp: dict[str, list[dict[str, Any]]] = {}
    for q in b.rows("quotes"):
        by_opp.setdefault(str(q["opportunity_id"]), []).append(q)
    opps = [
        o for o in b.rows("opportunities") if len(by_opp.get(str(o["opportunity_id"]), [])) >= 2
    ]
    o = b.prefer("opportunity", opps, 0.85)
    oid = str(o["opportunity_id"])
    quotes = by_opp[oid]
    pair = rng.sample(quotes, 2)
    pair.sort(key=lambda q: quotes.index(q))
    labels = []
    for q in pair:
        other = [x for x in pair if x is not q]
        if q.get("version") and all(x.get("version") != q["version"] for x in other):
            labels.append(str(q["version"]))
        elif all(x["amount"] != q["amount"] for x in other):
            labels.append(b.money_adj(q["amount"]))
        elif all(x["status"] != q["status"] for x in other):
            labels.append(str(q["status"]).lower())
        else:
            raise Skip("indistinct quotes")
    known = all(q["quote_id"] in b.known for q in pair)
    calls: list[Call] = []
    if known:
        pair_np = rng.choice(
            [
                f"the {labels[0]} and {labels[1]} quotes",
                f"the {labels[0]} quote and the {labels[1]} quote",
            ]
        )
    else:
        ref = locate_opp(b, oid)
        calls = [*ref.calls, Call("quote_search", {"opportunity_id": oid})]
        if len(quotes) == 2:
            pair_np = rng.choice([f"the two quotes on {ref.np}", f"both quotes for {ref.np}"])
        else:
            pair_np = f"the {labels[0]} and {labels[1]} quotes on {ref.np}"
    ids = [str(q["quote_id"]) for q in pair]
    text = P.say(rng, T_COMPARE if tool == "compare_quotes" else T_COMPARE_DETAILS, pair=pair_np)

    def facts(r: list[Any]) -> list[str]:
        d = r[-1]
        if tool == "compare_quotes":
            return [m(x["amount"]) for x in d] + sorted({str(x["status"]) for x in d})
        return [m(d["total_amount"]), *[m(x["amount"]) for x in d["quotes"]]]

    mentions = [("opportunity", oid)] + [("quote", i) for i in ids]
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*calls, Call(tool, {"quote_ids": ids})],
            topic,
            tool,
            facts=facts,
            mentions=mentions,
            listed=("quote", ids),
        )
    )


def t_compare_details(b: Builder, topic: str) -> None:
    t_compare(b, topic, "compare_quote_details")


Q_PREFIXES = (
    "what quote prefixes are in use?",
    "which quote numbering prefixes do we have now?",
    "list the quote prefixes for me.",
    "what prefixes are our quotes using at the moment?",
    "remind me which quote prefixes exist.",
)


def t_quote_prefixes(b: Builder, topic: str) -> None:
    text = P.say(b.rng, Q_PREFIXES)
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [Call("quote_prefixes", {})],
            topic,
            "quote_prefixes",
            facts=lambda r: [str(x) for x in r[-1]],
        )
    )


# == clients ==========================================================================
def new_company(b: Builder) -> tuple[str, str, str]:
    """(name, industry, email domain) of a company not in the CRM."""
    rng = b.rng
    names = [str(c["name"]) for c in b.rows("clients")]
    for _ in range(40):
        head = rng.choice(pools.COMPANY_HEADS)
        tail, industry = rng.choice(pools.COMPANY_TAILS)
        if head in b.used_heads or count_sub(head, names):
            continue
        b.used_heads.add(head)
        name = f"{head} {tail}"
        domain = _slug(head + tail.replace("Co.", "")) + rng.choice(pools.TLDS)
        return name, industry, domain
    raise Skip("no company name")


def phone(b: Builder) -> str:
    return f"({b.rng.randint(201, 989)}) 555-{b.rng.randint(100, 199):04d}"


T_CREATE_CLIENT = (
    "add a new client: <name>, email <email>, status <status><extras>",
    "create a client called <name> (<email>) as <a_status> client<extras>",
    "set up <name> as a new <status_lc> client. Their email is <email><extras>",
    "!we signed up a new [client|account]: <name>, <email>, status <status><extras>",
    "create the client <name> with email <email> and status <status><extras>",
    "!new client — <name>, <email>, <status><extras>",
    "add <name> to the CRM as <a_status> client; contact email <email><extras>",
)


def t_create_client(b: Builder, topic: str) -> None:
    rng = b.rng
    name, industry, domain = new_company(b)
    email = b.new_email(
        rng.choice(("info", "hello", "contact", "sales", "office", "team", "accounts")), domain
    )
    status = rng.choices(("Prospect", "Active", "Inactive"), (50, 42, 8))[0]
    args: dict[str, Any] = {"name": name, "email": email, "status": status}
    extras = []
    if rng.random() < 0.6:
        args["industry"] = industry
        extras.append(
            rng.choice([f", industry {industry}", f", in {industry}", f". They're in {industry}"])
        )
    if rng.random() < 0.35:
        args["phone"] = phone(b)
        extras.append(rng.choice([f", phone {args['phone']}", f", phone number {args['phone']}"]))
    if rng.random() < 0.25:
        args["address"] = rng.choice(pools.STREETS)
        extras.append(f"; address: {args['address']}")
    if rng.random() < 0.35:
        args["owner"] = new_owner(b)
        extras.append(
            rng.choice([f", owned by {args['owner']}", f", account owner {args['owner']}"])
        )
    a_status = {"Prospect": "a prospect", "Active": "an active", "Inactive": "an inactive"}[status]
    core = P.say(
        rng,
        T_CREATE_CLIENT,
        name=name,
        email=email,
        status=status,
        status_lc=status.lower(),
        a_status=a_status,
        extras="".join(extras),
    )
    b.commit(
        Draft(
            req(b, core),
            [Call("create_new_client", args)],
            topic,
            "create_new_client",
            facts=lambda r: [str(r[-1]["name"])],
        )
    )


T_MOD_CLIENT: dict[str, tuple[str, ...]] = {
    "owner": (
        "assign <it> to <v>",
        "make <v> the account owner for <c>",
        "change the owner of <c> to <v>",
        "!<v> is taking over <cn> — update the owner",
    ),
    "status": (
        "mark <c> as <v>",
        "change the status of <c> to <v>",
        "set <it> to <v>",
        "!<cn> is <v_lc> now; update the record",
    ),
    "phone": (
        "update the phone number for <c> to <v>",
        "!<cn> has a new phone number: <v>",
        "change the phone of <c> to <v>",
    ),
    "address": (
        "update the address of <c> to <v>",
        "!<cn> moved — new address: <v>",
    ),
    "industry": ("set the industry of <c> to <v>", "change the industry for <c> to <v>"),
    "email": (
        "change the email of <c> to <v>",
        "!the email for <cn> is now <v>; update it",
        "update <c> with the new email <v>",
    ),
}


def t_modify_client(b: Builder, topic: str) -> None:
    rng = b.rng
    c = pick_client(b, 0.8)
    cid = str(c["client_id"])
    fld = rng.choices(
        ["owner", "status", "phone", "address", "industry", "email"], (35, 20, 18, 10, 5, 12)
    )[0]
    if fld == "owner":
        value = new_owner(b, c.get("owner"))
    elif fld == "status":
        value = rng.choice([s for s in ("Active", "Prospect", "Inactive") if s != c["status"]])
    elif fld == "phone":
        value = phone(b)
    elif fld == "address":
        value = rng.choice([s for s in pools.STREETS if s != c.get("address")])
    elif fld == "industry":
        value = rng.choice([i for _, i in pools.COMPANY_TAILS if i != c.get("industry")])
    else:
        domain = str(c["email"]).split("@")[1]
        local = rng.choice(("billing", "finance", "purchasing", "crm", "vendors", "ap"))
        value = b.new_email(local, domain)
    ref = locate_client(b, cid)
    core = P.say(
        rng, T_MOD_CLIENT[fld], c=ref.np, cn=ref.name, it=ref.it, v=value, v_lc=value.lower()
    )
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("modify_client", {"client_id": cid, "updates": {fld: value}})],
            topic,
            "modify_client",
            facts=lambda r: [value],
            mentions=[("client", cid)],
        )
    )


Q_CLIENT_SINGLE: dict[str, tuple[str, ...]] = {
    "email": ("what's the email on file for <c>?", "which email address do we have for <c>?"),
    "owner": ("who owns <c>?", "who is the account owner for <c>?"),
    "status": ("what's the status of <c>?", "is <c> an active client? What's their status?"),
    "industry": ("what industry is <c> in?", "which industry do we have <c> under?"),
    "phone": ("what's the phone number for <c>?", "look up <c> — I need their phone number."),
    "overview": (
        "what do we have on file for <c>? Email, status and owner.",
        "look up <c> for me: email, status, owner.",
    ),
}


def t_client_lookup(b: Builder, topic: str) -> None:
    rng = b.rng
    pool = _unknown(b, b.rows("clients"), "client_id")
    if not pool:
        raise Skip("every client known")
    c = b.choose(pool, "client_id")
    cid = str(c["client_id"])
    kinds = ["email", "status", "overview", "overview"] + [
        k for k in ("owner", "industry", "phone") if c.get(k)
    ]
    kind = rng.choice(kinds)
    ref = locate_client(b, cid, pronoun_ok=False)
    if "@" in ref.np and kind in ("email", "overview"):
        kind = "status"  # the user named the client by its email: ask something else
    text = P.say(rng, Q_CLIENT_SINGLE[kind], c=ref.np)
    index = len(ref.calls) - 1

    def facts(r: list[Any]) -> list[str]:
        rec = next(x for x in r[index] if x["client_id"] == cid)
        if kind == "overview":
            return [str(rec["email"]), str(rec["status"])] + (
                [str(rec["owner"])] if rec.get("owner") else []
            )
        return [str(rec[kind])]

    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            list(ref.calls),
            topic,
            "client_search",
            facts=facts,
            mentions=[("client", cid)],
        )
    )


Q_CLIENT_LIST = (
    "which clients do we have <w>?",
    "list the clients <w>.",
    "show me every account <w>.",
    "which accounts are <w>?",
)


def t_client_list(b: Builder, topic: str) -> None:
    rng = b.rng
    clients = b.rows("clients")
    for _ in range(8):
        criteria: dict[str, Any] = {}
        words: list[str] = []
        kind = rng.choice(["industry", "status", "owner", "industry_status", "owner_status"])
        if "industry" in kind:
            ind = str(rng.choice([c for c in clients if c.get("industry")])["industry"])
            criteria["industry"] = ind
            words.append(rng.choice([f"in {ind}", f"in the {ind} industry"]))
        if "status" in kind:
            status = rng.choice(("Active", "Prospect", "Inactive"))
            criteria["status"] = status
            words.append(rng.choice([f"with status {status}", f"marked {status}"]))
        if "owner" in kind:
            owner = rng.choice(pools.OWNERS)
            criteria["owner"] = owner
            words.append(rng.choice([f"owned by {owner}", f"that {owner} owns"]))
        found = b.probe("client_search", criteria)
        if _list_ok(found, len(clients)):
            break
    else:
        raise Skip("no client list")
    text = P.say(rng, Q_CLIENT_LIST, w=" and ".join(words))
    ids = [str(c["client_id"]) for c in found]
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [Call("client_search", criteria)],
            topic,
            "client_search",
            facts=lambda r: names_facts(r[-1]),
            mentions=[("client", ids[0])] if len(ids) == 1 else [],
            listed=("client", ids) if len(ids) > 1 else None,
        )
    )


# == contacts =========================================================================
T_CREATE_CONTACT = (
    "add <full> as a contact at <c><title><extras>",
    "create a contact for <c>: <full><title><extras>",
    "!new contact at <c> — <full><title><extras>",
    "!<full> just joined <cn><title_as>. Add them as a contact<extras>",
    "add a contact named <full> under <c><title><extras>",
    "put <full> in the CRM as a contact for <c><title><extras>",
)


def t_create_contact(b: Builder, topic: str) -> None:
    rng = b.rng
    c = pick_client(b, 0.85)
    cid = str(c["client_id"])
    existing = {person(p) for p in b.rows("contacts")}
    for _ in range(20):
        first, last = rng.choice(pools.FIRST_NAMES), rng.choice(pools.LAST_NAMES)
        if f"{first} {last}" not in existing:
            break
    else:
        raise Skip("no free name")
    full = f"{first} {last}"
    args: dict[str, Any] = {"first_name": first, "last_name": last, "client_id": cid}
    title = title_as = extras = ""
    if rng.random() < 0.7:
        args["title"] = rng.choice(pools.TITLES)
        title = rng.choice(
            [f", title {args['title']}", f", their {args['title']}", f" ({args['title']})"]
        )
        title_as = f" as {args['title']}"
    if rng.random() < 0.6:
        domain = str(c["email"]).split("@")[1]
        args["email"] = f"{_slug(first)}.{_slug(last)}@{domain}"
        extras += rng.choice(
            [f", email {args['email']}", f". Email: {args['email']}", f" ({args['email']})"]
        )
    if rng.random() < 0.3:
        args["phone"] = phone(b)
        extras += rng.choice([f", phone {args['phone']}", f", reachable at {args['phone']}"])
    ref = locate_client(b, cid)
    core = P.say(
        rng,
        T_CREATE_CONTACT,
        full=full,
        c=ref.np,
        cn=ref.name,
        title=title,
        title_as=title_as,
        extras=extras,
    )
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("create_new_contact", args)],
            topic,
            "create_new_contact",
            facts=lambda r: [person(r[-1])],
            mentions=[("client", cid)],
        )
    )


T_MOD_CONTACT: dict[str, tuple[str, ...]] = {
    "title": (
        "update the title of <p> to <v>",
        "!<pn> is now <v> — update the contact",
        "change <p>'s title to <v>",
    ),
    "phone": (
        "update the phone number of <p> to <v>",
        "!<pn> has a new number: <v>",
        "set the phone for <p> to <v>",
    ),
    "email": (
        "change the email of <p> to <v>",
        "!<pn>'s new email is <v>; update it",
        "update <p> with email <v>",
    ),
    "notes": (
        "set the notes on <p> to <v>",
        "update the contact notes for <p>: <v>",
    ),
}


def t_modify_contact(b: Builder, topic: str) -> None:
    rng = b.rng
    p = b.prefer("contact", b.rows("contacts"), 0.85)
    pid = str(p["contact_id"])
    fld = rng.choices(["title", "phone", "email", "notes"], (35, 30, 25, 10))[0]
    if fld == "title":
        value = rng.choice([t for t in pools.TITLES if t != p.get("title")])
        said = value
    elif fld == "phone":
        value = phone(b)
        said = value
    elif fld == "email":
        client = b.get("client", str(p["client_id"]))
        domain = str(client["email"]).split("@")[1]
        value = f"{_slug(str(p['first_name']))[0]}{_slug(str(p['last_name']))}@{domain}"
        if value == p.get("email"):
            raise Skip("same email")
        said = value
    else:
        value = note_text(b)
        said = P.quote_text(rng, value)
    ref = locate_contact(b, pid)
    core = P.say(rng, T_MOD_CONTACT[fld], p=ref.np, pn=ref.name, v=said)
    facts = [value] if fld != "notes" else []
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("modify_contact", {"contact_id": pid, "updates": {fld: value}})],
            topic,
            "modify_contact",
            facts=lambda r: facts,
            mentions=[("contact", pid)],
        )
    )


Q_CONTACT_SINGLE: dict[str, tuple[str, ...]] = {
    "title": ("what's <p>'s job title?", "what does <p> do there — what's the title?"),
    "email": ("what's the email address of <p>?", "how do I email <p>?"),
    "phone": ("what's the phone number for <p>?", "do we have a number for <p>?"),
    "client": ("which client does <p> work for?", "who is <p> with — which account?"),
}


def t_contact_lookup(b: Builder, topic: str) -> None:
    rng = b.rng
    pool = _unknown(b, b.rows("contacts"), "contact_id")
    if not pool:
        raise Skip("every contact known")
    p = b.choose(pool, "contact_id")
    pid = str(p["contact_id"])
    kinds = [k for k in ("title", "email", "phone") if p.get(k)] + ["client"]
    kind = rng.choice(kinds)
    ref = locate_contact(b, pid, pronoun_ok=False)
    text = P.say(rng, Q_CONTACT_SINGLE[kind], p=ref.np)
    calls = list(ref.calls)
    index = len(calls) - 1
    cname = b.client_name(str(p["client_id"]))
    if kind == "client":
        # The contact record holds the client id; the name needs one more lookup.
        calls.append(Call("client_search", {"client_id": p["client_id"]}))

    def facts(r: list[Any]) -> list[str]:
        rec = next(x for x in r[index] if x["contact_id"] == pid)
        if kind == "client":
            return [cname]
        return [str(rec[kind])]

    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            calls,
            topic,
            "contact_search",
            facts=facts,
            mentions=[("contact", pid)],
        )
    )


Q_CONTACT_LIST = (
    "who are our contacts <w>?",
    "list the contacts <w>.",
    "which contacts do we have <w>?",
    "show me everyone <w> in our contacts.",
)


def t_contact_list(b: Builder, topic: str) -> None:
    rng = b.rng
    contacts = b.rows("contacts")
    for _ in range(8):
        calls: list[Call] = []
        criteria: dict[str, Any] = {}
        mentions: list[tuple[str, str]] = []
        kind = rng.choice(["client", "client", "last", "title", "first"])
        if kind == "client":
            c = pick_client(b, 0.7)
            ref = locate_client(b, str(c["client_id"]))
            calls = list(ref.calls)
            criteria["client_id"] = c["client_id"]
            w = rng.choice([f"at {ref.np}", f"for {ref.np}"])
            mentions.append(("client", str(c["client_id"])))
        elif kind == "last":
            last = str(rng.choice(contacts)["last_name"])
            criteria["last_name"] = last
            w = rng.choice([f"named {last}", f"with the last name {last}"])
        elif kind == "first":
            first = str(rng.choice(contacts)["first_name"])
            criteria["first_name"] = first
            w = rng.choice([f"called {first}", f"with the first name {first}"])
        else:
            frag = rng.choice(
                ("Procurement", "Director", "Chief", "Manager", "Operations", "Finance", "VP")
            )
            criteria["title"] = frag
            w = rng.choice([f"with '{frag}' in their title", f"whose title includes {frag}"])
        found = b.probe("contact_search", criteria)
        if _list_ok(found, len(contacts)) and (
            kind != "first" or len(found) > 1 or rng.random() < 0.3
        ):
            break
    else:
        raise Skip("no contact list")
    text = P.say(rng, Q_CONTACT_LIST, w=w)
    ids = [str(p["contact_id"]) for p in found]
    if len(ids) == 1:
        mentions.append(("contact", ids[0]))
    if len(found) > 1 and kind == "last":
        b.extra_tags.add("disambiguation")
    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*calls, Call("contact_search", criteria)],
            topic,
            "contact_search",
            facts=lambda r: (
                [person(x) for x in r[-1][:4]]
                if len(r[-1]) <= 4
                else [str(len(r[-1]))] + [person(x) for x in r[-1][:2]]
            ),
            mentions=mentions,
            listed=("contact", ids) if len(ids) > 1 else None,
        )
    )


# == contracts ========================================================================
T_CREATE_CONTRACT = (
    "create <a_status> contract for <c><link>, value <v>, running <s> to <e><url>",
    "set up a contract with <c>: <v>, from <s> through <e><status_tail><link><url>",
    "draw up a contract for <c> worth <v> starting <s> and ending <e><status_tail><link><url>",
    "!we need a contract record for <c> — <v>, <s> to <e><status_tail><link><url>",
    "add a <term>-month contract for <c> starting <s> (ends <e>), value "
    "<v><status_tail><link><url>",
    "record <a_new_status> contract with <c><link>: <s> – <e>, <v><url>",
)


def contract_dates(b: Builder) -> tuple[date, date, int]:
    rng = b.rng
    month = rng.randint(0, 6)
    y, mth = divmod(b.today.month - 1 + month, 12)
    start = date(b.today.year + y, mth + 1, 1)
    term = rng.choice((12, 12, 24, 36))
    y2, m2 = divmod(start.month - 1 + term, 12)
    end = date(start.year + y2, m2 + 1, 1) - timedelta(days=1)
    return start, end, term


def t_create_contract(b: Builder, topic: str) -> None:
    rng = b.rng
    opp_id = b.recent("opportunity")
    link_opp: dict[str, Any] | None = None
    if opp_id is not None and rng.random() < 0.6:
        link_opp = b.get("opportunity", opp_id)
        c = b.get("client", str(link_opp["client_id"]))
    else:
        c = pick_client(b, 0.8, active=True)
        own = [
            o
            for o in b.rows("opportunities")
            if o["client_id"] == c["client_id"] and o["stage"] == "Closed-Won"
        ]
        if own and rng.random() < 0.4:
            link_opp = rng.choice(own)
    cid = str(c["client_id"])
    start, end, term = contract_dates(b)
    value = (
        float(link_opp["amount"]) if link_opp and rng.random() < 0.6 else b.amount(5_000, 900_000)
    )
    args: dict[str, Any] = {"client_id": cid}
    cref = locate_client(b, cid)
    calls = list(cref.calls)
    link = ""
    mentions: list[tuple[str, str]] = [("client", cid)]
    if link_opp is not None:
        oref = locate_opp(b, str(link_opp["opportunity_id"]), pronoun_ok=False)
        calls += oref.calls
        args["opportunity_id"] = link_opp["opportunity_id"]
        link = rng.choice([f" tied to {oref.np}", f", linked to {oref.np}", f" for {oref.np}"])
        mentions.append(("opportunity", str(link_opp["opportunity_id"])))
    args["start_date"] = start.isoformat()
    args["end_date"] = end.isoformat()
    args["value"] = value
    a_status, a_new_status, status_tail = "a", "a new", ""
    if rng.random() < 0.75:
        status = rng.choice(("Pending", "Pending", "Active"))
        args["status"] = status
        a_status = "a pending" if status == "Pending" else "an active"
        a_new_status = f"a new {status.lower()}"
        status_tail = rng.choice([f", status {status}", f", {status.lower()}"])
    url = ""
    if rng.random() < 0.2:
        slug = _file_word(short_client(str(c["name"]))).upper()
        args["document_url"] = f"https://docs.example.com/contracts/{slug}-{start.year}.pdf"
        url = rng.choice(
            [
                f"; the signed copy is at {args['document_url']}",
                f", document URL {args['document_url']}",
            ]
        )
    core = P.say(
        rng,
        T_CREATE_CONTRACT,
        c=cref.np,
        link=link,
        v=b.say_money(value),
        s=b.say_date(start),
        e=b.say_date(end),
        url=url,
        a_status=a_status,
        a_new_status=a_new_status,
        status_tail=status_tail,
        term=str(term),
    )
    b.commit(
        Draft(
            req(b, core),
            [*calls, Call("create_contract", args)],
            topic,
            "create_contract",
            facts=lambda r: [m(r[-1]["value"]), str(r[-1]["status"])],
            mentions=mentions,
        )
    )


Q_CONTRACT_LIST = (
    "what contracts do we have <w>?",
    "show me the contracts <w>.",
    "list the contracts <w>.",
    "which contracts are there <w>?",
)


def t_contract_search(b: Builder, topic: str) -> None:
    rng = b.rng
    contracts = b.rows("contracts")
    for _ in range(8):
        calls: list[Call] = []
        criteria: dict[str, Any] = {}
        mentions: list[tuple[str, str]] = []
        words = []
        kind = rng.choice(["client", "client", "status", "client_status"])
        if "client" in kind:
            having = {str(k["client_id"]) for k in contracts}
            c = b.prefer("client", [x for x in b.rows("clients") if x["client_id"] in having], 0.7)
            ref = locate_client(b, str(c["client_id"]))
            calls = list(ref.calls)
            criteria["client_id"] = c["client_id"]
            words.append(rng.choice([f"with {ref.np}", f"for {ref.np}"]))
            mentions.append(("client", str(c["client_id"])))
        if "status" in kind:
            status = rng.choice(("Active", "Pending", "Expired"))
            criteria["status"] = status
            words.insert(0, rng.choice([f"in {status} status", f"that are {status.lower()}"]))
        found = b.probe("contract_search", criteria)
        if _list_ok(found, len(contracts)):
            break
    else:
        raise Skip("no contract list")
    text = P.say(rng, Q_CONTRACT_LIST, w=" ".join(words))
    ids = [str(k["contract_id"]) for k in found]
    if len(ids) == 1:
        mentions.append(("contract", ids[0]))

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        out = [str(len(rows))] if len(rows) > 1 else []
        for k in rows[:3]:
            out.append(m(k["value"]) if k.get("value") is not None else str(k["status"]))
        return list(dict.fromkeys(out))

    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [*calls, Call("contract_search", criteria)],
            topic,
            "contract_search",
            facts=facts,
            mentions=mentions,
            listed=("contract", ids) if len(ids) > 1 else None,
        )
    )


# == companies ========================================================================
Q_COMPANY: dict[str, tuple[str, ...]] = {
    "type": (
        "which <t_lc> companies do we work with?",
        "list our <t_lc>s.",
        "who are the <t_lc>s in the CRM?",
        "show me the companies of type <t>.",
    ),
    "industry": (
        "which companies in <v> do we track?",
        "list the companies in the <v> industry.",
        "show me companies whose industry is <v>.",
    ),
    "city": (
        "which companies are based in <v>?",
        "do we track any companies in <v>? List them.",
    ),
    "type_industry": (
        "which <t_lc>s are in <v>?",
        "list the <v> companies that are <t_lc>s.",
    ),
    "one_type": (
        "is <n> a partner, a vendor or a competitor?",
        "what kind of company is <n> for us?",
        "how is <n> classified — partner, vendor or competitor?",
    ),
    "one_address": ("where is <n> based?", "what's the address of <n>?"),
}


def t_company_search(b: Builder, topic: str) -> None:
    rng = b.rng
    companies = b.rows("companies")
    kind = rng.choice(
        ["type", "type", "industry", "city", "type_industry", "one_type", "one_address"]
    )
    criteria: dict[str, Any] = {}
    values: dict[str, str] = {}
    if kind in ("type", "type_industry"):
        t = rng.choice(("Partner", "Vendor", "Competitor"))
        criteria["type"] = t
        values.update(t=t, t_lc=t.lower())
    if kind in ("industry", "type_industry"):
        ind = str(rng.choice(companies)["industry"])
        criteria["industry"] = ind
        values["v"] = ind
    if kind == "city":
        addr = str(rng.choice(companies)["address"])
        city = addr.split(", ")[1]
        criteria["address"] = city
        values["v"] = city
    if kind.startswith("one_"):
        c = rng.choice(companies)
        words = str(c["name"]).split()
        frag = str(c["name"]) if rng.random() < 0.6 else words[0]
        if len(b.probe("company_search", {"name": frag})) != 1:
            frag = str(c["name"])
        criteria["name"] = frag
        values["n"] = frag if frag == c["name"] else str(c["name"])
    found = b.probe("company_search", criteria)
    if not _list_ok(found, len(companies)):
        raise Skip("no company list")
    text = P.say(rng, Q_COMPANY[kind], **values)

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        if kind == "one_type":
            return [str(rows[0]["type"])]
        if kind == "one_address":
            return [str(rows[0]["address"]).split(", ")[1]]
        return names_facts(rows, limit=5)

    b.commit(
        Draft(
            ask(b, text) if text.endswith("?") else req(b, text),
            [Call("company_search", criteria)],
            topic,
            "company_search",
            facts=facts,
        )
    )


# == documents and notes ==============================================================
TARGET_KINDS_DOC = ("opportunity", "quote", "contract", "client")
TARGET_KINDS_NOTE = ("opportunity", "quote", "contract", "client", "contact")
ENTITY_TYPE = {
    "opportunity": "Opportunity",
    "quote": "Quote",
    "contract": "Contract",
    "client": "Client",
    "contact": "Contact",
}


def pick_target(b: Builder, kinds: Sequence[str]) -> tuple[str, str, Ref]:
    """The record a document or note goes on: usually the one just talked about."""
    rng = b.rng
    last = [(k, r) for k, r in reversed(b.last_mentions) if k in kinds and b.exists(k, r)]
    if last and rng.random() < 0.8:
        kind, rid = last[0]
    else:
        weights = {"opportunity": 50, "quote": 18, "contract": 12, "client": 14, "contact": 8}
        kind = rng.choices(list(kinds), [weights[k] for k in kinds])[0]
        table = {
            "opportunity": "opportunities",
            "quote": "quotes",
            "contract": "contracts",
            "client": "clients",
            "contact": "contacts",
        }[kind]
        rows = b.rows(table)
        rec = b.prefer(kind, rows, 0.7)
        rid = str(
            rec[
                {
                    "opportunity": "opportunity_id",
                    "quote": "quote_id",
                    "contract": "contract_id",
                    "client": "client_id",
                    "contact": "contact_id",
                }[kind]
            ]
        )
    locate: dict[str, Callable[..., Ref]] = {
        "opportunity": locate_opp,
        "quote": locate_quote,
        "contract": locate_contract,
        "client": locate_client,
        "contact": locate_contact,
    }
    return kind, rid, locate[kind](b, rid)


def file_stem(b: Builder, kind: str, rid: str) -> tuple[str, str, tuple[str, ...]]:
    """(stem, what the document is in words, allowed extensions for it)."""
    rng = b.rng
    if kind in ("opportunity", "quote"):
        oid = rid if kind == "opportunity" else str(b.get("quote", rid)["opportunity_id"])
        o = b.get("opportunity", oid)
        parts = split_deal(str(o["name"]).replace(" (Clone)", ""))
        head = (parts[0] if parts else str(o["name"])).split()[0]
        words = (parts[1] if parts else "").split()[:2]
        base = [head, *words]
    else:
        cid = rid if kind == "client" else str(b.get(kind, rid)["client_id"])
        base = [short_client(b.client_name(cid)).split()[0]]
    doc_kind, exts = rng.choice(pools.DOC_KINDS)
    if kind == "quote":
        doc_kind, exts = rng.choice((("Quote", ("pdf", "xlsx")), ("Pricing", ("xlsx", "pdf"))))
    if kind == "contract":
        doc_kind, exts = rng.choice(
            (
                ("Signed_Contract", ("pdf",)),
                ("MSA", ("pdf", "docx")),
                ("Renewal_Terms", ("pdf", "docx")),
                ("Order_Form", ("pdf",)),
            )
        )
    parts2 = [_file_word(x) for x in base if _file_word(x)] + [doc_kind]
    if rng.random() < 0.35:
        parts2.append(rng.choice(("v2", "v3", "final", "2025", "signed", "draft")))
    sep = rng.choice(("_", "_", "-"))
    stem = sep.join(parts2)
    words_ = pools.DOC_KIND_WORDS.get(doc_kind, doc_kind.lower().replace("_", " "))
    if doc_kind == "Quote":
        words_ = "quote PDF"
    return stem, words_, exts


T_UPLOAD = (
    "attach <file> to <t>",
    "upload <file> to <t>",
    "!I've got the <what> for <t> — it's <file>. Upload it<extras>",
    "add the document <file> to <t>",
    "put <file> on <t>",
    "upload the <what> (<file>) to <it>",
    "store <file> against <t>",
    "attach the <what> <file> to <t>",
)


def t_upload_document(b: Builder, topic: str, kinds: Sequence[str] = TARGET_KINDS_DOC) -> None:
    rng = b.rng
    kind, rid, ref = pick_target(b, kinds)
    stem, what, exts = file_stem(b, kind, rid)
    name = f"{stem}.{rng.choice(exts)}"
    if name in b.used_files:
        raise Skip("file used")
    b.used_files.add(name)
    args: dict[str, Any] = {"entity_type": ENTITY_TYPE[kind], "entity_id": rid, "file_name": name}
    extras = ""
    if rng.random() < 0.3:
        args["uploaded_by"] = rng.choice(pools.OWNERS)
        extras += rng.choice(
            [
                f", uploaded by {args['uploaded_by']}",
                f" and mark it as uploaded by {args['uploaded_by']}",
            ]
        )
    if rng.random() < 0.12:
        args["file_url"] = f"https://files.example.com/crm/{name}"
        extras += f"; the file lives at {args['file_url']}"
    core = P.say(rng, T_UPLOAD, file=name, t=ref.np, it=ref.it, what=what, extras="")
    core += extras
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("upload_document", args)],
            topic,
            "upload_document",
            facts=lambda r: [str(r[-1]["file_name"])],
            mentions=[(kind, rid)],
        )
    )


T_NOTE = (
    "add a note to <t>: <qc>",
    "log a note on <it> saying <qc>",
    "!note on <t>: <qc>",
    "put a note on <t> — <qc>",
    "record this on <t>: <qc>",
    "add this note to <t>. <qc>",
    "leave a note on <t> for the team: <qc>",
    "jot this down on <t>: <qc>",
)


def t_add_note(b: Builder, topic: str, kinds: Sequence[str] = TARGET_KINDS_NOTE) -> None:
    rng = b.rng
    kind, rid, ref = pick_target(b, kinds)
    content = note_text(b)
    args: dict[str, Any] = {"entity_type": ENTITY_TYPE[kind], "entity_id": rid, "content": content}
    core = P.say(rng, T_NOTE, t=ref.np, it=ref.it, qc=P.quote_text(rng, content))
    if rng.random() < 0.25:
        args["created_by"] = rng.choice(pools.OWNERS)
        core += rng.choice([f" (from {args['created_by']})", f". Sign it as {args['created_by']}"])
    b.commit(
        Draft(
            req(b, core),
            [*ref.calls, Call("add_note", args)],
            topic,
            "add_note",
            mentions=[(kind, rid)],
        )
    )


def t_contract_document(b: Builder, topic: str) -> None:
    t_upload_document(b, topic, ("contract",))


def t_client_document(b: Builder, topic: str) -> None:
    t_upload_document(b, topic, ("client",))


def t_contract_note(b: Builder, topic: str) -> None:
    t_add_note(b, topic, ("contract",))


def t_contact_note(b: Builder, topic: str) -> None:
    t_add_note(b, topic, ("contact",))


def t_client_note(b: Builder, topic: str) -> None:
    t_add_note(b, topic, ("client",))


# == registry =========================================================================
@dataclass(frozen=True)
class Task:
    name: str
    tool: str
    run: Callable[[Builder, str], None]
    topics: tuple[str, ...]  # natural topic first; the others when that is the workflow

    def topic_for(self, workflow: str) -> str:
        return workflow if workflow in self.topics else self.topics[0]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("create_new_opportunity", "create_new_opportunity", t_create_opportunity, (OPP,)),
        Task("modify_opportunity", "modify_opportunity", t_modify_opportunity, (OPP,)),
        Task("find_opportunity", "opportunity_search", t_find_opportunity, (OPP,)),
        Task("list_opportunities", "opportunity_search", t_list_opportunities, (OPP,)),
        Task(
            "view_opportunity_details", "view_opportunity_details", t_view_opportunity, (OPP, QUOTE)
        ),
        Task("opportunity_details", "opportunity_details", t_opportunity_details, (OPP,)),
        Task("clone_opportunity", "clone_opportunity", t_clone_opportunity, (OPP,)),
        Task("summarize_opportunities", "summarize_opportunities", t_summarize, (OPP,)),
        Task("delete_opportunity", "delete_opportunity", t_delete_opportunity, (OPP,)),
        Task("create_quote", "create_quote", t_create_quote, (QUOTE,)),
        Task("modify_quote", "modify_quote", t_modify_quote, (QUOTE,)),
        Task("cancel_quote", "cancel_quote", t_cancel_quote, (QUOTE,)),
        Task("delete_quote", "delete_quote", t_delete_quote, (QUOTE,)),
        Task("quote_search", "quote_search", t_quote_search, (QUOTE,)),
        Task("quote_details", "quote_details", t_quote_details, (QUOTE,)),
        Task("compare_quotes", "compare_quotes", t_compare, (QUOTE,)),
        Task("compare_quote_details", "compare_quote_details", t_compare_details, (QUOTE,)),
        Task("quote_prefixes", "quote_prefixes", t_quote_prefixes, (QUOTE,)),
        Task("create_new_client", "create_new_client", t_create_client, (CLIENT,)),
        Task("modify_client", "modify_client", t_modify_client, (CLIENT, COMPANY)),
        Task("client_lookup", "client_search", t_client_lookup, (CLIENT, COMPANY)),
        Task("client_list", "client_search", t_client_list, (CLIENT, COMPANY)),
        Task("create_new_contact", "create_new_contact", t_create_contact, (CONTACT,)),
        Task("modify_contact", "modify_contact", t_modify_contact, (CONTACT,)),
        Task("contact_lookup", "contact_search", t_contact_lookup, (CONTACT,)),
        Task("contact_list", "contact_search", t_contact_list, (CONTACT, COMPANY)),
        Task("create_contract", "create_contract", t_create_contract, (CONTRACT,)),
        Task("contract_search", "contract_search", t_contract_search, (CONTRACT, COMPANY)),
        Task("company_search", "company_search", t_company_search, (COMPANY,)),
        Task("account_deals", "opportunity_search", t_account_deals, (COMPANY, CLIENT)),
        Task("account_pipeline", "summarize_opportunities", t_account_pipeline, (COMPANY, CLIENT)),
        Task("upload_document", "upload_document", t_upload_document, (DOCUMENT,)),
        Task("opp_documents", "view_opportunity_details", t_opp_documents, (DOCUMENT,)),
        Task("quote_documents", "quote_details", t_quote_documents, (DOCUMENT,)),
        Task("add_note", "add_note", t_add_note, (NOTES,)),
        Task("contract_document", "upload_document", t_contract_document, (CONTRACT, DOCUMENT)),
        Task("client_document", "upload_document", t_client_document, (CLIENT, DOCUMENT)),
        Task("contract_note", "add_note", t_contract_note, (CONTRACT, NOTES)),
        Task("contact_note", "add_note", t_contact_note, (CONTACT, NOTES)),
        Task("client_note", "add_note", t_client_note, (CLIENT, COMPANY, NOTES)),
        Task("opp_notes", "view_opportunity_details", t_opp_notes, (NOTES,)),
        Task("quote_notes", "quote_details", t_quote_notes, (NOTES,)),
    )
}
