"""Opportunity requests and the deal rules (close date, probability, closed deals, amount
limit): deals are a third of production traffic, and most chains start with one."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import CLOSED, OPEN_STAGES, Builder, Call, Skip, short_client
from pytest_crmbench.generate.precision import misses
from pytest_crmbench.generate.refer import count_sub, locate
from pytest_crmbench.generate.workflows.common import (
    QUOTE,
    Search,
    act,
    amount_near,
    ask,
    ask_list,
    commit,
    entity,
    future_iso,
    list_ok,
    listed_names,
    looked_up,
    m,
    modify,
    new_owner,
    note_text,
    notes_facts,
    pct,
    pick_client,
    pick_open_opp,
    pick_unseen,
    recover,
    recovers,
    refuse,
    req,
    req_or_ask,
    search_until,
    stage_say,
)

PAST = "Close date must be today or in the future"
PROB_RANGE = "Probability must be between 1 and 99"
PROB_WHOLE = "Probability must be expressed as a whole-number percentage"
CLOSED_EDIT = "Cannot modify closed opportunity fields"
TOO_BIG = "must not exceed 10,000,000"


# == what users say ==================================================================
T_CREATE_OPP = (
    "log a new [deal|opportunity|opp] for <c>: <qname>, <amount>, <stage> stage<extras>",
    "create an opportunity called <qname> for <c> — <amount>, stage <stage><extras>",
    "open a new deal in <stage> with <c> named <qname>, worth <amount><extras>",
    "add a <amount_adj> [deal|opportunity|opp] for <c>. Name it <qname> and put it in "
    "<stage><extras>",
    "set up a new [deal|opportunity] under <c>: <qname>, <amount>, currently in <stage><extras>",
    "create [a deal|an opportunity] for <c> named <qname>. Amount <amount>, stage <stage><extras>",
    "!new opp for <c>: <qname>, <amount>, <stage><extras>",
    "add the <qname> opportunity for <c> at <amount> in <stage><extras>",
    "register a [deal|new opportunity] with <c>, <amount>, named <qname>, stage <stage><extras>",
    "!<cn> [wants|is interested in|asked about] <topic_lc>. Create [a deal|an opportunity] "
    "<qname> for <amount> at the <stage> stage<extras>",
    "!we've got a new [deal|opportunity] with <cn>: <qname>, <amount>, <stage><extras>. "
    "[Log it|Add it to the CRM|Please create it]",
)
T_CLOSE_SAID = (
    ", closing <d>",
    ", expected to close <d>",
    ", with a close date of <d>",
    ", target close <d>",
    ", close date <d>",
)
T_PROB_SAID = (", <p> probability", ", probability <p>", ", <p> likely", ", win probability <p>")
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
        "!<opp> should be <v> now — please change it",
        "revise <opp> to <v>",
    ),
    "close_date": (
        "push the close date of <opp> to <v>",
        "move the expected close of <opp> to <v>",
        "change the close date on <opp> to <v>",
        "set <it> to close on <v>",
        "!<opp> will now close <v>; adjust the record",
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
    "name": ("rename <it> to <v>", "change the name of <opp> to <v>", "call <it> <v> from now on"),
    "notes": ("set the notes on <opp> to <v>", "replace the notes of <opp> with <v>"),
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
T_CLONE = (
    "clone <it>",
    "make a copy of <opp>",
    "duplicate <it>",
    "clone <opp> — we're pitching the same package [to another division|again next year]",
    "create a clone of <opp>",
    "!can we reuse <opp>? Clone it",
)
T_DELETE_OPP = (
    "delete <it>",
    "remove <opp> from the CRM",
    "!<opp> is dead — delete it",
    "get rid of <opp>",
    "delete <opp>, it was a duplicate",
    "remove <opp> entirely",
)
Q_OPP_SINGLE: dict[str, tuple[str, ...]] = {
    "stage": (
        "what stage is <opp> in?",
        "where does <opp> stand — which stage?",
        "which stage is <opp> at right now?",
    ),
    "amount": ("how big is <opp>?", "what's <opp> worth?", "how much is <opp> for?"),
    "close_date": ("when is <opp> expected to close?", "what's the close date of <opp>?"),
    "owner": ("who owns <opp>?", "who's the owner of <opp>?"),
    "probability": ("what win probability do we have on <opp>?", "how likely is <opp> to close?"),
    "overview": (
        "pull up <opp>. What stage is it in, and what's it worth?",
        "find <opp> — I need its stage and its value.",
        "look up <opp> and tell me its stage and amount.",
        "where is <opp> at — stage, and the dollar figure?",
    ),
}
Q_OPP_LIST = (
    "which deals do we have <w>?",
    "give me a list of the opportunities <w>.",
    "list all opps <w>.",
    "what opportunities are there <w>?",
    "pull up every deal <w>.",
    "can you find the deals <w>?",
)
Q_SUMMARY = (
    "how many deals are there <w>, and what are they worth in total?",
    "give me a pipeline summary <w>: count and total value.",
    "summarize the opportunities <w>.",
    "tell me the total value of the deals <w>, and how many there are.",
    "pipeline check: count and total amount of opportunities <w>?",
)
T_VIEW: dict[str, tuple[str, ...]] = {
    "overview": (
        "give me the full picture of <opp>: the client, where it stands and what it's worth.",
        "show me everything on <opp> — who's the client, what stage, how much, value-wise?",
        "open <opp> and tell me the client, stage and amount.",
        "what are the details of <opp>? Client, stage, value.",
        "which client is <opp> for, what stage is it at and what's its size?",
    ),
    "quotes": (
        "what quotes are on <opp>?",
        "how many quotes does <opp> have, and for how much?",
        "pull the quotes attached to <opp>.",
    ),
    "docs": (
        "what documents are attached to <opp>?",
        "which files do we have on <opp>?",
        "list the documents on <opp>.",
        "display the files uploaded to <opp>.",
    ),
    "notes": (
        "what notes are there on <opp>?",
        "read me the notes on <opp>.",
        "any notes logged on <opp>?",
        "what has the team noted on <opp>?",
    ),
}
VIEW_RUBRIC = {
    "overview": "Names the deal's client, stage and amount as the CRM records them, about "
    "this deal only.",
    "quotes": "Lists the quotes on this deal with their amounts (and how many there are); "
    "no quotes of other deals.",
    "docs": "Lists the documents attached to this deal by file name; no files of other records.",
    "notes": "Relays what the notes on this deal say (their content, not only who wrote "
    "them); no notes of other records.",
}
T_DETAILS_ALIAS = (
    "get me the opportunity details for <opp>.",
    "!I need the details of <opp>.",
    "!opportunity details for <opp>, please.",
    "fetch the details on <opp>.",
)


# == create ===========================================================================
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


def deal_name(client_name: str, topic: str) -> str:
    return f"{short_client(client_name)} – {topic}"


def prob_for(b: Builder, stage: str) -> int:
    low, high = {
        "Prospecting": (1, 4),
        "Qualification": (3, 8),
        "Proposal": (6, 12),
        "Negotiation": (12, 18),
    }.get(stage, (2, 18))
    return b.rng.randint(low, high) * 5


def t_create_opportunity(b: Builder, topic: str) -> None:
    rng = b.rng
    c = pick_client(b, 0.85, active=True)
    cid = str(c["client_id"])
    subject = new_topic(b)
    name = deal_name(str(c["name"]), subject)
    amount = b.amount()
    stage = rng.choices(OPEN_STAGES, (35, 30, 22, 13))[0]
    args: dict[str, Any] = {"name": name, "client_id": cid, "amount": amount, "stage": stage}
    extras = []
    if rng.random() < 0.65:
        args["close_date"], said = future_iso(b)
        extras.append(P.say(rng, T_CLOSE_SAID, d=said))
    if rng.random() < 0.4:
        args["probability"] = prob_for(b, stage)
        extras.append(P.say(rng, T_PROB_SAID, p=P.percent(rng, args["probability"])))
    if rng.random() < 0.25:
        args["owner"] = new_owner(b)
        owned = [", owned by <o>", ", assigned to <o>", ", <o> will own it"]
        extras.append(P.say(rng, owned, o=args["owner"]))
    if rng.random() < 0.08:
        args["notes"] = note_text(b)
        noted = ["; notes: <n>", ", with the note <n>"]
        extras.append(P.say(rng, noted, n=P.quote_text(rng, args["notes"])))
    act(
        b,
        topic,
        locate(b, "client", cid),
        T_CREATE_OPP,
        Call("create_new_opportunity", args),
        lambda r: [str(r[-1]["name"]), m(r[-1]["amount"])],
        qname=P.quoted(rng, name),
        amount=b.say_money(amount),
        amount_adj=rng.choice([f"${m(amount)}"] * 2),
        stage=stage_say(b, stage),
        extras="".join(extras),
        topic_lc=P.topic_words(subject),
    )


# == modify ==========================================================================
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
    ref = locate(b, "opportunity", oid)
    templates: Sequence[str]
    v = c1 = c2 = ""
    if won is not None:
        templates = T_WON if won == "Closed-Won" else T_LOST
    elif len(fields) == 1:
        templates, v = T_MOD_ONE[fields[0]], said[fields[0]]
    else:
        templates = T_MOD_TWO
        c1, c2 = (P.say(rng, CLAUSE[f], v=said[f]) for f in fields)
    facts = [opp_fact(f, value) for f, value in updates.items() if f != "notes"]
    change = modify("opportunity", oid, **updates)
    act(b, topic, ref, templates, change, lambda r: facts, v=v, c1=c1, c2=c2)


# == clone, delete ===================================================================
def t_clone_opportunity(b: Builder, topic: str) -> None:
    pool = b.open_opps() if b.rng.random() < 0.85 else b.closed_opps()
    pool = [o for o in pool if "(Clone)" not in str(o["name"])]
    oid = str(b.prefer("opportunity", pool, 0.8)["opportunity_id"])
    clone = Call("clone_opportunity", {"opportunity_id": oid})
    act(b, topic, locate(b, "opportunity", oid), T_CLONE, clone, lambda r: [str(r[-1]["name"])])


def t_delete_opportunity(b: Builder, topic: str) -> None:
    created = [o for o in b.rows("opportunities") if o["opportunity_id"] in b.created]
    if created and b.rng.random() < 0.6:
        o = b.prefer("opportunity", created, 0.7)
    else:
        o = b.prefer("opportunity", b.open_opps(), 0.6)
    oid, name = str(o["opportunity_id"]), str(o["name"])
    ref = locate(b, "opportunity", oid)
    delete = Call("delete_opportunity", {"opportunity_id": oid})
    act(b, topic, ref, T_DELETE_OPP, delete, (lambda r: [name]) if ref.calls else None)


# == find, list, summarize ===========================================================
def t_find_opportunity(b: Builder, topic: str) -> None:
    """opportunity_search for one deal the user names (a lookup that answers a question)."""
    o = pick_unseen(b, "opportunity")
    ref = locate(b, "opportunity", str(o["opportunity_id"]))
    if not ref.calls:
        raise Skip("no lookup")
    kinds = ["stage", "amount", "overview", "overview", "owner"]
    kinds += [k for k in ("close_date", "probability") if o.get(k)]
    kind = b.rng.choice(kinds)

    def facts(r: list[Any]) -> list[str]:
        rec = looked_up(r, ref)
        if kind == "overview":
            return [str(rec["stage"]), m(rec["amount"])]
        if kind == "amount":
            return [m(rec["amount"])]
        if kind == "probability":
            return [pct(rec["probability"])]
        return [str(rec[kind])]

    avoid = misses(b, "opportunity", anchors=[str(o["opportunity_id"])])
    act(b, topic, ref, Q_OPP_SINGLE[kind], None, facts, wrap=ask, avoid=avoid)


def _opp_search(b: Builder, *, with_client: bool) -> Search:
    """A search for a list of deals, and the words for it."""
    rng = b.rng
    search = Search()
    choice = rng.choice(
        ["stage", "owner_stage", "owner", "client", "min", "min_stage", "window", "name"]
        if not with_client
        else ["client", "client", "client_stage"]
    )
    if choice in ("client", "client_stage"):
        c = pick_client(b, 0.7)
        ref = search.ref = locate(b, "client", str(c["client_id"]))
        search.add("client_id", c["client_id"], rng.choice([f"with {ref.np}", f"for {ref.np}"]))
    if choice in ("stage", "owner_stage", "min_stage", "client_stage"):
        stage = rng.choice((*OPEN_STAGES, "Closed-Won", "Closed-Lost"))
        said = rng.choice([f"in {stage}", f"at the {stage} stage", f"in the {stage} stage"])
        search.add("stage", stage, said)
    if choice in ("owner", "owner_stage"):
        owner = rng.choice(pools.OWNERS)
        search.add("owner", owner, rng.choice([f"owned by {owner}", f"that {owner} owns"]))
    if choice in ("min", "min_stage"):
        low = rng.choice((100_000, 150_000, 200_000, 250_000, 300_000, 500_000, 1_000_000))
        said = rng.choice([f"worth at least {b.say_money(low)}", f"of {b.say_money(low)} or more"])
        search.add("min_amount", low, said)
    if choice == "window":
        end = b.future_date(30, 200)
        search.criteria["close_date_after"] = b.today.isoformat()
        said = rng.choice(
            [
                f"closing between {b.say_date(b.today, with_short=False)} and {b.say_date(end)}",
                f"with a close date from today ({b.today.isoformat()}) through {b.say_date(end)}",
            ]
        )
        search.add("close_date_before", end.isoformat(), said)
    if choice == "name":
        frag = rng.choice(("Renewal", "Portal", "Platform", "Phase", "Analytics", "Pilot"))
        said = rng.choice([f"with '{frag}' in the name", f"whose name contains {frag}"])
        search.add("name", frag, said)
    return search


def t_list_opportunities(b: Builder, topic: str, *, with_client: bool = False) -> None:
    total = len(b.rows("opportunities"))
    search, found = search_until(
        b,
        "opportunity_search",
        lambda: _opp_search(b, with_client=with_client),
        lambda _, found: list_ok(found, total),
    )
    w = " and ".join(search.words)
    ask_list(b, topic, "opportunity", search, found, Q_OPP_LIST, listed_names, w=w)


def t_summarize(b: Builder, topic: str, *, with_client: bool = False) -> None:
    total = len(b.rows("opportunities"))

    def draw() -> Search | None:
        search = _opp_search(b, with_client=with_client)
        return None if "name" in search.criteria else search  # no pipeline by name fragment

    search, _ = search_until(
        b, "opportunity_search", draw, lambda _, found: 1 <= len(found) < total
    )
    w = " and ".join(search.words)

    def rubric(r: list[Any]) -> str:
        s = r[-1]
        return (
            f"Reports how many opportunities there are {w} ({s['total_count']}) and their "
            f"total value ({m(s['total_amount'])}), from the CRM's figures; deals outside "
            "that filter are neither counted nor named."
        )

    act(
        b,
        topic,
        search.ref,
        Q_SUMMARY,
        Call("summarize_opportunities", search.criteria),
        lambda r: [str(r[-1]["total_count"]), m(r[-1]["total_amount"])],
        wrap=req_or_ask,
        avoid=misses(b, "opportunity", criteria=search.criteria),
        rubric=rubric,
        w=w,
    )


t_account_deals = partial(t_list_opportunities, with_client=True)
t_account_pipeline = partial(t_summarize, with_client=True)


# == details =========================================================================
def _view(b: Builder, topic: str, tool: str, kind: str) -> None:
    opps = b.rows("opportunities")
    if kind == "quotes":
        having = {str(q["opportunity_id"]) for q in b.rows("quotes")}
        opps = [o for o in opps if o["opportunity_id"] in having]
    elif kind in ("docs", "notes"):
        table = "documents" if kind == "docs" else "notes"
        rows = b.rows(table)
        having = {str(d["entity_id"]) for d in rows if d["entity_type"] == "Opportunity"}
        opps = [o for o in opps if o["opportunity_id"] in having]
    oid = str(b.prefer("opportunity", opps, 0.75)["opportunity_id"])
    alias = tool == "opportunity_details" and kind == "overview"

    def facts(r: list[Any]) -> list[str]:
        d = r[-1]
        if kind == "overview":
            return [str(d["client"]["name"]), str(d["stage"]), m(d["amount"])]
        if kind == "quotes":
            qs = d["quotes"]
            return ([str(len(qs))] if len(qs) > 1 else []) + [m(q["amount"]) for q in qs[:3]]
        if kind == "docs":
            return [str(x["file_name"]) for x in d["documents"][:4]]
        return notes_facts(d["notes"])

    ref = locate(b, "opportunity", oid)
    templates = T_DETAILS_ALIAS if alias else T_VIEW[kind]
    act(
        b,
        topic,
        ref,
        templates,
        Call(tool, {"opportunity_id": oid}),
        facts,
        wrap=req_or_ask,
        avoid=misses(b, "opportunity", anchors=[oid]),
        rubric=lambda r: VIEW_RUBRIC[kind],
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


# == refusals ========================================================================
def _refuse_new_deal(
    b: Builder,
    topic: str,
    templates: Sequence[str],
    error: str,
    amount: float | None = None,
    close: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A new deal (<n>, <a>, <s>, <d>) the CRM refuses; its arguments, for the correction.

    ``close`` is the close date: (ISO, as the user says it).
    """
    c = pick_client(b, 0.8, active=True)
    cid = str(c["client_id"])
    ref = locate(b, "client", cid)
    name = deal_name(str(c["name"]), new_topic(b))
    amount = b.amount() if amount is None else amount
    stage = b.rng.choice(OPEN_STAGES)
    args = {"name": name, "client_id": cid, "amount": amount, "stage": stage}
    if close is not None:
        args["close_date"] = close[0]
    n, a, s = P.quoted(b.rng, name), b.say_money(amount), stage_say(b, stage)
    d = close[1] if close else ""
    call = Call("create_new_opportunity", args)
    refuse(b, topic, ref, templates, call, error, n=n, a=a, s=s, d=d)
    return args


