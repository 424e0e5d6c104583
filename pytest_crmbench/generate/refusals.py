"""Turns the CRM must refuse, and the user's usual recovery on the next turn.

Each refusal asks for something a rule forbids — a past close date, a probability of
150 %, an edit of a closed deal, an amount over 10,000,000, an unsupported or badly named
file, a duplicate client email, a contract ending before it starts, a record deleted
earlier in the conversation … The reference calls end with the call that fails, so the
expected error is the CRM's own message; nothing changes. When there is room, the next
turn corrects the request ("OK, use Dec 15 instead") and succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import (
    OPEN_STAGES,
    Builder,
    Call,
    Draft,
    Retry,
    Skip,
    short_client,
    split_deal,
)
from pytest_crmbench.generate.refer import locate_client, locate_contact, locate_opp
from pytest_crmbench.generate.tasks import (
    CLIENT,
    COMPANY,
    CONTACT,
    CONTRACT,
    DOCUMENT,
    NOTES,
    OPP,
    QUOTE,
    TARGET_KINDS_DOC,
    _file_word,
    _slug,
    contract_dates,
    deal_name,
    file_stem,
    m,
    new_company,
    new_topic,
    note_text,
    pick_client,
    pick_open_opp,
    pick_target,
    req,
    stage_say,
    t_client_lookup,
    t_company_search,
    t_delete_opportunity,
    t_delete_quote,
    t_find_opportunity,
)

PAST = "Close date must be today or in the future"
PROB_RANGE = "Probability must be between 1 and 99"
PROB_WHOLE = "Probability must be expressed as a whole-number percentage"
CLOSED_EDIT = "Cannot modify closed opportunity fields"
TOO_BIG = "must not exceed 10,000,000"
BAD_TYPE = "is not supported"
BAD_CHARS = "may only include letters, numbers, dots, underscores, and hyphens"
NO_EXT = "must include an extension"
DUP_EMAIL = "Client already exists with email"
BAD_EMAIL = "must be a valid email address"
DATES = "Contract end date must not be before its start date"
WRONG_CLIENT = "does not belong to client"
NOT_FOUND = "not found with ID"


def _refuse(
    b: Builder,
    core: str,
    calls: list[Call],
    topic: str,
    task: str,
    error: str,
    mentions: list[tuple[str, str]],
    *,
    is_question: bool = False,
) -> None:
    user = req(b, core) if not is_question else P.question(b.rng, core, first=b.first)
    b.commit(
        Draft(user, calls, topic, task, expect="failure", error_contains=error, mentions=mentions)
    )


def _recover(b: Builder, room: int) -> bool:
    return room >= 2 and b.rng.random() < 0.7


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
    said = P.say(b.rng, RECOVER_OPENERS, x=text, X=P.cap(text))
    return P.request(b.rng, said, first=False, opener=False)


# == opportunity rules ===============================================================
def r_past_close(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    past = b.past_date()
    said = b.say_date(past, with_short=False)
    if rng.random() < 0.7:
        o = pick_open_opp(b)
        oid = str(o["opportunity_id"])
        ref = locate_opp(b, oid)
        core = P.say(
            rng,
            [
                "push the close date of <opp> to <d>",
                "set <it> to close on <d>",
                "change the expected close of <opp> to <d>",
                "update the close date on <opp> to <d>",
            ],
            opp=ref.np,
            it=ref.it,
            d=said,
        )
        _refuse(
            b,
            core,
            [
                *ref.calls,
                Call(
                    "modify_opportunity",
                    {"opportunity_id": oid, "updates": {"close_date": past.isoformat()}},
                ),
            ],
            topic,
            "modify_opportunity",
            PAST,
            [("opportunity", oid)],
        )
        if _recover(b, room):
            d = b.future_date()
            text = P.say(
                rng, ["use <d> instead", "make it <d> then", "set it to <d>"], d=b.say_date(d)
            )
            b.commit(
                Draft(
                    recovery(b, text),
                    [
                        Call(
                            "modify_opportunity",
                            {"opportunity_id": oid, "updates": {"close_date": d.isoformat()}},
                        )
                    ],
                    topic,
                    "modify_opportunity",
                    facts=lambda r: [d.isoformat()],
                    mentions=[("opportunity", oid)],
                )
            )
        return
    c = pick_client(b, 0.8, active=True)
    cid = str(c["client_id"])
    ref = locate_client(b, cid)
    name = deal_name(b, str(c["name"]), new_topic(b))
    amount = b.amount()
    stage = rng.choice(OPEN_STAGES)
    args: dict[str, Any] = {
        "name": name,
        "client_id": cid,
        "amount": amount,
        "stage": stage,
        "close_date": past.isoformat(),
    }
    core = P.say(
        rng,
        [
            "log a new deal for <c>: <n>, <a>, <s>, closing <d>",
            "create an opportunity <n> for <c> — <a>, stage <s>, close date <d>",
            "add the <n> opportunity for <c>: <a>, <s>, expected close <d>",
        ],
        c=ref.np,
        n=P.quoted(rng, name),
        a=b.say_money(amount),
        s=stage_say(b, stage),
        d=said,
    )
    _refuse(
        b,
        core,
        [*ref.calls, Call("create_new_opportunity", args)],
        topic,
        "create_new_opportunity",
        PAST,
        [("client", cid)],
    )
    if _recover(b, room):
        d = b.future_date()
        fixed = {**args, "close_date": d.isoformat()}
        text = P.say(
            rng,
            ["use <d> as the close date", "create it with a close date of <d>"],
            d=b.say_date(d),
        )
        b.commit(
            Draft(
                recovery(b, text),
                [Call("create_new_opportunity", fixed)],
                topic,
                "create_new_opportunity",
                facts=lambda r: [name, m(amount)],
            )
        )


def r_probability(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    if rng.random() < 0.65:
        value: float = rng.choice([150, 150, 120, 100, 0, 0, 200])
    else:
        value = rng.choice([33.5, 12.5, 62.5, 87.5, 45.5])
    error = PROB_WHOLE if value != int(value) else PROB_RANGE
    o = pick_open_opp(b)
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    core = P.say(
        rng,
        [
            "set the probability on <opp> to <p>",
            "update <it> to a <p> win probability",
            "change the win probability of <opp> to <p>",
            "!we're certain about <opp> — make the probability <p>",
            "put the probability of <opp> at <p>",
        ]
        if value
        else [
            "set the probability on <opp> to <p> — they went quiet",
            "drop the win probability of <opp> to <p>",
        ],
        opp=ref.np,
        it=ref.it,
        p=P.percent(rng, value),
    )
    _refuse(
        b,
        core,
        [
            *ref.calls,
            Call("modify_opportunity", {"opportunity_id": oid, "updates": {"probability": value}}),
        ],
        topic,
        "modify_opportunity",
        error,
        [("opportunity", oid)],
    )
    if _recover(b, room):
        good = rng.choice([v for v in (5, 10, 35, 60, 90, 95, 99) if v != o.get("probability")])
        text = P.say(
            rng, ["make it <p> then", "set it to <p> instead", "use <p>"], p=P.percent(rng, good)
        )
        b.commit(
            Draft(
                recovery(b, text),
                [
                    Call(
                        "modify_opportunity",
                        {"opportunity_id": oid, "updates": {"probability": good}},
                    )
                ],
                topic,
                "modify_opportunity",
                facts=lambda r: [f"{good}%"],
                mentions=[("opportunity", oid)],
            )
        )


def r_closed_edit(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    o = b.prefer("opportunity", b.closed_opps(), 0.9)
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    fld = rng.choice(["amount", "amount", "stage", "close_date", "probability"])
    if fld == "amount":
        value: Any = b.amount(float(o["amount"]) * 1.05, float(o["amount"]) * 1.3)
        core = P.say(
            rng,
            ["bump <it> to <v>", "change the amount on <opp> to <v>", "update <opp>: amount <v>"],
            opp=ref.np,
            it=ref.it,
            v=b.say_money(value),
        )
    elif fld == "stage":
        value = rng.choice(("Negotiation", "Proposal"))
        core = P.say(
            rng,
            ["reopen <opp> — set it back to <v>", "move <it> back to <v>"],
            opp=ref.np,
            it=ref.it,
            v=value,
        )
    elif fld == "close_date":
        d = b.future_date()
        value = d.isoformat()
        core = P.say(
            rng,
            ["change the close date of <opp> to <v>", "move <it> to close on <v>"],
            opp=ref.np,
            it=ref.it,
            v=b.say_date(d),
        )
    else:
        value = rng.choice((40, 50, 70))
        core = P.say(
            rng,
            ["set the probability on <opp> to <v>", "give <it> a <v> probability"],
            opp=ref.np,
            it=ref.it,
            v=f"{value}%",
        )
    _refuse(
        b,
        core,
        [*ref.calls, Call("modify_opportunity", {"opportunity_id": oid, "updates": {fld: value}})],
        topic,
        "modify_opportunity",
        CLOSED_EDIT,
        [("opportunity", oid)],
    )
    if not _recover(b, room):
        return
    kind = rng.choice(["note", "owner", "clone"])
    if kind == "note":
        content = note_text(b)
        text = P.say(
            rng,
            ["then just add a note to it: <c>", "add a note on the deal instead: <c>"],
            c=P.quote_text(rng, content),
        )
        calls = [
            Call("add_note", {"entity_type": "Opportunity", "entity_id": oid, "content": content})
        ]
        b.commit(
            Draft(
                recovery(b, text),
                calls,
                NOTES if topic == NOTES else topic,
                "add_note",
                mentions=[("opportunity", oid)],
            )
        )
    elif kind == "owner":
        owner = rng.choice([x for x in pools.OWNERS if x != o.get("owner")])
        text = P.say(
            rng, ["then just reassign it to <o>", "at least change the owner to <o>"], o=owner
        )
        b.commit(
            Draft(
                recovery(b, text),
                [Call("modify_opportunity", {"opportunity_id": oid, "updates": {"owner": owner}})],
                topic,
                "modify_opportunity",
                facts=lambda r: [owner],
                mentions=[("opportunity", oid)],
            )
        )
    else:
        text = rng.choice(
            ["clone it then, and we'll work on the copy", "make a clone of it instead"]
        )
        b.commit(
            Draft(
                recovery(b, text),
                [Call("clone_opportunity", {"opportunity_id": oid})],
                topic,
                "clone_opportunity",
                facts=lambda r: [str(r[-1]["name"])],
                mentions=[("opportunity", oid)],
            )
        )


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
        c = pick_client(b, 0.8, active=True)
        cid = str(c["client_id"])
        ref = locate_client(b, cid)
        name = deal_name(b, str(c["name"]), new_topic(b))
        stage = rng.choice(OPEN_STAGES)
        args: dict[str, Any] = {"name": name, "client_id": cid, "amount": big, "stage": stage}
        core = P.say(
            rng,
            [
                "log a new deal for <c>: <n>, <a>, <s>",
                "create an opportunity <n> for <c> worth <a>, stage <s>",
                "!<cn> wants the enterprise package: create <n> at <a>, <s> stage",
            ],
            c=ref.np,
            cn=ref.name,
            n=P.quoted(rng, name),
            a=b.say_money(big),
            s=stage_say(b, stage),
        )
        _refuse(
            b,
            core,
            [*ref.calls, Call("create_new_opportunity", args)],
            topic,
            "create_new_opportunity",
            TOO_BIG,
            [("client", cid)],
        )
        if _recover(b, room):
            text = P.say(rng, ["cap it at <a>", "make it <a> then"], a=b.say_money(fixed))
            b.commit(
                Draft(
                    recovery(b, text),
                    [Call("create_new_opportunity", {**args, "amount": fixed})],
                    topic,
                    "create_new_opportunity",
                    facts=lambda r: [name, m(fixed)],
                )
            )
        return
    o = pick_open_opp(b)
    oid = str(o["opportunity_id"])
    ref = locate_opp(b, oid)
    if variant == "modify":
        core = P.say(
            rng,
            ["change the amount on <opp> to <a>", "bump <it> to <a>"],
            opp=ref.np,
            it=ref.it,
            a=b.say_money(big),
        )
        _refuse(
            b,
            core,
            [
                *ref.calls,
                Call("modify_opportunity", {"opportunity_id": oid, "updates": {"amount": big}}),
            ],
            topic,
            "modify_opportunity",
            TOO_BIG,
            [("opportunity", oid)],
        )
        if _recover(b, room):
            text = P.say(rng, ["cap it at <a>", "set it to <a> then"], a=b.say_money(fixed))
            b.commit(
                Draft(
                    recovery(b, text),
                    [
                        Call(
                            "modify_opportunity",
                            {"opportunity_id": oid, "updates": {"amount": fixed}},
                        )
                    ],
                    topic,
                    "modify_opportunity",
                    facts=lambda r: [m(fixed)],
                    mentions=[("opportunity", oid)],
                )
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
    _refuse(
        b,
        core,
        [*ref.calls, Call("create_quote", args)],
        QUOTE if topic == QUOTE else topic,
        "create_quote",
        TOO_BIG,
        [("opportunity", oid)],
    )
    if _recover(b, room):
        text = P.say(rng, ["make the quote <a> then", "use <a> instead"], a=b.say_money(fixed))
        b.commit(
            Draft(
                recovery(b, text),
                [Call("create_quote", {**args, "amount": fixed})],
                QUOTE if topic == QUOTE else topic,
                "create_quote",
                facts=lambda r: [m(fixed), str(args["status"])],
                mentions=[("opportunity", oid)],
            )
        )


# == documents ======================================================================
def _upload_refusal(b: Builder, room: int, topic: str, how: str) -> None:
    rng = b.rng
    kind, rid, ref = pick_target(b, TARGET_KINDS_DOC)
    stem, what, exts = file_stem(b, kind, rid)
    good = f"{stem}.{exts[0]}"
    if how == "type":
        bad = f"{stem}.{rng.choice(pools.BAD_EXTENSIONS)}"
        error = BAD_TYPE
        fix = P.say(
            rng, ["upload <g> instead", "here's the proper file: <g>", "use <g> then"], g=good
        )
    elif how == "chars":
        words = stem.replace("_", " ").replace("-", " ").split()
        bad = rng.choice(
            [
                " ".join(words) + f".{exts[0]}",
                " ".join(words[:-1]) + f" ({words[-1]}).{exts[0]}",
                "_".join(words[:-1]) + f"#{words[-1]}.{exts[0]}",
                "&".join(words[:2]) + "_" + "_".join(words[2:]) + f".{exts[0]}",
                f"{words[0]}'s_" + "_".join(words[1:]) + f".{exts[0]}",
            ]
        )
        if bad == good or bad.count(".") != 1:
            raise Skip("bad name not bad")
        error = BAD_CHARS
        fix = P.say(
            rng, ["rename it to <g>", "call the file <g> instead", "use the name <g>"], g=good
        )
    else:
        bad = stem
        error = NO_EXT
        fix = P.say(rng, ["it's a <e> — use <g>", "the file is <g>"], e=exts[0].upper(), g=good)
    entity_type = {
        "opportunity": "Opportunity",
        "quote": "Quote",
        "contract": "Contract",
        "client": "Client",
    }[kind]
    args = {"entity_type": entity_type, "entity_id": rid, "file_name": bad}
    core = P.say(
        rng,
        [
            "upload <f> to <t>",
            "attach <f> to <t>",
            "attach the <w> to <t> — the file is <f>",
            "put the file <f> on <it>",
        ],
        f=bad if how == "no_ext" or rng.random() < 0.5 else f'"{bad}"',
        t=ref.np,
        it=ref.it,
        w=what,
    )
    _refuse(
        b,
        core,
        [*ref.calls, Call("upload_document", args)],
        topic,
        "upload_document",
        error,
        [(kind, rid)],
    )
    if _recover(b, room) and good not in b.used_files:
        b.used_files.add(good)
        b.commit(
            Draft(
                recovery(b, fix),
                [Call("upload_document", {**args, "file_name": good})],
                topic,
                "upload_document",
                facts=lambda r: [good],
                mentions=[(kind, rid)],
            )
        )


def r_bad_file_type(b: Builder, room: int, topic: str) -> None:
    _upload_refusal(b, room, topic, "type")


def r_bad_file_chars(b: Builder, room: int, topic: str) -> None:
    _upload_refusal(b, room, topic, "chars")


def r_no_extension(b: Builder, room: int, topic: str) -> None:
    _upload_refusal(b, room, topic, "no_ext")


# == clients and contacts ===========================================================
def r_duplicate_email(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
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
        core = P.say(
            rng,
            [
                "add a new client: <n>, email <e>, status <s>",
                "create the client <n> with email <e>, <s>",
                "set up <n> as <a_sl> client — their email is <e>",
            ],
            n=name,
            e=said,
            s=status,
            a_sl="a prospect" if status == "Prospect" else "an active",
        )
        _refuse(
            b,
            core,
            [Call("create_new_client", args)],
            CLIENT if topic not in (CLIENT, COMPANY) else topic,
            "create_new_client",
            DUP_EMAIL,
            [],
        )
        if _recover(b, room):
            email = b.new_email(rng.choice(("info", "hello", "office")), domain)
            text = P.say(rng, ["use <e> instead", "their real address is <e>"], e=email)
            b.commit(
                Draft(
                    recovery(b, text),
                    [Call("create_new_client", {**args, "email": email})],
                    CLIENT if topic not in (CLIENT, COMPANY) else topic,
                    "create_new_client",
                    facts=lambda r: [name],
                )
            )
        return
    others = [c for c in clients if c["client_id"] != owner_of["client_id"]]
    target = b.prefer("client", others, 0.8)
    cid = str(target["client_id"])
    ref = locate_client(b, cid)
    core = P.say(
        rng,
        [
            "change the email of <c> to <e>",
            "update <c> with the email <e>",
            "set the email for <c> to <e>",
        ],
        c=ref.np,
        e=said,
    )
    _refuse(
        b,
        core,
        [*ref.calls, Call("modify_client", {"client_id": cid, "updates": {"email": said}})],
        topic if topic in (CLIENT, COMPANY) else CLIENT,
        "modify_client",
        DUP_EMAIL,
        [("client", cid)],
    )
    if _recover(b, room):
        domain = str(target["email"]).split("@")[1]
        email = b.new_email(rng.choice(("billing", "finance", "crm")), domain)
        text = P.say(rng, ["use <e> then", "set it to <e> instead"], e=email)
        b.commit(
            Draft(
                recovery(b, text),
                [Call("modify_client", {"client_id": cid, "updates": {"email": email}})],
                topic if topic in (CLIENT, COMPANY) else CLIENT,
                "modify_client",
                facts=lambda r: [email],
                mentions=[("client", cid)],
            )
        )


def _broken_email(b: Builder, first: str, last: str, domain: str) -> str:
    base = f"{_slug(first)}.{_slug(last)}"
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
        ref = locate_client(b, cid)
        args: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "client_id": cid,
            "email": bad,
        }
        core = P.say(
            rng,
            [
                "add <p> as a contact at <c>, email <e>",
                "create a contact for <c>: <p>, <e>",
                "new contact at <c> — <p> (email: <e>)",
            ],
            p=f"{first} {last}",
            c=ref.np,
            e=bad,
        )
        _refuse(
            b,
            core,
            [*ref.calls, Call("create_new_contact", args)],
            CONTACT,
            "create_new_contact",
            BAD_EMAIL,
            [("client", cid)],
        )
        if _recover(b, room):
            good = f"{_slug(first)}.{_slug(last)}@{domain}"
            text = P.say(rng, ["that was a typo — it's <e>", "the email is <e>"], e=good)
            b.commit(
                Draft(
                    recovery(b, text),
                    [Call("create_new_contact", {**args, "email": good})],
                    CONTACT,
                    "create_new_contact",
                    facts=lambda r: [f"{first} {last}"],
                    mentions=[("client", cid)],
                )
            )
        return
    p = b.prefer("contact", b.rows("contacts"), 0.85)
    pid = str(p["contact_id"])
    client = b.get("client", str(p["client_id"]))
    domain = str(client["email"]).split("@")[1]
    bad = _broken_email(b, str(p["first_name"]), str(p["last_name"]), domain)
    ref = locate_contact(b, pid)
    core = P.say(
        rng, ["change the email of <p> to <e>", "update <p> with the email <e>"], p=ref.np, e=bad
    )
    _refuse(
        b,
        core,
        [*ref.calls, Call("modify_contact", {"contact_id": pid, "updates": {"email": bad}})],
        CONTACT,
        "modify_contact",
        BAD_EMAIL,
        [("contact", pid)],
    )
    if _recover(b, room):
        good = f"{_slug(str(p['first_name']))}.{_slug(str(p['last_name']))}@{domain}"
        if good == p.get("email"):
            good = f"{_slug(str(p['first_name']))[0]}{_slug(str(p['last_name']))}@{domain}"
        text = P.say(rng, ["sorry, typo: <e>", "it should be <e>"], e=good)
        b.commit(
            Draft(
                recovery(b, text),
                [Call("modify_contact", {"contact_id": pid, "updates": {"email": good}})],
                CONTACT,
                "modify_contact",
                facts=lambda r: [good],
                mentions=[("contact", pid)],
            )
        )


# == contracts ======================================================================
def r_contract_dates(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    c = pick_client(b, 0.85, active=True)
    cid = str(c["client_id"])
    ref = locate_client(b, cid)
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
    core = P.say(
        rng,
        [
            "create a contract for <c>, value <v>, starting <s> and ending <e>",
            "set up a contract with <c>: <v>, from <s> to <e>",
            "add a contract for <c> worth <v> running <s> through <e>",
        ],
        c=ref.np,
        v=b.say_money(value),
        s=b.say_date(start, with_short=False),
        e=b.say_date(wrong, with_short=False),
    )
    _refuse(
        b,
        core,
        [*ref.calls, Call("create_contract", args)],
        CONTRACT,
        "create_contract",
        DATES,
        [("client", cid)],
    )
    if _recover(b, room):
        text = P.say(
            rng,
            ["it ends <e>", "the end date is <e>", "end it on <e>"],
            e=b.say_date(end, with_short=False),
        )
        b.commit(
            Draft(
                recovery(b, text),
                [Call("create_contract", {**args, "end_date": end.isoformat()})],
                CONTRACT,
                "create_contract",
                facts=lambda r: [m(value), str(r[-1]["status"])],
                mentions=[("client", cid)],
            )
        )


def r_wrong_client(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    c = pick_client(b, 0.85, active=True)
    cid = str(c["client_id"])
    others = [o for o in b.rows("opportunities") if o["client_id"] != cid]
    o = rng.choice(others)
    oid = str(o["opportunity_id"])
    cref = locate_client(b, cid)
    oref = locate_opp(b, oid, pronoun_ok=False)
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
    _refuse(
        b,
        core,
        [*cref.calls, *oref.calls, Call("create_contract", args)],
        CONTRACT,
        "create_contract",
        WRONG_CLIENT,
        [("client", cid), ("opportunity", oid)],
    )
    if _recover(b, room):
        fixed = {k: v for k, v in args.items() if k != "opportunity_id"}
        text = rng.choice(
            [
                "create it without linking a deal then",
                "leave the deal out and create the contract anyway",
            ]
        )
        b.commit(
            Draft(
                recovery(b, text),
                [Call("create_contract", fixed)],
                CONTRACT,
                "create_contract",
                facts=lambda r: [m(value), str(r[-1]["status"])],
                mentions=[("client", cid)],
            )
        )


# == records deleted earlier ========================================================
def r_deleted_record(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    gone = [(rid, kind) for rid, kind in b.deleted.items() if rid in b.deleted_records]
    if not gone:
        if room < 2:
            raise Skip("no room to delete first")
        before = len(b.turns)
        if topic in (OPP,) or rng.random() < 0.4:
            t_delete_opportunity(b, OPP if topic != QUOTE else topic)
        else:
            t_delete_quote(b, QUOTE)
        room -= len(b.turns) - before
        if room >= 2 and rng.random() < 0.7:
            # Something else in between, so coming back to the deleted record is a slip
            # of memory rather than an instant contradiction.
            between, between_topic = rng.choice(
                [(t_find_opportunity, OPP), (t_client_lookup, CLIENT), (t_company_search, COMPANY)]
            )
            try:
                between(b, between_topic)
                room -= 1
            except (Skip, Retry):
                pass
        gone = [(rid, kind) for rid, kind in b.deleted.items() if rid in b.deleted_records]
    rid, kind = gone[-1]
    rec = b.deleted_records[rid]
    fresh = b.fresh(rid)
    if kind == "opportunity":
        parts = split_deal(str(rec["name"]))
        label = (
            rng.choice(["that deal", "the deal"])
            if fresh and rng.random() < 0.5
            else (f"the {parts[1]} deal" if parts else f"'{rec['name']}'")
        )
        action = rng.choice(["note", "quote", "modify", "upload"])
        if action == "note":
            content = note_text(b)
            call = Call(
                "add_note", {"entity_type": "Opportunity", "entity_id": rid, "content": content}
            )
            core = P.say(
                rng,
                ["add a note to <l>: <c>", "log on <l>: <c>"],
                l=label,
                c=P.quote_text(rng, content),
            )
            task, t_topic = "add_note", NOTES
        elif action == "quote":
            amount = b.amount(float(rec["amount"]) * 0.9, float(rec["amount"]) * 1.1)
            call = Call(
                "create_quote", {"opportunity_id": rid, "amount": amount, "status": "Draft"}
            )
            core = P.say(
                rng,
                ["create a draft quote on <l> for <a>", "draft a quote of <a> for <l>"],
                l=label,
                a=b.say_money(amount),
            )
            task, t_topic = "create_quote", QUOTE
        elif action == "modify":
            stage = rng.choice(OPEN_STAGES)
            call = Call("modify_opportunity", {"opportunity_id": rid, "updates": {"stage": stage}})
            core = P.say(rng, ["move <l> to <s>", "set the stage of <l> to <s>"], l=label, s=stage)
            task, t_topic = "modify_opportunity", OPP
        else:
            head = _file_word(short_client(str(rec["name"]).split(" – ")[0]).split()[0])
            fname = f"{head}_Proposal_final.pdf"
            call = Call(
                "upload_document",
                {"entity_type": "Opportunity", "entity_id": rid, "file_name": fname},
            )
            core = P.say(rng, ["attach <f> to <l>", "upload <f> to <l>"], f=fname, l=label)
            task, t_topic = "upload_document", DOCUMENT
    else:
        label = (
            rng.choice(["that quote", "the quote"])
            if fresh
            else f"the {b.money_adj(float(rec['amount']))} quote"
        )
        action = rng.choice(["modify", "note", "cancel", "upload"])
        if action == "modify":
            call = Call("modify_quote", {"quote_id": rid, "updates": {"status": "Approved"}})
            core = P.say(rng, ["mark <l> as Approved", "set <l> to Approved"], l=label)
            task, t_topic = "modify_quote", QUOTE
        elif action == "note":
            content = note_text(b)
            call = Call("add_note", {"entity_type": "Quote", "entity_id": rid, "content": content})
            core = P.say(
                rng,
                ["add a note to <l>: <c>", "note on <l>: <c>"],
                l=label,
                c=P.quote_text(rng, content),
            )
            task, t_topic = "add_note", NOTES
        elif action == "cancel":
            call = Call("cancel_quote", {"quote_id": rid})
            core = P.say(rng, ["actually, cancel <l> instead", "cancel <l>"], l=label)
            task, t_topic = "cancel_quote", QUOTE
        else:
            fname = f"Quote_{int(rec['amount'])}_signed.pdf"
            call = Call(
                "upload_document", {"entity_type": "Quote", "entity_id": rid, "file_name": fname}
            )
            core = P.say(rng, ["attach <f> to <l>", "upload <f> to <l>"], f=fname, l=label)
            task, t_topic = "upload_document", DOCUMENT
    if topic in (t_topic,):
        t_topic = topic
    _refuse(b, core, [call], t_topic, task, NOT_FOUND, [])
    # No recovery turn: the record is gone; the user moves on.
    del room


@dataclass(frozen=True)
class Refusal:
    name: str
    run: Callable[[Builder, int, str], None]
    topics: tuple[str, ...]


REFUSALS: tuple[Refusal, ...] = (
    Refusal("past_close_date", r_past_close, (OPP,)),
    Refusal("bad_probability", r_probability, (OPP,)),
    Refusal("closed_deal_edit", r_closed_edit, (OPP, COMPANY)),
    Refusal("amount_over_limit", r_amount_over, (OPP, QUOTE)),
    Refusal("unsupported_file_type", r_bad_file_type, (DOCUMENT,)),
    Refusal("illegal_file_name", r_bad_file_chars, (DOCUMENT,)),
    Refusal("file_without_extension", r_no_extension, (DOCUMENT,)),
    Refusal("duplicate_client_email", r_duplicate_email, (CLIENT, COMPANY)),
    Refusal("invalid_email", r_invalid_email, (CONTACT,)),
    Refusal("contract_dates_reversed", r_contract_dates, (CONTRACT,)),
    Refusal("contract_other_client_deal", r_wrong_client, (CONTRACT,)),
    Refusal("deleted_record", r_deleted_record, (QUOTE, NOTES, OPP)),
)
