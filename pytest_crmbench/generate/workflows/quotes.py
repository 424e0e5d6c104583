"""Quote requests. A quote is usually named through its deal, so these lean on the deal in
focus."""

from __future__ import annotations

from functools import partial
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import Builder, Call, Skip
from pytest_crmbench.generate.precision import misses
from pytest_crmbench.generate.refer import locate
from pytest_crmbench.generate.workflows.common import (
    Search,
    act,
    amount_near,
    ask_list,
    commit,
    future_iso,
    list_ok,
    m,
    modify,
    notes_facts,
    pick_open_opp,
    req,
    req_or_ask,
    search_until,
)

# == what users say ==================================================================
T_CREATE_QUOTE = (
    "create a <status_lc> quote on <opp> for <amount><extras>",
    "draft a quote for <opp>: <amount>, status <status><extras>",
    "put together a quote of <amount> on <it> and mark it <status><extras>",
    "quote <opp> at <amount>, status <status><extras>",
    "add a quote to <opp> — <amount>, <status><extras>",
    "!I need a new quote for <opp>: <amount>, <status_lc><extras>",
    "prepare a <status_lc> quote for <amount> on <opp><extras>",
)
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
T_CANCEL = (
    "cancel <it>",
    "cancel <q> now",
    "!the client pulled out — cancel <q>",
    "set <q> to canceled",
    "!we won't go ahead with <q>; cancel it",
)
T_DELETE_QUOTE = (
    "delete <it>",
    "remove <q> completely",
    "get rid of <q>",
    "!<q> was a mistake — delete it",
    "delete <q> from the system",
)
Q_QUOTE_LIST = (
    "which quotes are there <w>?",
    "bring up the quotes <w>.",
    "list every quote <w>.",
    "what quotes do we have <w>?",
)
Q_QUOTE_DETAILS: dict[str, tuple[str, ...]] = {
    "overview": (
        "what are the details of <q>? Amount, status and the deal it belongs to.",
        "pull up <q> — which deal is it for, how much, and what status?",
        "give me the details on <q>.",
        "show me <q>: amount, status, opportunity.",
    ),
    "docs": (
        "which documents are attached to <q>?",
        "what files are on <q>?",
        "list the attachments of <q>.",
    ),
    "notes": ("what notes are on <q>?", "any notes on <q>?", "read me the notes on <q>."),
}
T_COMPARE: dict[str, tuple[str, ...]] = {
    "compare_quotes": (
        "compare <pair>",
        "put <pair> side by side",
        "how do <pair> compare?",
        "show me <pair> next to each other",
    ),
    "compare_quote_details": (
        "compare the details of <pair> — amounts, statuses and the total",
        "give me a comparison of <pair> with the total amount",
        "what's the combined amount of <pair>, and how do they differ?",
        "compare <pair> in detail: amounts, statuses, total",
    ),
}
Q_PREFIXES = (
    "what quote prefixes are in use?",
    "which quote numbering prefixes do we have now?",
    "list the quote prefixes we use.",
    "what prefixes are our quotes using at the moment?",
    "remind me which quote prefixes exist.",
)


QUOTE_RUBRIC = {
    "overview": "Gives this quote's amount and status and names the deal it belongs to.",
    "docs": "Lists the documents attached to this quote by file name; no files of other records.",
    "notes": "Relays what the notes on this quote say (their content, not only who wrote them).",
}


# == tasks ===========================================================================
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
        args["valid_until"], said = future_iso(b, 20, 120)
        extras.append(rng.choice([f", valid until {said}", f", good through {said}"]))
    ref = locate(b, "opportunity", oid)
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
    core = core.replace("a approved", "an approved")  # "a <status_lc> quote"
    commit(
        b,
        topic,
        req(b, core),
        [*ref.calls, Call("create_quote", args)],
        lambda r: [m(r[-1]["amount"]), str(r[-1]["status"])],
        about=[ref.about],
    )