def r_past_close(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    past = b.past_date()
    said = b.say_date(past, with_short=False)
    if rng.random() < 0.7:
        oid = str(pick_open_opp(b)["opportunity_id"])
        asks = [
            "push the close date of <opp> to <d>",
            "set <it> to close on <d>",
            "change the expected close of <opp> to <d>",
            "update the close date on <opp> to <d>",
        ]
        ref = locate(b, "opportunity", oid)
        too_early = modify("opportunity", oid, close_date=past.isoformat())
        refuse(b, topic, ref, asks, too_early, PAST, d=said)
        if recovers(b, room):
            d = b.future_date()
            fixed = modify("opportunity", oid, close_date=d.isoformat())
            instead = ["use <d> instead", "make it <d> then", "set it to <d>"]
            facts = [d.isoformat()]
            about = [ref.about]
            recover(b, topic, instead, fixed, lambda r: facts, about=about, d=b.say_date(d))
        return
    asks = [
        "log a new deal for <c>: <n>, <a>, <s>, closing <d>",
        "create an opportunity <n> for <c> — <a>, stage <s>, close date <d>",
        "add the <n> opportunity for <c>: <a>, <s>, expected close <d>",
    ]
    args = _refuse_new_deal(b, topic, asks, PAST, close=(past.isoformat(), said))
    if recovers(b, room):
        d = b.future_date()
        fixed = Call("create_new_opportunity", {**args, "close_date": d.isoformat()})
        instead = ["use <d> as the close date", "create it with a close date of <d>"]
        facts = [args["name"], m(args["amount"])]
        recover(b, topic, instead, fixed, lambda r: facts, d=b.say_date(d))


def r_probability(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    if rng.random() < 0.65:
        value: float = rng.choice([150, 150, 120, 100, 0, 0, 200])
    else:
        value = rng.choice([33.5, 12.5, 62.5, 87.5, 45.5])
    error = PROB_WHOLE if value != int(value) else PROB_RANGE
    o = pick_open_opp(b)
    oid = str(o["opportunity_id"])
    if value:
        asks = [
            "set the probability on <opp> to <p>",
            "update <it> to a <p> win probability",
            "change the win probability of <opp> to <p>",
            "!we're certain about <opp> — make the probability <p>",
            "put the probability of <opp> at <p>",
        ]
    else:
        asks = [
            "set the probability on <opp> to <p> — they went quiet",
            "drop the win probability of <opp> to <p>",
        ]
    ref = locate(b, "opportunity", oid)
    wrong = modify("opportunity", oid, probability=value)
    refuse(b, topic, ref, asks, wrong, error, p=P.percent(rng, value))
    if recovers(b, room):
        good = rng.choice([v for v in (5, 10, 35, 60, 90, 95, 99) if v != o.get("probability")])
        fixed = modify("opportunity", oid, probability=good)
        instead = ["make it <p> then", "set it to <p> instead", "use <p>"]
        facts = [f"{good}%"]
        recover(
            b, topic, instead, fixed, lambda r: facts, about=[ref.about], p=P.percent(rng, good)
        )


def r_closed_edit(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    o = b.prefer("opportunity", b.closed_opps(), 0.9)
    oid = str(o["opportunity_id"])
    ref = locate(b, "opportunity", oid)
    fld = rng.choice(["amount", "amount", "stage", "close_date", "probability"])
    value: Any
    if fld == "amount":
        value = b.amount(float(o["amount"]) * 1.05, float(o["amount"]) * 1.3)
        said = b.say_money(value)
        asks = ["bump <it> to <v>", "change the amount on <opp> to <v>", "update <opp>: amount <v>"]
    elif fld == "stage":
        value = said = rng.choice(("Negotiation", "Proposal"))
        asks = ["reopen <opp> — set it back to <v>", "move <it> back to <v>"]
    elif fld == "close_date":
        d = b.future_date()
        value, said = d.isoformat(), b.say_date(d)
        asks = ["change the close date of <opp> to <v>", "move <it> to close on <v>"]
    else:
        value = rng.choice((40, 50, 70))
        said = f"{value}%"
        asks = ["set the probability on <opp> to <v>", "give <it> a <v> probability"]
    refuse(b, topic, ref, asks, modify("opportunity", oid, **{fld: value}), CLOSED_EDIT, v=said)
    if not recovers(b, room):
        return
    about = [ref.about]
    kind = rng.choice(["note", "owner", "clone"])
    if kind == "note":
        content = note_text(b)
        note = Call("add_note", {**entity("opportunity", oid), "content": content})
        instead = ["then just add a note to it: <c>", "add a note on the deal instead: <c>"]
        recover(b, topic, instead, note, about=about, c=P.quote_text(rng, content))
    elif kind == "owner":
        owner = rng.choice([x for x in pools.OWNERS if x != o.get("owner")])
        instead = ["then just reassign it to <o>", "at least change the owner to <o>"]
        reassign = modify("opportunity", oid, owner=owner)
        recover(b, topic, instead, reassign, lambda r: [owner], about=about, o=owner)
    else:
        instead = ["clone it then, and we'll work on the copy", "make a clone of it instead"]
        clone = Call("clone_opportunity", {"opportunity_id": oid})
        recover(b, topic, instead, clone, lambda r: [str(r[-1]["name"])], about=about)


def r_amount_over(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    big = float(
        rng.choice(
            [12_000_000, 12_500_000, 15_000_000, 25_000_000, 11_000_000, 10_500_000, 20_000_000]
        )
    )
    fixed = float(rng.choice([9_500_000, 10_000_000, 9_000_000, 8_750_000, 7_500_000]))
    variant = rng.choice(
        ["quote", "quote", "modify"] if topic == QUOTE else ["create", "modify", "quote"]
    )
    if variant == "create":
        asks = [
            "log a new deal for <c>: <n>, <a>, <s>",
            "create an opportunity <n> for <c> worth <a>, stage <s>",
            "!<cn> wants the enterprise package: create <n> at <a>, <s> stage",
        ]
        args = _refuse_new_deal(b, topic, asks, TOO_BIG, big)
        if recovers(b, room):
            capped = Call("create_new_opportunity", {**args, "amount": fixed})
            instead = ["cap it at <a>", "make it <a> then"]
            facts = [args["name"], m(fixed)]
            recover(b, topic, instead, capped, lambda r: facts, a=b.say_money(fixed))
        return
    oid = str(pick_open_opp(b)["opportunity_id"])
    ref = locate(b, "opportunity", oid)
    if variant == "modify":
        asks = ["change the amount on <opp> to <a>", "bump <it> to <a>"]
        too_big = modify("opportunity", oid, amount=big)
        refuse(b, topic, ref, asks, too_big, TOO_BIG, a=b.say_money(big))
        if recovers(b, room):
            capped = modify("opportunity", oid, amount=fixed)
            instead = ["cap it at <a>", "set it to <a> then"]
            about = [ref.about]
            recover(
                b, topic, instead, capped, lambda r: [m(fixed)], about=about, a=b.say_money(fixed)
            )
        return
    status = rng.choice(("Draft", "Sent"))
    args = {"opportunity_id": oid, "amount": big, "status": status}
    core = P.say(
        rng,
        [
            "create a <s> quote on <opp> for <a>",
            "quote <opp> at <a>, status <S>",
            "draft a quote of <a> for <it>",
        ],
        opp=ref.np,
        it=ref.it,
        a=b.say_money(big),
        s=status.lower(),
        S=status,
    )
    if "draft a quote" in core:
        args["status"] = "Draft"
    quote = Call("create_quote", args)
    commit(b, topic, req(b, core), [*ref.calls, quote], about=[ref.about], error=TOO_BIG)
    if recovers(b, room):
        capped = Call("create_quote", {**args, "amount": fixed})
        instead = ["make the quote <a> then", "use <a> instead"]
        recover(
            b,
            topic,
            instead,
            capped,
            lambda r: [m(fixed), str(args["status"])],
            about=[ref.about],
            a=b.say_money(fixed),
        )
