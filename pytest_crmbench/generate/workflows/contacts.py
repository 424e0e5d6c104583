"""Contact requests, and the email-format rule (contacts' emails are typed by hand)."""

from __future__ import annotations

from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import Builder, Call, Skip
from pytest_crmbench.generate.precision import misses
from pytest_crmbench.generate.refer import locate
from pytest_crmbench.generate.workflows.common import (
    CONTACT,
    Search,
    act,
    ask_list,
    list_ok,
    looked_up,
    modify,
    note_text,
    person,
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

BAD_EMAIL = "must be a valid email address"


# == what users say ==================================================================
T_CREATE_CONTACT = (
    "add <full> as a contact at <c><title><extras>",
    "put in a contact record for <c>: <full><title><extras>",
    "!new contact at <c> — <full><title><extras>",
    "!<full> just joined <cn><title_as>. Add them as a contact<extras>",
    "register a contact named <full> under <c><title><extras>",
    "put <full> in the CRM as a contact for <c><title><extras>",
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
        "!<pn>'s new email is <v>; change it in their record",
        "update <p> with email <v>",
    ),
    "notes": ("set the notes on <p> to <v>", "update the contact notes for <p>: <v>"),
}
Q_CONTACT_SINGLE: dict[str, tuple[str, ...]] = {
    "title": ("what's <p>'s job title?", "what does <p> do there — what's the title?"),
    "email": ("what's the email address of <p>?", "how do I email <p>?"),
    "phone": ("what number can I reach <p> on?", "do we have a number for <p>?"),
    "client": ("which client does <p> work for?", "who is <p> with — which account?"),
}
Q_CONTACT_LIST = (
    "who are our contacts <w>?",
    "list the contacts <w>.",
    "which contacts do we have <w>?",
    "show me everyone <w> in our contacts.",
)


# == tasks ===========================================================================
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
        args["email"] = f"{slug(first)}.{slug(last)}@{domain}"
        extras += rng.choice(
            [f", email {args['email']}", f". Email: {args['email']}", f" ({args['email']})"]
        )
    if rng.random() < 0.3:
        args["phone"] = phone(b)
        extras += rng.choice([f", phone {args['phone']}", f", reachable at {args['phone']}"])
    act(
        b,
        topic,
        locate(b, "client", cid, email_ok=False),
        T_CREATE_CONTACT,
        Call("create_new_contact", args),
        lambda r: [person(r[-1])],
        full=f"{first} {last}",
        title=title,
        title_as=title_as,
        extras=extras,
    )


def t_modify_contact(b: Builder, topic: str) -> None:
    rng = b.rng
    p = b.prefer("contact", b.rows("contacts"), 0.85)
    pid = str(p["contact_id"])
    fld = rng.choices(["title", "phone", "email", "notes"], (35, 30, 25, 10))[0]
    if fld == "title":
        value = said = rng.choice([t for t in pools.TITLES if t != p.get("title")])
    elif fld == "phone":
        value = said = phone(b)
    elif fld == "email":
        client = b.get("client", str(p["client_id"]))
        domain = str(client["email"]).split("@")[1]
        value = said = f"{slug(str(p['first_name']))[0]}{slug(str(p['last_name']))}@{domain}"
        if value == p.get("email"):
            raise Skip("same email")
    else:
        value = note_text(b)
        said = P.quote_text(rng, value)
    facts = [value] if fld != "notes" else []
    change = modify("contact", pid, **{fld: value})
    act(b, topic, locate(b, "contact", pid), T_MOD_CONTACT[fld], change, lambda r: facts, v=said)


def t_contact_lookup(b: Builder, topic: str) -> None:
    p = pick_unseen(b, "contact")
    kind = b.rng.choice([k for k in ("title", "email", "phone") if p.get(k)] + ["client"])
    ref = locate(b, "contact", str(p["contact_id"]), pronoun_ok=False)
    cname = b.client_name(str(p["client_id"]))
    # The contact record holds the client id; the name needs one more lookup.
    client = Call("client_search", {"client_id": p["client_id"]}) if kind == "client" else None

    def facts(r: list[Any]) -> list[str]:
        return [cname] if kind == "client" else [str(looked_up(r, ref)[kind])]

    templates = Q_CONTACT_SINGLE[kind]
    avoid = misses(b, "contact", anchors=[str(p["contact_id"])], also=("client", [p["client_id"]]))
    act(
        b,
        topic,
        ref,
        templates,
        client,
        facts,
        wrap=req_or_ask,
        task="contact_search",
        avoid=avoid,
    )


