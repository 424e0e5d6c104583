"""Contract requests, and the rules on contract dates and the linked deal's client."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate.builder import Builder, Call, Facts, short_client
from pytest_crmbench.generate.refer import locate
from pytest_crmbench.generate.workflows.common import (
    CONTRACT,
    Search,
    ask_list,
    commit,
    file_word,
    list_ok,
    m,
    pick_client,
    recover,
    recovers,
    refuse,
    req,
    search_until,
)

DATES = "Contract end date must not be before its start date"
WRONG_CLIENT = "does not belong to client"


# == what users say ==================================================================
T_CREATE_CONTRACT = (
    "create <a_status> contract for <c><link>, value <v>, running <s> to <e><url>",
    "set up a contract with <c>: <v>, from <s> through <e><status_tail><link><url>",
    "draw up a contract for <c> worth <v> starting <s> and ending <e><status_tail><link><url>",
    "!we need a contract record for <c> — <v>, <s> to <e><status_tail><link><url>",
    "enter a <term>-month contract for <c> starting <s> (ends <e>), value "
    "<v><status_tail><link><url>",
    "record <a_new_status> contract with <c><link>: <s> – <e>, <v><url>",
)
Q_CONTRACT_LIST = (
    "what contracts do we have <w>?",
    "bring me the contracts <w>.",
    "list the contracts <w>.",
    "which contracts are there <w>?",
)


# == tasks ===========================================================================
def contract_dates(b: Builder) -> tuple[date, date, int]:
    rng = b.rng
    month = rng.randint(0, 6)
    y, mth = divmod(b.today.month - 1 + month, 12)
    start = date(b.today.year + y, mth + 1, 1)
    term = rng.choice((12, 12, 24, 36))
    y2, m2 = divmod(start.month - 1 + term, 12)
    end = date(start.year + y2, m2 + 1, 1) - timedelta(days=1)
    return start, end, term


def contract_facts(value: float) -> Facts:
    """A new contract's value and the status the CRM gave it."""
    return lambda r: [m(value), str(r[-1]["status"])]


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
    cref = locate(b, "client", cid)
    refs = [cref]
    link = ""
    if link_opp is not None:
        oref = locate(b, "opportunity", str(link_opp["opportunity_id"]), pronoun_ok=False)
        refs.append(oref)
        args["opportunity_id"] = link_opp["opportunity_id"]
        link = rng.choice([f" tied to {oref.np}", f", linked to {oref.np}", f" for {oref.np}"])
    args.update(start_date=start.isoformat(), end_date=end.isoformat(), value=value)
    a_status, a_new_status, status_tail = "a", "a new", ""
    if rng.random() < 0.75:
        status = rng.choice(("Pending", "Pending", "Active"))
        args["status"] = status
        a_status = "a pending" if status == "Pending" else "an active"
        a_new_status = f"a new {status.lower()}"
        status_tail = rng.choice([f", status {status}", f", {status.lower()}"])
    url = ""
    if rng.random() < 0.2:
        name = file_word(short_client(str(c["name"]))).upper()
        args["document_url"] = f"https://docs.example.com/contracts/{name}-{start.year}.pdf"
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
    calls = [*(call for ref in refs for call in ref.calls), Call("create_contract", args)]
    commit(
        b,
        topic,
        req(b, core),
        calls,
        lambda r: [m(r[-1]["value"]), str(r[-1]["status"])],
        about=[ref.about for ref in refs],
    )


