"""How the user points at a record, and the lookup calls the agent needs to find it.

A record the conversation has already shown (found or created in an earlier turn) is
referred to naturally ("that deal", "the new quote", "the Fleet Analytics deal") and
needs no lookup. A record not seen yet is named the way people name it — client name,
deal topic, person's name — and the reference calls start with the search that finds
it. When the search finds near-duplicates, the user's words carry the detail that
tells them apart (client, amount, stage, industry …) and the conversation is tagged
``disambiguation``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_crmbench.generate import phrasing as P
from pytest_crmbench.generate.builder import Builder, Call, Retry, split_deal


@dataclass
class Ref:
    """A noun phrase for a record, a variant that may be "it", and the lookups it needs."""

    np: str
    it: str
    calls: list[Call] = field(default_factory=list)
    name: str = ""  # a name-like phrase usable as a subject (never a pronoun)
    kind: str = ""  # the record pointed at (set by :func:`locate`)
    rid: str = ""

    @property
    def about(self) -> tuple[str, str]:
        """The record as a turn's mention: (kind, id)."""
        return self.kind, self.rid


def count_sub(fragment: str, names: list[str]) -> int:
    f = fragment.lower()
    return sum(f in n.lower() for n in names)


# == clients =======================================================================
def client_aliases(b: Builder, cid: str) -> list[str]:
    name = b.client_name(cid)
    names = [str(c["name"]) for c in b.rows("clients")]
    aliases = [name, name]
    words = name.replace(",", "").split()
    seen = {name}
    for n in (1, 2):
        cand = " ".join(words[:n]).rstrip(".")
        if cand not in seen and len(cand) >= 4 and count_sub(cand, names) == 1:
            aliases.append(cand)
            seen.add(cand)
    return aliases


def _distinguish_client(
    b: Builder, target: dict[str, Any], others: list[dict[str, Any]], *, email_ok: bool = True
) -> str:
    """A noun phrase naming a client by its shared first word plus what sets it apart
    (not by its email when the request carries a contact's: it would read as theirs)."""
    head = str(target["name"]).split()[0]
    options: list[str] = []
    ind, status, owner, email = (target.get(k) for k in ("industry", "status", "owner", "email"))
    if ind and all(o.get("industry") != ind for o in others):
        options += [
            f"{head} ({ind})",
            f"the {head} account in {ind}",
            f"{head} — the {ind} company",
        ]
    if email_ok and email and all(o.get("email") != email for o in others):
        options += [f"the {head} client with email {email}", f"{head} ({email})"]
    if status and all(o.get("status") != status for o in others):
        options.append(f"the {str(status).lower()} {head} account")
    if owner and all(o.get("owner") != owner for o in others):
        options += [f"{owner}'s {head} account", f"the {head} account {owner} owns"]
    if not options:
        raise Retry("cannot tell clients apart")
    return b.rng.choice(options)


def locate_client(b: Builder, cid: str, *, pronoun_ok: bool = True, email_ok: bool = True) -> Ref:
    rng = b.rng
    name = b.client_name(cid)
    aliases = client_aliases(b, cid)
    if cid in b.known:
        alias = rng.choice(aliases)
        if pronoun_ok and b.fresh_only("client", cid) and rng.random() < 0.6:
            np = rng.choice(["that client", "the client", "this account", "that account"])
            return Ref(np, rng.choice(["them", np]), [], alias)
        return Ref(alias, alias, [], alias)
    # Near-duplicates (two "Acme"s, two "Bluefin"s …): name the shared word + a detail.
    head = name.split()[0]
    clients = b.rows("clients")
    same = [c for c in clients if str(c["name"]).lower().startswith(head.lower() + " ")]
    if len(same) > 1 and count_sub(head, [str(c["name"]) for c in clients]) == len(same):
        if rng.random() < 0.55:
            target = next(c for c in same if c["client_id"] == cid)
            others = [c for c in same if c["client_id"] != cid]
            np = _distinguish_client(b, target, others, email_ok=email_ok)
            b.extra_tags.add("disambiguation")
            return Ref(np, np, [Call("client_search", {"name": head})], np)
        if rng.random() < 0.4:
            b.extra_tags.add("disambiguation")
            return Ref(name, name, [Call("client_search", {"name": head})], name)
    alias = rng.choice(aliases)
    return Ref(alias, alias, [Call("client_search", {"name": alias})], alias)


# == opportunities =================================================================
def _deal_forms(b: Builder, rec: dict[str, Any]) -> list[str]:
    name = str(rec["name"])
    parts = split_deal(name)
    rng = b.rng
    if parts is None:
        return [f"the '{name}' deal", f"the {name} opportunity", f"'{name}'"]
    head, topic = parts
    low = P.topic_words(topic) if rng.random() < 0.5 else topic
    return [
        f"the {head} {low} deal",
        f"the {topic} opportunity for {head}",
        f"the '{name}' deal",
        f"the {head} {low} opp",
        f"{head}'s {low} deal",
        f"the {name} opportunity",
    ]