def t_contact_list(b: Builder, topic: str) -> None:
    rng = b.rng
    contacts = b.rows("contacts")

    def draw() -> Search:
        search = Search()
        kind = rng.choice(["client", "client", "last", "title", "first"])
        if kind == "client":
            c = pick_client(b, 0.7)
            ref = search.ref = locate(b, "client", str(c["client_id"]))
            search.add("client_id", c["client_id"], rng.choice([f"at {ref.np}", f"for {ref.np}"]))
        elif kind == "last":
            last = str(rng.choice(contacts)["last_name"])
            said = rng.choice([f"named {last}", f"with the last name {last}"])
            search.add("last_name", last, said)
        elif kind == "first":
            first = str(rng.choice(contacts)["first_name"])
            said = rng.choice([f"called {first}", f"with the first name {first}"])
            search.add("first_name", first, said)
        else:
            frag = rng.choice(
                ("Procurement", "Director", "Chief", "Manager", "Operations", "Finance", "VP")
            )
            said = rng.choice([f"with '{frag}' in their title", f"whose title includes {frag}"])
            search.add("title", frag, said)
        return search

    def good(search: Search, found: list[Any]) -> bool:
        # One person by first name is a lookup more than a list: asked for less often.
        alone = "first_name" in search.criteria and len(found) <= 1
        return list_ok(found, len(contacts)) and (not alone or rng.random() < 0.3)

    search, found = search_until(b, "contact_search", draw, good)
    if len(found) > 1 and "last_name" in search.criteria:
        b.extra_tags.add("disambiguation")

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        if len(rows) <= 4:
            return [person(x) for x in rows[:4]]
        return [str(len(rows))] + [person(x) for x in rows[:2]]

    ask_list(b, topic, "contact", search, found, Q_CONTACT_LIST, facts, w=search.words[0])


# == refusals ========================================================================
def _broken_email(b: Builder, first: str, last: str, domain: str) -> str:
    base = f"{slug(first)}.{slug(last)}"
    # Broken beyond guessing (no top-level domain, no @): nothing to "fix" silently.
    return b.rng.choice([f"{base}@{domain.rsplit('.', 1)[0]}", f"{base}.{domain}"])


def r_invalid_email(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    if rng.random() < 0.6:
        c = pick_client(b, 0.85)
        cid = str(c["client_id"])
        domain = str(c["email"]).split("@")[1]
        first, last = rng.choice(pools.FIRST_NAMES), rng.choice(pools.LAST_NAMES)
        bad = _broken_email(b, first, last, domain)
        args: dict[str, Any] = {"first_name": first, "last_name": last, "client_id": cid}
        args["email"] = bad
        asks = [
            "add <p> as a contact at <c>, email <e>",
            "create a contact for <c>: <p>, <e>",
            "new contact at <c> — <p> (email: <e>)",
        ]
        ref = locate(b, "client", cid, email_ok=False)
        create = Call("create_new_contact", args)
        refuse(b, CONTACT, ref, asks, create, BAD_EMAIL, p=f"{first} {last}", e=bad)
        if recovers(b, room):
            good = f"{slug(first)}.{slug(last)}@{domain}"
            fixed = Call("create_new_contact", {**args, "email": good})
            instead = ["that was a typo — it's <e>", "the email is <e>"]
            about = [("client", cid)]
            recover(b, CONTACT, instead, fixed, lambda r: [f"{first} {last}"], about=about, e=good)
        return
    p = b.prefer("contact", b.rows("contacts"), 0.85)
    pid = str(p["contact_id"])
    client = b.get("client", str(p["client_id"]))
    domain = str(client["email"]).split("@")[1]
    bad = _broken_email(b, str(p["first_name"]), str(p["last_name"]), domain)
    asks = ["change the email of <p> to <e>", "update <p> with the email <e>"]
    bad_email = modify("contact", pid, email=bad)
    refuse(b, CONTACT, locate(b, "contact", pid), asks, bad_email, BAD_EMAIL, e=bad)
    if recovers(b, room):
        first, last = slug(str(p["first_name"])), slug(str(p["last_name"]))
        good = f"{first}.{last}@{domain}"
        if good == p.get("email"):
            good = f"{first[0]}{last}@{domain}"
        fixed = modify("contact", pid, email=good)
        instead = ["sorry, typo: <e>", "it should be <e>"]
        recover(b, CONTACT, instead, fixed, lambda r: [good], about=[("contact", pid)], e=good)
