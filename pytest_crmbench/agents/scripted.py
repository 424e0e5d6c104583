"""Scripted agents: ``replay`` (the oracle that performs the reference calls) and ``noop``.

``replay`` proves the harness can be passed: it must score 100 % on the shipped data.
``noop`` proves the verdict is not vacuous: it must score 0 on conversations.

The oracle gets the reference through an internal channel: the runner hands the script
only to :class:`ScriptedOracle` instances, and marks every such run ``oracle`` (no gate
passes it). The public agent protocol (:mod:`pytest_crmbench.agents.base`) has no way
to ask for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_crmbench.agents.base import Briefing, ToolHandle
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.dataset.refs import resolve


def oracle_reply(errors: Sequence[str], facts: Sequence[str]) -> str:
    """The oracle's reply: "Done." and the facts, or "I could not do that:" with the CRM's
    own message and the facts quoted (a bare word such as "closed" at the end would read
    as a claim that something was done)."""
    if errors:
        quoted = " ".join(f'"{f}"' for f in facts)
        return f"I could not do that: {' '.join(errors)} {quoted}".strip()
    return f"Done. {'; '.join(facts)}".strip()


class ScriptTurn:
    """What the oracle may know about one turn (never given to real agents)."""

    def __init__(
        self, calls: Sequence[dict[str, Any]], facts: Sequence[str], expect_failure: bool
    ) -> None:
        self.calls = list(calls)  # [{"tool": ..., "args": ... (may hold {{turn_N.x}} refs)}]
        self.facts = list(facts)
        self.expect_failure = expect_failure


def reference_script(conv: Conversation) -> list[ScriptTurn]:
    """A conversation's reference, turn by turn, as the oracle is handed it."""
    return [
        ScriptTurn(
            [{"tool": c.tool, "args": c.args} for c in t.expected_calls],
            t.reply.must_mention,
            t.expect == "failure",
        )
        for t in conv.turns
    ]


class ScriptedOracle:
    """Base of the built-in oracles: the runner gives them the reference of each case."""

    case_id = ""

    def receive_script(self, case_id: str, script: Sequence[ScriptTurn]) -> None:
        self.case_id = case_id

    def on_recovered(self, turn: int, results: list[Any]) -> None:
        """Under ``--crm-recover`` the runner put the reference outcome of ``turn`` in place."""


class NoopAgent:
    """Never calls a tool; always answers "Done."."""

    name = "noop"

    def start(self, briefing: Briefing) -> None:
        return None

    def respond(self, message: str, tools: ToolHandle) -> str:
        return "Done."


class ScriptPlayer:
    """Plays a script turn by turn: each turn's calls (references resolved against its own
    results), then a reply with the turn's facts. Not an oracle by itself: whoever
    subclasses it decides where the script comes from."""

    name = "script-player"

    def __init__(self) -> None:
        self._script: list[ScriptTurn] = []
        self._results: dict[int, list[Any]] = {}
        self._turn = 0

    def start(self, briefing: Briefing) -> None:
        self._results = {}
        self._turn = 0

    def resolve(self, args: Any) -> Any:
        return resolve(args, self._results)

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        """Hook for variants (perturbed arguments) in tests."""
        return args

    def respond(self, message: str, tools: ToolHandle) -> str:
        self._turn += 1
        step = self._script[self._turn - 1]
        results: list[Any] = []
        errors: list[str] = []
        for index, call in enumerate(step.calls):
            args = self.call_args(self._turn, index, self.resolve(call.get("args") or {}))
            outcome = tools.call(call["tool"], args)
            results.append(outcome.result if outcome.ok else None)
            if not outcome.ok and outcome.error:
                errors.append(outcome.error)
        self._results[self._turn] = results
        return oracle_reply(errors, step.facts)


class ReplayAgent(ScriptPlayer, ScriptedOracle):
    """The oracle: plays each case's reference calls, handed over by the runner."""

    name = "replay"

    def receive_script(self, case_id: str, script: Sequence[ScriptTurn]) -> None:
        super().receive_script(case_id, script)
        self._script = list(script)

    def on_recovered(self, turn: int, results: list[Any]) -> None:
        """Under ``--crm-recover`` the runner put the reference outcome of ``turn`` in place."""
        self._results[turn] = list(results)