def t_contract_search(b: Builder, topic: str) -> None:
    rng = b.rng
    contracts = b.rows("contracts")

    def draw() -> Search:
        search = Search()
        kind = rng.choice(["client", "client", "status", "client_status"])
        if "client" in kind:
            having = {str(k["client_id"]) for k in contracts}
            c = b.prefer("client", [x for x in b.rows("clients") if x["client_id"] in having], 0.7)
            ref = search.ref = locate(b, "client", str(c["client_id"]))
            search.add("client_id", c["client_id"], rng.choice([f"with {ref.np}", f"for {ref.np}"]))
        if "status" in kind:
            status = rng.choice(("Active", "Pending", "Expired"))
            search.criteria["status"] = status
            said = rng.choice([f"in {status} status", f"that are {status.lower()}"])
            search.words.insert(0, said)  # "active contracts with Acme": the status first
        return search

    search, found = search_until(
        b, "contract_search", draw, lambda _, found: list_ok(found, len(contracts))
    )

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        out = [str(len(rows))] if len(rows) > 1 else []
        for k in rows[:3]:
            out.append(m(k["value"]) if k.get("value") is not None else str(k["status"]))
        return list(dict.fromkeys(out))

    clients = sorted({str(k["client_id"]) for k in found})
    w = " ".join(search.words)
    ask_list(
        b, topic, "contract", search, found, Q_CONTRACT_LIST, facts, w=w, also=("client", clients)
    )


# == refusals ========================================================================
def r_contract_dates(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    cid = str(pick_client(b, 0.85, active=True)["client_id"])
    ref = locate(b, "client", cid)
    start, end, _term = contract_dates(b)
    options = [
        end.replace(year=y)
        for y in range(start.year - 1, end.year)
        if not (end.month == 2 and end.day == 29)
    ]
    options = [d for d in options if d < start] + [start - timedelta(days=1)]
    wrong = options[0] if rng.random() < 0.7 else options[-1]
    value = b.amount(10_000, 600_000)
    args = {
        "client_id": cid,
        "start_date": start.isoformat(),
        "end_date": wrong.isoformat(),
        "value": value,
    }
    asks = [
        "create a contract for <c>, value <v>, starting <s> and ending <e>",
        "set up a contract with <c>: <v>, from <s> to <e>",
        "add a contract for <c> worth <v> running <s> through <e>",
    ]
    v, s = b.say_money(value), b.say_date(start, with_short=False)
    e = b.say_date(wrong, with_short=False)
    refuse(b, CONTRACT, ref, asks, Call("create_contract", args), DATES, v=v, s=s, e=e)
    if recovers(b, room):
        fixed = Call("create_contract", {**args, "end_date": end.isoformat()})
        instead = ["it ends <e>", "the end date is <e>", "end it on <e>"]
        said = b.say_date(end, with_short=False)
        recover(b, CONTRACT, instead, fixed, contract_facts(value), about=[ref.about], e=said)


def r_wrong_client(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    cid = str(pick_client(b, 0.85, active=True)["client_id"])
    o = rng.choice([o for o in b.rows("opportunities") if o["client_id"] != cid])
    oid = str(o["opportunity_id"])
    cref = locate(b, "client", cid)
    oref = locate(b, "opportunity", oid, pronoun_ok=False)
    start, end, _term = contract_dates(b)
    value = float(o["amount"])
    args = {
        "client_id": cid,
        "opportunity_id": oid,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "value": value,
    }
    core = P.say(
        rng,
        [
            "create a contract for <c> tied to <o>, value <v>, <s> to <e>",
            "set up a contract with <c> linked to <o>: <v>, from <s> through <e>",
        ],
        c=cref.np,
        o=oref.np,
        v=b.say_money(value),
        s=b.say_date(start),
        e=b.say_date(end),
    )
    calls = [*cref.calls, *oref.calls, Call("create_contract", args)]
    commit(b, CONTRACT, req(b, core), calls, about=[cref.about, oref.about], error=WRONG_CLIENT)
    if recovers(b, room):
        fixed = Call("create_contract", {k: v for k, v in args.items() if k != "opportunity_id"})
        instead = [
            "create it without linking a deal then",
            "leave the deal out and create the contract anyway",
        ]
        recover(b, CONTRACT, instead, fixed, contract_facts(value), about=[cref.about])