def _distinguish_opp(b: Builder, target: dict[str, Any], others: list[dict[str, Any]]) -> str:
    options = []
    cname = b.client_name(target["client_id"])
    if all(o["client_id"] != target["client_id"] for o in others):
        options += [f"the one for {cname}", f"the {cname} one"]
    if all(o["amount"] != target["amount"] for o in others):
        options.append(f"the {b.money_adj(target['amount'])} one")
    if all(o["stage"] != target["stage"] for o in others):
        options.append(f"the one in {target['stage']}")
    if not options:
        raise Retry("cannot tell deals apart")
    return b.rng.choice(options)


def known_deal_label(b: Builder, oid: str) -> str:
    rec = b.get("opportunity", oid)
    rng = b.rng
    known_opps = [
        b.get("opportunity", r)
        for r in sorted(b.known)
        if b.kind_of.get(r) == "opportunity" and b.exists("opportunity", r)
    ]
    names = [str(o["name"]) for o in known_opps]
    if oid in b.clones and sum(1 for r in b.clones if b.exists("opportunity", r)) == 1:
        return rng.choice(["the clone", "the cloned deal", "the copy"])
    parts = split_deal(str(rec["name"]))
    if parts is not None:
        topic = parts[1]
        if count_sub(topic, names) == 1:
            new = "new " if oid in b.created and rng.random() < 0.5 else ""
            return rng.choice(
                [f"the {new}{topic} deal", f"the {new}{topic} opportunity", f"the {topic} opp"]
            )
    return rng.choice([f"the '{rec['name']}' deal", f"'{rec['name']}'"])


def locate_opp(b: Builder, oid: str, *, pronoun_ok: bool = True) -> Ref:
    rng = b.rng
    rec = b.get("opportunity", oid)
    name = str(rec["name"])
    if oid in b.known:
        if pronoun_ok and b.fresh_only("opportunity", oid):
            forms = ["that deal", "the deal", "this opportunity", "that opp", "that opportunity"]
            if oid in b.clones:
                forms += ["the clone", "the cloned deal"]
            elif oid in b.created:
                forms += ["the new deal", "the new opportunity"]
            np = rng.choice(forms)
            return Ref(np, rng.choice(["it", "it", np]), [], known_deal_label(b, oid))
        if b.listed and b.listed[0] == "opportunity" and oid in b.listed[1]:
            others = [b.get("opportunity", r) for r in b.listed[1] if r != oid]
            heads = [str(o["name"]).split(" – ")[0] for o in others]
            head = name.split(" – ")[0]
            if " – " in name and head not in heads:
                np = rng.choice([f"the {head} one", f"the {head} deal"])
                return Ref(np, np, [], np)
        label = known_deal_label(b, oid)
        return Ref(label, label, [], label)
    names = [str(o["name"]) for o in b.rows("opportunities")]
    client_id = rec["client_id"]
    parts = split_deal(name)
    # Through the client the user is talking about: "their Fleet Analytics deal".
    if client_id in b.known and b.fresh(client_id) and parts and rng.random() < 0.5:
        found = b.probe("opportunity_search", {"client_id": client_id})
        if any(o["opportunity_id"] == oid for o in found) and len(found) <= 6:
            topic = parts[1]
            np = rng.choice([f"their {topic} deal", f"their {P.topic_words(topic)} opportunity"])
            return Ref(np, np, [Call("opportunity_search", {"client_id": client_id})], np)
    if parts is not None and count_sub(parts[1], names) == 1:
        fragment = parts[1]
    elif parts is not None and count_sub(parts[1], names) <= 3 and rng.random() < 0.6:
        fragment = parts[1]  # near-duplicates: the user adds what tells them apart
    else:
        fragment = name
    found = b.probe("opportunity_search", {"name": fragment})
    if not any(o["opportunity_id"] == oid for o in found):
        raise Retry("lookup misses the deal")
    forms = _deal_forms(b, rec)
    np = rng.choice(forms)
    if len(found) > 1:
        detail = _distinguish_opp(b, rec, [o for o in found if o["opportunity_id"] != oid])
        if parts is not None:
            np = rng.choice(
                [
                    f"the {parts[1]} deal — {detail}",
                    f"the {parts[1]} opportunity ({detail})",
                ]
            )
        else:
            np = f"{np} ({detail})"
        b.extra_tags.add("disambiguation")
    return Ref(np, np, [Call("opportunity_search", {"name": fragment})], np)


# == quotes ========================================================================
def _quote_detail(b: Builder, q: dict[str, Any], others: list[dict[str, Any]]) -> str | None:
    options = []
    if q.get("version") and all(o.get("version") != q["version"] for o in others):
        options += [f"the {q['version']}", f"the {q['version']}"]
    if all(o["status"] != q["status"] for o in others):
        options.append(f"the {q['status'].lower()}")
    if all(o["amount"] != q["amount"] for o in others):
        options.append(f"the {b.money_adj(q['amount'])}")
    return b.rng.choice(options) if options else None


