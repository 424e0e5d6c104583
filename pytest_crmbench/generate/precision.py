"""Records a read turn's reply must not mention: the ones that do not match the request.

An agent that runs broad searches and dumps every result recalls every required fact;
what gives it away is what it adds. For each read turn the candidates are records of the
asked-for kind outside the answer, nearest misses first — those that fail only one of
several criteria, then the answer's neighbours (the same client's other deals, the same
deal's other quotes, colleagues of a contact …), then the rest — each named the way
replies name it (deal, client, contact and company names; quote amounts; contract
values). :func:`~pytest_crmbench.generate.replies.clean_avoid` keeps those an honest
reply has no reason to say. The order is a hash of the conversation, turn and value, so
it is deterministic without drawing from the generator's random stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from pytest_crmbench.generate.builder import Builder, Facts
from pytest_crmbench.generate.phrasing import money_fact


@dataclass(frozen=True)
class _Kind:
    table: str
    key: str
    search: str
    label: Callable[[Mapping[str, Any]], str | None]
    group: str  # records sharing this field are the answer's neighbours


def _value(record: Mapping[str, Any]) -> str | None:
    value = record.get("value")
    return None if value is None else money_fact(float(value))


KINDS: dict[str, _Kind] = {
    "opportunity": _Kind(
        "opportunities",
        "opportunity_id",
        "opportunity_search",
        lambda r: str(r["name"]),
        "client_id",
    ),
    "client": _Kind("clients", "client_id", "client_search", lambda r: str(r["name"]), "industry"),
    "contact": _Kind(
        "contacts",
        "contact_id",
        "contact_search",
        lambda r: f"{r['first_name']} {r['last_name']}",
        "client_id",
    ),
    "quote": _Kind(
        "quotes",
        "quote_id",
        "quote_search",
        lambda r: money_fact(float(r["amount"])),
        "opportunity_id",
    ),
    "contract": _Kind("contracts", "contract_id", "contract_search", _value, "client_id"),
    "company": _Kind("companies", "company_id", "company_search", lambda r: str(r["name"]), "type"),
}


def _ordered(b: Builder, labels: Iterable[str]) -> list[str]:
    """Deterministic order, different per conversation and turn."""
    salt = f"{b.conv_id}/{b.turn_no}/"
    return sorted(set(labels), key=lambda v: hashlib.sha256((salt + v).encode()).hexdigest())


def candidates(
    b: Builder,
    kind: str,
    *,
    criteria: Mapping[str, Any] | None = None,
    anchors: Sequence[str] = (),
) -> list[str]:
    """Labels of ``kind`` records outside the answer, nearest misses first.

    The answer is what ``criteria`` finds (a search or summary), else ``anchors`` (the
    records a lookup or a details view is about).
    """
    spec = KINDS[kind]
    rows = b.rows(spec.table)
    if criteria is not None:
        answer = {str(r[spec.key]) for r in b.probe(spec.search, dict(criteria))}
    else:
        answer = set()
    answer |= set(anchors)
    near: set[str] = set()
    if criteria is not None and len(criteria) > 1:
        for key in criteria:
            rest = {k: v for k, v in criteria.items() if k != key}
            near |= {str(r[spec.key]) for r in b.probe(spec.search, rest)}
    groups = {r.get(spec.group) for r in rows if str(r[spec.key]) in answer} - {None}
    tiers: list[list[str]] = [[], [], []]
    for r in rows:
        rid = str(r[spec.key])
        label = spec.label(r)
        if rid in answer or label is None:
            continue
        tier = 0 if rid in near else 1 if r.get(spec.group) in groups else 2
        tiers[tier].append(label)
    answer_labels = {spec.label(r) for r in rows if str(r[spec.key]) in answer}
    out: list[str] = []
    for labels in tiers:
        out += [v for v in _ordered(b, labels) if v not in answer_labels and v not in out]
    return out


def _interleave(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """Two of the first kind, then one of the second, and so on."""
    pairs = [first[i : i + 2] for i in range(0, len(first), 2)]
    out: list[str] = []
    for pair, other in zip_longest(pairs, second):
        out += list(pair or [])
        if other is not None:
            out.append(other)
    return out


def misses(
    b: Builder,
    kind: str,
    *,
    criteria: Mapping[str, Any] | None = None,
    anchors: Sequence[str] = (),
    also: tuple[str, Sequence[str]] | None = None,
) -> Facts:
    """The ``must_not_mention`` candidates of a read turn (computed once it has run).

    ``also`` = (kind, anchors) mixes in records of a second kind — for quotes and
    contracts, which have no names, the deals or clients beside the answer's.
    """

    def avoid(results: list[Any]) -> list[str]:
        own = candidates(b, kind, criteria=criteria, anchors=anchors)
        if also is None:
            return own
        return _interleave(own, candidates(b, also[0], anchors=also[1]))

    return avoid
