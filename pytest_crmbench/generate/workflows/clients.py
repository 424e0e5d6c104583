"""Client requests, and the unique-email rule that new clients and changed emails meet."""

from __future__ import annotations

from typing import Any

from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import Builder, Call, Skip
from pytest_crmbench.generate.precision import misses
from pytest_crmbench.generate.refer import count_sub, locate
from pytest_crmbench.generate.workflows.common import (
    CLIENT,
    COMPANY,
    Search,
    act,
    ask_list,
    list_ok,
    listed_names,
    looked_up,
    modify,
    new_owner,
    phone,
    pick_client,
    pick_unseen,
    recover,
    recovers,
    refuse,
    req_or_ask,
    search_until,
    slug,
)

DUP_EMAIL = "Client already exists with email"


# == what users say ==================================================================
T_CREATE_CLIENT = (
    "enter a new client: <name>, email <email>, status <status><extras>",
    "open a client record called <name> (<email>) as <a_status> client<extras>",
    "set up <name> as a new <status_lc> client. Their email is <email><extras>",
    "!we signed up a new [client|account]: <name>, <email>, status <status><extras>",
    "create the client <name> with email <email> and status <status><extras>",
    "!new client — <name>, <email>, <status><extras>",
    "add <name> to the CRM as <a_status> client; contact email <email><extras>",
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
    "address": ("update the address of <c> to <v>", "!<cn> moved — new address: <v>"),
    "industry": ("set the industry of <c> to <v>", "change the industry for <c> to <v>"),
    "email": (
        "change the email of <c> to <v>",
        "!the email for <cn> is now <v>; please record that",
        "update <c> with the new email <v>",
    ),
}
Q_CLIENT_SINGLE: dict[str, tuple[str, ...]] = {
    "email": ("what's the email on file for <c>?", "which email address do we have for <c>?"),
    "owner": ("who owns <c>?", "who is the account owner for <c>?"),
    "status": ("what status is <c> in?", "which status does <c> have in the CRM?"),
    "industry": ("what industry is <c> in?", "which industry do we have <c> under?"),
    "phone": ("which phone number do we have for <c>?", "look up <c> — I need their phone number."),
    "overview": (
        "what do we have on file for <c>? Email, status and owner.",
        "look up <c>: I need the email, the status and the owner.",
    ),
}
Q_CLIENT_LIST = (
    "which clients do we have <w>?",
    "list the clients <w>.",
    "pull together every account <w>.",
    "which accounts are <w>?",
)


A_STATUS = {"Prospect": "a prospect", "Active": "an active", "Inactive": "an inactive"}


# == tasks ===========================================================================
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
        domain = slug(head + tail.replace("Co.", "")) + rng.choice(pools.TLDS)
        return name, industry, domain
    raise Skip("no company name")


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
    act(
        b,
        topic,
        None,
        T_CREATE_CLIENT,
        Call("create_new_client", args),
        lambda r: [str(r[-1]["name"])],
        name=name,
        email=email,
        status=status,
        status_lc=status.lower(),
        a_status=A_STATUS[status],
        extras="".join(extras),
    )


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
    change = modify("client", cid, **{fld: value})
    ref = locate(b, "client", cid)
    act(b, topic, ref, T_MOD_CLIENT[fld], change, lambda r: [value], v=value, v_lc=value.lower())


def t_client_lookup(b: Builder, topic: str) -> None:
    c = pick_unseen(b, "client")
    kinds = ["email", "status", "overview", "overview"]
    kind = b.rng.choice(kinds + [k for k in ("owner", "industry", "phone") if c.get(k)])
    ref = locate(b, "client", str(c["client_id"]), pronoun_ok=False)
    if "@" in ref.np and kind in ("email", "overview"):
        kind = "status"  # the user named the client by its email: ask something else

    def facts(r: list[Any]) -> list[str]:
        rec = looked_up(r, ref)
        if kind == "overview":
            owner = [str(rec["owner"])] if rec.get("owner") else []
            return [str(rec["email"]), str(rec["status"]), *owner]
        return [str(rec[kind])]

    avoid = misses(b, "client", anchors=[str(c["client_id"])])
    act(b, topic, ref, Q_CLIENT_SINGLE[kind], None, facts, wrap=req_or_ask, avoid=avoid)


def t_client_list(b: Builder, topic: str) -> None:
    rng = b.rng
    clients = b.rows("clients")

    def draw() -> Search:
        search = Search()
        kind = rng.choice(["industry", "status", "owner", "industry_status", "owner_status"])
        if "industry" in kind:
            ind = str(rng.choice([c for c in clients if c.get("industry")])["industry"])
            search.add("industry", ind, rng.choice([f"in {ind}", f"in the {ind} industry"]))
        if "status" in kind:
            status = rng.choice(("Active", "Prospect", "Inactive"))
            search.add("status", status, rng.choice([f"with status {status}", f"marked {status}"]))
        if "owner" in kind:
            owner = rng.choice(pools.OWNERS)
            search.add("owner", owner, rng.choice([f"owned by {owner}", f"that {owner} owns"]))
        return search

    search, found = search_until(
        b, "client_search", draw, lambda _, found: list_ok(found, len(clients))
    )
    w = " and ".join(search.words)
    ask_list(b, topic, "client", search, found, Q_CLIENT_LIST, listed_names, w=w)


# == refusals ========================================================================
def r_duplicate_email(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    topic = topic if topic in (CLIENT, COMPANY) else CLIENT
    clients = b.rows("clients")
    owner_of = rng.choice(clients)
    taken = str(owner_of["email"])
    said = (
        taken
        if rng.random() < 0.75
        else taken.upper()
        if rng.random() < 0.3
        else taken.capitalize()
    )
    if rng.random() < 0.6:
        name, _industry, domain = new_company(b)
        status = rng.choice(("Prospect", "Active"))
        args: dict[str, Any] = {"name": name, "email": said, "status": status}
        asks = [
            "add a new client: <n>, email <e>, status <s>",
            "create the client <n> with email <e>, <s>",
            "set up <n> as <a_sl> client — their email is <e>",
        ]
        create = Call("create_new_client", args)
        a_sl = A_STATUS[status]
        refuse(b, topic, None, asks, create, DUP_EMAIL, n=name, e=said, s=status, a_sl=a_sl)
        if recovers(b, room):
            email = b.new_email(rng.choice(("info", "hello", "office")), domain)
            fixed = Call("create_new_client", {**args, "email": email})
            instead = ["use <e> instead", "their real address is <e>"]
            recover(b, topic, instead, fixed, lambda r: [name], e=email)
        return
    others = [c for c in clients if c["client_id"] != owner_of["client_id"]]
    target = b.prefer("client", others, 0.8)
    cid = str(target["client_id"])
    asks = [
        "change the email of <c> to <e>",
        "update <c> with the email <e>",
        "set the email for <c> to <e>",
    ]
    ref = locate(b, "client", cid)
    refuse(b, topic, ref, asks, modify("client", cid, email=said), DUP_EMAIL, e=said)
    if recovers(b, room):
        domain = str(target["email"]).split("@")[1]
        email = b.new_email(rng.choice(("billing", "finance", "crm")), domain)
        fixed = modify("client", cid, email=email)
        instead = ["use <e> then", "set it to <e> instead"]
        recover(b, topic, instead, fixed, lambda r: [email], about=[("client", cid)], e=email)
