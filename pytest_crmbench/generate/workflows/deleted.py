"""The refusal no workflow owns: acting on a deal or quote deleted earlier in the same
conversation (the CRM answers "not found"; the user moves on)."""

from __future__ import annotations

import contextlib

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate.builder import (
    OPEN_STAGES,
    Builder,
    Call,
    Retry,
    Skip,
    short_client,
    split_deal,
)
from pytest_crmbench.generate.workflows.clients import t_client_lookup
from pytest_crmbench.generate.workflows.common import (
    CLIENT,
    COMPANY,
    DOCUMENT,
    NOTES,
    OPP,
    QUOTE,
    commit,
    entity,
    file_word,
    modify,
    note_text,
    req,
)
from pytest_crmbench.generate.workflows.companies import t_company_search
from pytest_crmbench.generate.workflows.opportunities import (
    t_delete_opportunity,
    t_find_opportunity,
)
from pytest_crmbench.generate.workflows.quotes import t_delete_quote

NOT_FOUND = "not found with ID"


def _delete_first(b: Builder, room: int, topic: str) -> None:
    """Delete a deal or quote, then (usually) talk about something else for a turn."""
    rng = b.rng
    if room < 2:
        raise Skip("no room to delete first")
    before = len(b.turns)
    if topic == OPP or rng.random() < 0.4:
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
        with contextlib.suppress(Skip, Retry):
            between(b, between_topic)


def _on_deleted(b: Builder, kind: str, rid: str, label: str) -> tuple[Call, str, str]:
    """A request on a deleted deal or quote: (the call, the words, its topic)."""
    rng = b.rng
    rec = b.deleted_records[rid]
    deal = kind == "opportunity"
    action = rng.choice(
        ["note", "quote", "modify", "upload"] if deal else ["modify", "note", "cancel", "upload"]
    )
    if action == "note":
        content = note_text(b)
        call = Call("add_note", {**entity(kind, rid), "content": content})
        asks = ["add a note to <l>: <c>", "log on <l>: <c>" if deal else "note on <l>: <c>"]
        return call, P.say(rng, asks, l=label, c=P.quote_text(rng, content)), NOTES
    if action == "upload":
        if deal:
            head = file_word(short_client(str(rec["name"]).split(" – ")[0]).split()[0])
            fname = f"{head}_Proposal_final.pdf"
        else:
            fname = f"Quote_{int(rec['amount'])}_signed.pdf"
        call = Call("upload_document", {**entity(kind, rid), "file_name": fname})
        asks = ["attach <f> to <l>", "upload <f> to <l>"]
        return call, P.say(rng, asks, f=fname, l=label), DOCUMENT
    if action == "quote":
        amount = b.amount(float(rec["amount"]) * 0.9, float(rec["amount"]) * 1.1)
        call = Call("create_quote", {"opportunity_id": rid, "amount": amount, "status": "Draft"})
        asks = ["create a draft quote on <l> for <a>", "draft a quote of <a> for <l>"]
        return call, P.say(rng, asks, l=label, a=b.say_money(amount)), QUOTE
    if action == "cancel":
        asks = ["actually, cancel <l> instead", "cancel <l>"]
        return Call("cancel_quote", {"quote_id": rid}), P.say(rng, asks, l=label), QUOTE
    if deal:
        stage = rng.choice(OPEN_STAGES)
        asks = ["move <l> to <s>", "set the stage of <l> to <s>"]
        return modify(kind, rid, stage=stage), P.say(rng, asks, l=label, s=stage), OPP
    asks = ["mark <l> as Approved", "set <l> to Approved"]
    return modify(kind, rid, status="Approved"), P.say(rng, asks, l=label), QUOTE


def r_deleted_record(b: Builder, room: int, topic: str) -> None:
    rng = b.rng
    gone = [(rid, kind) for rid, kind in b.deleted.items() if rid in b.deleted_records]
    if not gone:
        _delete_first(b, room, topic)
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
    else:
        label = (
            rng.choice(["that quote", "the quote"])
            if fresh
            else f"the {b.money_adj(float(rec['amount']))} quote"
        )
    call, core, t_topic = _on_deleted(b, kind, rid, label)
    # No recovery turn: the record is gone; the user moves on.
    commit(b, t_topic, req(b, core), [call], error=NOT_FOUND)