def pick_quote(b: Builder, p_focus: float = 0.8, *, live: bool = True) -> dict[str, Any]:
    quotes = b.rows("quotes")
    if live:
        quotes = [q for q in quotes if q["status"] not in ("Canceled", "Rejected")]
        opps = {str(o["opportunity_id"]) for o in b.open_opps()}
        quotes = [q for q in quotes if q["opportunity_id"] in opps]
    return b.prefer("quote", quotes, p_focus)


def t_modify_quote(b: Builder, topic: str) -> None:
    rng = b.rng
    q = pick_quote(b)
    qid = str(q["quote_id"])
    fld = rng.choices(["status", "amount", "valid_until", "version"], (45, 30, 15, 10))[0]
    value: Any
    if fld == "status":
        nxt = {"Draft": ["Sent"], "Sent": ["Approved", "Rejected"], "Approved": ["Sent"]}
        value = said = rng.choice(nxt.get(str(q["status"]), ["Sent"]))
    elif fld == "amount":
        value = amount_near(b, float(q["amount"]), 0.85, 1.15)
        said = b.say_money(value)
    elif fld == "valid_until":
        value, said = future_iso(b, 20, 150)
    else:
        value = said = rng.choice([v for v in ("v2", "v3", "v4", "final") if v != q.get("version")])
    fact = m(value) if fld == "amount" else str(value)
    change = modify("quote", qid, **{fld: value})
    ref = locate(b, "quote", qid)
    act(b, topic, ref, T_MOD_QUOTE[fld], change, lambda r: [fact], v=said, v_lc=said.lower())


def t_cancel_quote(b: Builder, topic: str) -> None:
    qid = str(pick_quote(b)["quote_id"])
    cancel = Call("cancel_quote", {"quote_id": qid})
    act(b, topic, locate(b, "quote", qid), T_CANCEL, cancel, lambda r: [str(r[-1]["status"])])


def t_delete_quote(b: Builder, topic: str) -> None:
    q = pick_quote(b, 0.8, live=b.rng.random() < 0.5)
    qid, amount = str(q["quote_id"]), m(q["amount"])
    ref = locate(b, "quote", qid)
    delete = Call("delete_quote", {"quote_id": qid})
    act(b, topic, ref, T_DELETE_QUOTE, delete, (lambda r: [amount]) if ref.calls else None)


def t_quote_search(b: Builder, topic: str) -> None:
    rng = b.rng
    total = len(b.rows("quotes"))

    def draw() -> Search:
        search = Search()
        kind = rng.choice(["opp", "opp", "status", "prefix", "min", "status_min"])
        if kind == "opp":
            having = {str(q["opportunity_id"]) for q in b.rows("quotes")}
            opps = [x for x in b.rows("opportunities") if x["opportunity_id"] in having]
            oid = b.prefer("opportunity", opps, 0.7)["opportunity_id"]
            ref = search.ref = locate(b, "opportunity", str(oid))
            search.add("opportunity_id", oid, rng.choice([f"on {ref.np}", f"for {ref.np}"]))
        if kind in ("status", "status_min"):
            status = rng.choice(("Draft", "Sent", "Approved", "Rejected", "Canceled"))
            search.add("status", status, rng.choice([f"in {status} status", f"marked {status}"]))
        if kind == "prefix":
            prefix = rng.choice(b.probe("quote_prefixes", {}))
            said = rng.choice([f"with the {prefix} prefix", f"with prefix {prefix}"])
            search.add("quote_prefix", prefix, said)
        if kind in ("min", "status_min"):
            low = rng.choice((100_000, 200_000, 300_000, 500_000, 1_000_000))
            said = rng.choice(
                [f"worth {b.say_money(low)} or more", f"of at least {b.say_money(low)}"]
            )
            search.add("min_amount", low, said)
        return search

    search, found = search_until(
        b, "quote_search", draw, lambda _, found: list_ok(found, total, 10)
    )

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        out = [str(len(rows))] if len(rows) > 1 else []
        return out + [m(q["amount"]) for q in rows[:3]]

    w = " and ".join(search.words)
    deals = sorted({str(q["opportunity_id"]) for q in found})
    ask_list(
        b, topic, "quote", search, found, Q_QUOTE_LIST, facts, w=w, also=("opportunity", deals)
    )


