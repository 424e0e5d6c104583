"""Agents for the plugin tests, copied into each pytester project as ``crm_agents.py``.

Loaded with ``--agent crm_agents:Name`` (the ``module:attr`` form). The replay variants
change exactly one thing about the oracle, so exactly one turn must fail.
"""

from __future__ import annotations

import time
from typing import Any

from pytest_crmbench.agents import AgentUnavailable
from pytest_crmbench.agents.scripted import ReplayAgent

HELIX_DEAL = "8024705c-0d3b-5666-bead-8af03a8c1645"  # seed world: Helix Biosciences deal


class Unreachable:
    """An LLM agent whose API never answers."""

    name = "unreachable"

    def start(self, briefing: Any) -> None:
        return None

    def respond(self, message: str, tools: Any) -> str:
        raise AgentUnavailable("HTTP 503 Service Unavailable after 3 retries")


class Crashing:
    """An agent with a bug: a plain exception escapes."""

    name = "crashing"

    def start(self, briefing: Any) -> None:
        return None

    def respond(self, message: str, tools: Any) -> str:
        raise RuntimeError("kaboom in the agent")


class PerturbedAmount(ReplayAgent):
    """CONV-0001: creates the opportunity with amount 86000 instead of 85000."""

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("amount") == 85000:
            return {**args, "amount": 86000}
        return args


class PerturbedQuote(ReplayAgent):
    """CONV-0003 turn 2: the quote amount is 93000 instead of 92500."""

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("amount") == 92500:
            return {**args, "amount": 93000}
        return args


class SkipsCall(ReplayAgent):
    """CONV-0003 turn 3: never makes the modify_quote call (the quote stays Draft)."""

    def respond(self, message: str, tools: Any) -> str:
        step = self._script[self._turn]
        kept = [c for c in step.calls if c["tool"] != "modify_quote"]
        if len(kept) != len(step.calls):
            step.calls = kept
        return super().respond(message, tools)


class ExtraWrite(ReplayAgent):
    """CONV-0003 turn 1 (a lookup): also adds a note nobody asked for."""

    def respond(self, message: str, tools: Any) -> str:
        reply = super().respond(message, tools)
        if self._turn == 1 and "Helix" in message:
            tools.call(
                "add_note",
                {"entity_type": "Opportunity", "entity_id": HELIX_DEAL, "content": "Looked up."},
            )
        return reply


class SlowReplay(ReplayAgent):
    """The oracle, slowed down so a run can be killed half-way."""

    def respond(self, message: str, tools: Any) -> str:
        time.sleep(0.3)
        return super().respond(message, tools)


class FlakyOnSecondTry(ReplayAgent):
    """The oracle, except that the 2nd time it sees CONV-0002 it answers like ``noop``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}
        self.slack = False

    def start(self, briefing: Any) -> None:
        super().start(briefing)
        n = self.seen[briefing.conversation_id] = self.seen.get(briefing.conversation_id, 0) + 1
        self.slack = briefing.conversation_id == "CONV-0002" and n == 2

    def respond(self, message: str, tools: Any) -> str:
        if self.slack:
            self._turn += 1
            return "Done."
        return super().respond(message, tools)