def locate_quote(b: Builder, qid: str, *, pronoun_ok: bool = True) -> Ref:
    rng = b.rng
    q = b.get("quote", qid)
    if qid in b.known:
        if pronoun_ok and b.fresh_only("quote", qid):
            forms = ["that quote", "the quote", "this quote"]
            if qid in b.created:
                forms += ["the new quote", "the quote we just made"]
            np = rng.choice(forms)
            return Ref(np, rng.choice(["it", np]), [], np)
        known_quotes = [
            b.get("quote", r)
            for r in sorted(b.known)
            if b.kind_of.get(r) == "quote" and b.exists("quote", r) and r != qid
        ]
        if b.listed and b.listed[0] == "quote" and qid in b.listed[1]:
            known_quotes = [b.get("quote", r) for r in b.listed[1] if r != qid]
        detail = _quote_detail(b, q, known_quotes)
        if detail is None:
            raise Retry("cannot name the quote")
        np = f"{detail} quote"
        return Ref(np, np, [], np)
    opp = locate_opp(b, str(q["opportunity_id"]))
    quotes = b.probe("quote_search", {"opportunity_id": q["opportunity_id"]})
    if len(quotes) == 1:
        np = rng.choice([f"the quote on {opp.np}", f"the quote for {opp.np}"])
    else:
        detail = _quote_detail(b, q, [o for o in quotes if o["quote_id"] != qid])
        if detail is None:
            raise Retry("cannot name the quote")
        np = rng.choice([f"{detail} quote on {opp.np}", f"{detail} quote for {opp.np}"])
    calls = [*opp.calls, Call("quote_search", {"opportunity_id": q["opportunity_id"]})]
    return Ref(np, np, calls, np)


# == contacts ======================================================================
def locate_contact(b: Builder, pid: str, *, pronoun_ok: bool = True) -> Ref:
    rng = b.rng
    p = b.get("contact", pid)
    full = f"{p['first_name']} {p['last_name']}"
    if pid in b.known:
        if pronoun_ok and b.fresh_only("contact", pid) and rng.random() < 0.6:
            np = rng.choice(["that contact", str(p["first_name"]), "the contact"])
            return Ref(np, np, [], full)
        return Ref(full, full, [], full)
    found = b.probe("contact_search", {"last_name": p["last_name"]})
    if any(c["contact_id"] == pid for c in found) and len(found) <= 3:
        criteria: dict[str, Any] = {"last_name": p["last_name"]}
    else:
        criteria = {"first_name": p["first_name"], "last_name": p["last_name"]}
        found = b.probe("contact_search", criteria)
    np = full
    if len(found) > 1:
        b.extra_tags.add("disambiguation")
        cname = b.client_name(p["client_id"])
        if rng.random() < 0.5:
            np = rng.choice([f"{full} at {cname}", f"{full} from {cname}"])
    return Ref(np, np, [Call("contact_search", criteria)], np)


# == contracts =====================================================================
def _contract_np(b: Builder, k: dict[str, Any], who: str, others: list[dict[str, Any]]) -> str:
    rng = b.rng
    if not others:
        return rng.choice([f"the contract with {who}", f"our contract with {who}"])
    options = []
    if all(o["status"] != k["status"] for o in others):
        options.append(f"the {str(k['status']).lower()} contract with {who}")
    if k.get("value") is not None and all(o.get("value") != k["value"] for o in others):
        options.append(f"the {b.money_adj(k['value'])} contract with {who}")
    if k.get("start_date") and all(o.get("start_date") != k["start_date"] for o in others):
        options.append(f"the contract with {who} starting {k['start_date']}")
    if not options:
        raise Retry("cannot name the contract")
    return rng.choice(options)


def locate_contract(b: Builder, kid: str, *, pronoun_ok: bool = True) -> Ref:
    rng = b.rng
    k = b.get("contract", kid)
    contracts = b.probe("contract_search", {"client_id": k["client_id"]})
    others = [c for c in contracts if c["contract_id"] != kid]
    if kid in b.known:
        if pronoun_ok and b.fresh_only("contract", kid):
            np = rng.choice(["that contract", "the contract", "this contract"])
            if kid in b.created:
                np = rng.choice([np, "the new contract"])
            return Ref(np, rng.choice(["it", np]), [], np)
        np = _contract_np(b, k, b.client_name(k["client_id"]), others)
        return Ref(np, np, [], np)
    client = locate_client(b, str(k["client_id"]))
    np = _contract_np(b, k, client.np, others)
    calls = [*client.calls, Call("contract_search", {"client_id": k["client_id"]})]
    return Ref(np, np, calls, np)


LOCATORS: dict[str, Callable[..., Ref]] = {
    "opportunity": locate_opp,
    "quote": locate_quote,
    "contract": locate_contract,
    "client": locate_client,
    "contact": locate_contact,
}


def locate(
    b: Builder, kind: str, rid: str, *, pronoun_ok: bool = True, email_ok: bool = True
) -> Ref:
    """How the user points at the ``kind`` record ``rid``, and the lookups that find it.

    ``email_ok=False``: never name a client by its email (a request about a contact).
    """
    options: dict[str, bool] = {"pronoun_ok": pronoun_ok}
    if kind == "client":
        options["email_ok"] = email_ok
    return replace(LOCATORS[kind](b, rid, **options), kind=kind, rid=rid)