def t_quote_details(b: Builder, topic: str, kind: str = "overview") -> None:
    quotes = b.rows("quotes")
    if kind in ("docs", "notes"):
        table = "documents" if kind == "docs" else "notes"
        having = {str(d["entity_id"]) for d in b.rows(table) if d["entity_type"] == "Quote"}
        quotes = [q for q in quotes if q["quote_id"] in having]
    qid = str(b.prefer("quote", quotes, 0.75)["quote_id"])

    def facts(r: list[Any]) -> list[str]:
        d = r[-1]
        if kind == "docs":
            return [str(x["file_name"]) for x in d["documents"][:4]]
        if kind == "notes":
            return notes_facts(d["notes"])
        return [m(d["amount"]), str(d["status"]), str(d["opportunity"]["name"])]

    details = Call("quote_details", {"quote_id": qid})
    ref = locate(b, "quote", qid)
    oid = str(b.get("quote", qid)["opportunity_id"])
    act(
        b,
        topic,
        ref,
        Q_QUOTE_DETAILS[kind],
        details,
        facts,
        wrap=req_or_ask,
        avoid=misses(b, "quote", anchors=[qid], also=("opportunity", [oid])),
        rubric=lambda r: QUOTE_RUBRIC[kind],
    )


t_quote_documents = partial(t_quote_details, kind="docs")
t_quote_notes = partial(t_quote_details, kind="notes")


def t_compare(b: Builder, topic: str, tool: str = "compare_quotes") -> None:
    rng = b.rng
    by_opp: dict[str, list[dict[str, Any]]] = {}
    for q in b.rows("quotes"):
        by_opp.setdefault(str(q["opportunity_id"]), []).append(q)
    opps = [
        o for o in b.rows("opportunities") if len(by_opp.get(str(o["opportunity_id"]), [])) >= 2
    ]
    oid = str(b.prefer("opportunity", opps, 0.85)["opportunity_id"])
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
    calls: list[Call] = []
    if all(q["quote_id"] in b.known for q in pair):
        pair_np = rng.choice(
            [
                f"the {labels[0]} and {labels[1]} quotes",
                f"the {labels[0]} quote and the {labels[1]} quote",
            ]
        )
    else:
        ref = locate(b, "opportunity", oid)
        calls = [*ref.calls, Call("quote_search", {"opportunity_id": oid})]
        if len(quotes) == 2:
            pair_np = rng.choice([f"the two quotes on {ref.np}", f"both quotes for {ref.np}"])
        else:
            pair_np = f"the {labels[0]} and {labels[1]} quotes on {ref.np}"
    ids = [str(q["quote_id"]) for q in pair]
    text = P.say(rng, T_COMPARE[tool], pair=pair_np)

    def facts(r: list[Any]) -> list[str]:
        d = r[-1]
        if tool == "compare_quotes":
            return [m(x["amount"]) for x in d] + sorted({str(x["status"]) for x in d})
        return [m(d["total_amount"]), *[m(x["amount"]) for x in d["quotes"]]]

    def rubric(r: list[Any]) -> str:
        if tool == "compare_quotes":
            return (
                "Puts the two quotes side by side — amount and status of each — and says "
                "which is larger; mentions no other quote."
            )
        return (
            "Gives each quote's amount and status and their combined total "
            f"({m(r[-1]['total_amount'])}), and points out how the two differ."
        )

    commit(
        b,
        topic,
        req_or_ask(b, text),
        [*calls, Call(tool, {"quote_ids": ids})],
        facts,
        about=[("opportunity", oid)] + [("quote", i) for i in ids],
        shown=("quote", ids),
        avoid=misses(b, "quote", anchors=ids, also=("opportunity", [oid])),
        rubric=rubric,
    )


t_compare_details = partial(t_compare, tool="compare_quote_details")


def t_quote_prefixes(b: Builder, topic: str) -> None:
    prefixes = Call("quote_prefixes", {})
    act(b, topic, None, Q_PREFIXES, prefixes, lambda r: [str(x) for x in r[-1]], wrap=req_or_ask)
