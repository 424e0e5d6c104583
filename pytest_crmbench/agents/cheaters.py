"""Agents that game the verdict instead of doing the work: the benchmark must fail them.

Each one stands for a shortcut a scored model could take; the tests (and an audit of a
dataset) run them to show the checks are not vacuous:

* :class:`DumpAllAgent` runs every broad search it can and replies with everything it
  saw, never writing — recall-only reply checks would pass it on read turns;
* :class:`AlwaysRefuseAgent` answers "I can't do that." without calling a tool — a
  refusal check that does not ask for the reason would pass it on refusal turns;
* :class:`EchoAgent` calls nothing and repeats the user's words with a few plausible
  numbers — facts the user already stated (or bare counts) would pass it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pytest_crmbench.agents.base import Briefing, ToolHandle

#: The broad calls of :class:`DumpAllAgent`: every list the CRM gives without an id
#: (eight, the default per-turn call limit).
BROAD_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("opportunity_search", {}),
    ("client_search", {}),
    ("contact_search", {}),
    ("quote_search", {}),
    ("contract_search", {}),
    ("company_search", {}),
    ("summarize_opportunities", {}),
    ("quote_prefixes", {}),
)


def _values(root: Any) -> list[str]:
    """Every value a reply could echo: names, amounts, stages, emails … (ids left out,
    contacts also as "First Last", list sizes as counts)."""
    out: list[str] = []
    stack: list[tuple[str, Any]] = [("", root)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            first, last = value.get("first_name"), value.get("last_name")
            if isinstance(first, str) and isinstance(last, str):
                out.append(f"{first} {last}")
            stack += [(str(k), v) for k, v in reversed(value.items())]
        elif isinstance(value, list):
            out.append(str(len(value)))
            stack += [(key, v) for v in reversed(value)]
        elif value is None or isinstance(value, bool) or key.endswith("_id") or key == "contacts":
            continue
        elif isinstance(value, float) and value.is_integer():
            out.append(f"{int(value):,}")
        else:
            out.append(str(value))
    return out


class DumpAllAgent:
    """Runs every broad search each turn and replies with every value it saw; no writes.

    ``names_only`` keeps the reply to record names (the weaker variant).
    """

    name = "dump-all"

    def __init__(self, *, names_only: bool = False) -> None:
        self.names_only = names_only
        self._last: tuple[str, str] = ("", "")  # (results as JSON, the reply made of them)

    def start(self, briefing: Briefing) -> None:
        self._last = ("", "")

    def respond(self, message: str, tools: ToolHandle) -> str:
        results = [tools.call(tool, dict(args)) for tool, args in BROAD_CALLS]
        found = [r.result for r in results if r.ok]
        # It never writes, so turns usually see the same records: reuse the last reply.
        key = json.dumps(found, sort_keys=True, default=str)
        if key != self._last[0]:
            seen: dict[str, None] = {}
            for result in found:
                for text in _names(result) if self.names_only else _values(result):
                    seen.setdefault(text)
            self._last = (key, "Here is everything I found: " + "; ".join(seen))
        return self._last[1]


def _names(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        first, last = value.get("first_name"), value.get("last_name")
        if isinstance(first, str) and isinstance(last, str):
            yield f"{first} {last}"
        if isinstance(value.get("name"), str):
            yield value["name"]
        for v in value.values():
            if isinstance(v, dict | list):
                yield from _names(v)
    elif isinstance(value, list):
        for item in value:
            yield from _names(item)


class AlwaysRefuseAgent:
    """Calls nothing and says it cannot help — without ever saying why."""

    name = "always-refuse"

    def start(self, briefing: Briefing) -> None:
        return None

    def respond(self, message: str, tools: ToolHandle) -> str:
        return "I can't do that."


class EchoAgent:
    """Calls nothing; repeats the user's words and adds a few plausible numbers."""

    name = "echo"

    def start(self, briefing: Briefing) -> None:
        return None

    def respond(self, message: str, tools: ToolHandle) -> str:
        return f"Done: {message} I found 1, 2, 3, 4, 5, 6, 7, 8, 9 or 10 of them."


CHEATERS: dict[str, type[Any]] = {
    "dump-all": DumpAllAgent,
    "always-refuse": AlwaysRefuseAgent,
    "echo": EchoAgent,
}
