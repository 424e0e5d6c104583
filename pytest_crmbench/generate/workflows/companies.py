"""Company searches: a table apart from clients, so the agent must pick the right tool."""

from __future__ import annotations

from typing import Any

from pytest_crmbench.generate.builder import Builder, Call, Skip
from pytest_crmbench.generate.precision import misses
from pytest_crmbench.generate.workflows.common import act, list_ok, names_facts, req_or_ask

# == what users say ==================================================================
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
        "find the companies whose industry is <v>.",
    ),
    "city": ("which companies are based in <v>?", "do we track any companies in <v>? List them."),
    "type_industry": ("which <t_lc>s are in <v>?", "list the <v> companies that are <t_lc>s."),
    "one_type": (
        "what kind of company is <n> for us?",
        "how is <n> classified in our company list?",
        "what's our relationship with <n> — what type of company are they?",
    ),
    "one_address": ("where is <n> based?", "what's the address of <n>?"),
}


# == tasks ===========================================================================
def t_company_search(b: Builder, topic: str) -> None:
    rng = b.rng
    companies = b.rows("companies")
    kind = rng.choice(
        ["type", "type", "industry", "city", "type_industry", "one_type", "one_address"]
    )
    criteria: dict[str, Any] = {}
    t = v = n = ""  # the type, the industry or city, the name the user says
    if kind in ("type", "type_industry"):
        t = criteria["type"] = rng.choice(("Partner", "Vendor", "Competitor"))
    if kind in ("industry", "type_industry"):
        v = criteria["industry"] = str(rng.choice(companies)["industry"])
    if kind == "city":
        v = criteria["address"] = str(rng.choice(companies)["address"]).split(", ")[1]
    if kind.startswith("one_"):
        c = rng.choice(companies)
        frag = str(c["name"]) if rng.random() < 0.6 else str(c["name"]).split()[0]
        if len(b.probe("company_search", {"name": frag})) != 1:
            frag = str(c["name"])
        criteria["name"] = frag
        n = str(c["name"])
    found = b.probe("company_search", criteria)
    if not list_ok(found, len(companies)):
        raise Skip("no company list")

    def facts(r: list[Any]) -> list[str]:
        rows = r[-1]
        if kind == "one_type":
            return [str(rows[0]["type"])]
        if kind == "one_address":
            return [str(rows[0]["address"]).split(", ")[1]]
        return names_facts(rows, limit=5)

    search = Call("company_search", criteria)
    act(
        b,
        topic,
        None,
        Q_COMPANY[kind],
        search,
        facts,
        wrap=req_or_ask,
        avoid=misses(b, "company", criteria=criteria),
        t=t,
        t_lc=t.lower(),
        v=v,
        n=n,
    )
