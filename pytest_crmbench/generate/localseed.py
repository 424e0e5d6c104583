"""A conversation's own extra records (the ``seed`` field), to vary the data.

Some conversations start with a client only they know — with contacts, deals (now and
then a near-duplicate pair: two clients sharing a first word, or two deals with the
same topic), quotes and a contract. Ids are UUIDv5 of the generator seed, the
conversation id, the table and a counter; every record obeys the CRM's rules (amounts,
probabilities, enums, unique emails, open deals closing on or after the reference date).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from pytest_crmbench.crm.memory import MemoryStore
from pytest_crmbench.generate import pools
from pytest_crmbench.generate.builder import REFERENCE_DATE, local_id, short_client, stamp
from pytest_crmbench.generate.refer import count_sub

DOCS = ("Requirements", "Proposal", "SOW")


def _amount(rng: random.Random, low: float, high: float) -> float:
    import math

    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    step = 500 if value < 50_000 else 5000 if value < 1_000_000 else 50_000
    return float(max(step, round(value / step) * step))


def make_local_seed(
    rng: random.Random, seed: int, conv_id: str, base: MemoryStore
) -> dict[str, list[dict[str, Any]]]:
    """Extra records for one conversation (may be empty)."""
    names = [str(c["name"]) for c in base.find("clients")]
    emails = {str(c["email"]).lower() for c in base.find("clients")}
    opp_names = [str(o["name"]) for o in base.find("opportunities")]
    counters: dict[str, int] = {}
    out: dict[str, list[dict[str, Any]]] = {}

    def new(table: str, record: dict[str, Any]) -> dict[str, Any]:
        counters[table] = counters.get(table, 0) + 1
        key = {
            "clients": "client_id",
            "contacts": "contact_id",
            "opportunities": "opportunity_id",
            "quotes": "quote_id",
            "contracts": "contract_id",
            "documents": "document_id",
            "notes": "note_id",
        }[table]
        record = {key: local_id(seed, conv_id, table, counters[table]), **record}
        out.setdefault(table, []).append(record)
        return record

    heads = [h for h in pools.COMPANY_HEADS if not count_sub(h, names)]
    head = rng.choice(heads)
    n_clients = 2 if rng.random() < 0.3 else 1
    tails = rng.sample(pools.COMPANY_TAILS, n_clients)
    topics: list[str] = []
    for tail, industry in tails:
        name = f"{head} {tail}"
        domain = "".join(ch for ch in (head + tail).lower() if ch.isalnum()) + rng.choice(
            pools.TLDS
        )
        email = f"{rng.choice(('info', 'hello', 'office', 'contact'))}@{domain}"
        if email in emails:
            continue
        emails.add(email)
        owner = rng.choice(pools.OWNERS)
        client = new(
            "clients",
            {
                "name": name,
                "email": email,
                "status": rng.choices(("Active", "Prospect", "Inactive"), (60, 32, 8))[0],
                "industry": industry,
                "phone": f"({rng.randint(201, 989)}) 555-{rng.randint(100, 199):04d}",
                "address": rng.choice(pools.STREETS),
                "owner": owner,
                "created_date": stamp(rng, year=2024, month_high=12),
            },
        )
        cid = client["client_id"]
        used_people: set[str] = set()
        for _ in range(rng.randint(1, 2)):
            first, last = rng.choice(pools.FIRST_NAMES), rng.choice(pools.LAST_NAMES)
            if f"{first} {last}" in used_people:
                continue
            used_people.add(f"{first} {last}")
            new(
                "contacts",
                {
                    "first_name": first,
                    "last_name": last,
                    "client_id": cid,
                    "title": rng.choice(pools.TITLES),
                    "email": f"{first.lower()}.{last.lower().replace('-', '')}@{domain}",
                    "phone": None,
                    "notes": None,
                },
            )
        n_opps = rng.randint(1, 3)
        for i in range(n_opps):
            # The second client sometimes shares a deal topic with the first (near-duplicate).
            if topics and i == 0 and rng.random() < 0.5:
                topic = topics[0]
            else:
                topic = rng.choice(pools.DEAL_TOPICS)
                if topic in topics or count_sub(topic, opp_names):
                    continue
            topics.append(topic)
            deal = f"{short_client(name)} – {topic}"
            if deal in opp_names:
                continue
            opp_names.append(deal)
            closed = i == 1 and rng.random() < 0.5
            if closed:
                stage = rng.choice(("Closed-Won", "Closed-Won", "Closed-Lost"))
                close = REFERENCE_DATE - timedelta(days=rng.randint(20, 300))
                prob = None
            else:
                stage = rng.choice(("Prospecting", "Qualification", "Proposal", "Negotiation"))
                close = REFERENCE_DATE + timedelta(days=rng.randint(10, 360))
                prob = rng.randint(2, 17) * 5
            amount = _amount(rng, 8_000, 1_500_000)
            opp = new(
                "opportunities",
                {
                    "name": deal,
                    "client_id": cid,
                    "stage": stage,
                    "amount": amount,
                    "close_date": close.isoformat(),
                    "probability": prob,
                    "owner": owner,
                    "notes": None,
                    "created_at": stamp(rng),
                },
            )
            oid = opp["opportunity_id"]
            if not closed and rng.random() < 0.55:
                prefix = rng.choice(("Q2025", "ENT", "RNW", "SMB", "PRO"))
                for v, status in enumerate(rng.choice((("Sent",), ("Draft",), ("Sent", "Draft")))):
                    new(
                        "quotes",
                        {
                            "opportunity_id": oid,
                            "amount": amount if v == 0 else _amount(rng, amount * 0.85, amount),
                            "status": status,
                            "version": f"v{v + 1}",
                            "quote_prefix": prefix,
                            "valid_until": (
                                REFERENCE_DATE + timedelta(days=rng.randint(10, 90))
                            ).isoformat(),
                            "created_date": stamp(rng),
                        },
                    )
            if closed and stage == "Closed-Won" and rng.random() < 0.6:
                start = close.replace(day=1) + timedelta(days=32)
                start = start.replace(day=1)
                end = start.replace(year=start.year + 1) - timedelta(days=1)
                new(
                    "contracts",
                    {
                        "client_id": cid,
                        "opportunity_id": oid,
                        "start_date": start.isoformat(),
                        "end_date": end.isoformat(),
                        "value": amount,
                        "status": "Active",
                        "document_url": None,
                    },
                )
            if rng.random() < 0.25:
                word = "".join(ch for ch in head if ch.isalnum())
                new(
                    "documents",
                    {
                        "entity_type": "Opportunity",
                        "entity_id": oid,
                        "file_name": f"{word}_{rng.choice(DOCS)}.pdf",
                        "uploaded_by": owner,
                        "uploaded_at": stamp(rng),
                        "file_url": None,
                    },
                )
            if rng.random() < 0.25:
                new(
                    "notes",
                    {
                        "entity_type": "Opportunity",
                        "entity_id": oid,
                        "content": rng.choice(
                            (
                                "Intro call done; they want a proposal next month.",
                                "Budget holder is the CFO.",
                                "Asked for a reference customer in their industry.",
                                "Security review pending.",
                            )
                        ),
                        "created_by": owner,
                        "created_at": stamp(rng),
                    },
                )
    return out
