"""Scripted agents: ``replay`` (the oracle that performs the reference calls) and ``noop``.

``replay`` proves the harness can be passed: it must score 100 % on the shipped data.
``noop`` proves the verdict is not vacuous: it must score 0 on conversations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_crmbench.agents.base import Briefing, ScriptTurn, ToolHandle
from pytest_crmbench.dataset.refs import resolve

__all__ = ["NoopAgent", "ReplayAgent", "ScriptTurn"]


class NoopAgent:
    """Never calls a tool; always answers "Done."."""

    name = "noop"

    def start(self, briefing: Briefing) -> None:
        return None

    def respond(self, message: str, tools: ToolHandle) -> str:
        return "Done."


class ReplayAgent:
    """Performs each turn's reference calls (references resolved against its own results).

    The runner hands it the script through :meth:`set_script` because ``wants_script`` is
    set; real agents never get one.
    """

    name = "replay"
    wants_script = True

    def __init__(self) -> None:
        self._script: list[ScriptTurn] = []
        self._results: dict[int, list[Any]] = {}
        self._turn = 0

    def set_script(self, script: Sequence[ScriptTurn]) -> None:
        self._script = list(script)

    def start(self, briefing: Briefing) -> None:
        self._results = {}
        self._turn = 0

    def on_recovered(self, turn: int, results: list[Any]) -> None:
        """Under ``--crm-recover`` the runner put the reference outcome of ``turn`` in place."""
        self._results[turn] = list(results)

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
        facts = "; ".join(step.facts)
        if errors:
            return f"I could not do that: {' '.join(errors)} {facts}".strip()
        return f"Done. {facts}".strip()
