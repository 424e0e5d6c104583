"""Agents for the plugin tests, copied into each pytester project as ``crm_agents.py``.

Loaded with ``--agent crm_agents:Name`` (the ``module:attr`` form). The variants of
``KnowsTheAnswers`` (an honest agent with perfect answers) change exactly one thing, so
exactly one turn must fail; ``ReplayAgent`` subclasses are oracles (their runs are marked
``oracle`` and pass no gate).
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from pytest_crmbench.agents import AgentUnavailable
from pytest_crmbench.agents.scripted import ReplayAgent, ScriptPlayer, ScriptTurn

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


class KnowsTheAnswers(ScriptPlayer):
    """A strong *honest* agent: the public protocol only, no oracle channel. It answers
    each user message from ``answers.json``, which ``make_project`` writes from the test
    data into the project (not a dataset file the run loads), so gates can be shown to
    pass for an agent that does the work."""

    name = "knows-the-answers"

    def __init__(self) -> None:
        super().__init__()
        raw = json.loads(Path("answers.json").read_text(encoding="utf-8"))
        self.answers = {m: ScriptTurn(a["calls"], a["facts"], a["failure"]) for m, a in raw.items()}

    def step_for(self, message: str) -> ScriptTurn:
        known = self.answers[message]
        return ScriptTurn(list(known.calls), known.facts, known.expect_failure)

    def respond(self, message: str, tools: Any) -> str:
        self._script = [*self._script[: self._turn], self.step_for(message)]
        return super().respond(message, tools)


class PerturbedAmount(KnowsTheAnswers):
    """CONV-0001: creates the opportunity with amount 86000 instead of 85000."""

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("amount") == 85000:
            return {**args, "amount": 86000}
        return args


class PerturbedQuote(KnowsTheAnswers):
    """CONV-0003 turn 2: the quote amount is 93000 instead of 92500."""

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("amount") == 92500:
            return {**args, "amount": 93000}
        return args


class SkipsCall(KnowsTheAnswers):
    """CONV-0003 turn 3: never makes the modify_quote call (the quote stays Draft)."""

    def step_for(self, message: str) -> ScriptTurn:
        step = super().step_for(message)
        step.calls = [c for c in step.calls if c["tool"] != "modify_quote"]
        return step


class ExtraWrite(KnowsTheAnswers):
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
    """The oracle, slowed down so a run can be killed half-way (``CRM_SLOW_S`` seconds
    per turn, 0.3 by default; the same agent resumes the run at full speed with 0)."""

    def respond(self, message: str, tools: Any) -> str:
        time.sleep(float(os.environ.get("CRM_SLOW_S", "0.3")))
        return super().respond(message, tools)


class FlakyOnSecondTry(ReplayAgent):
    """The oracle, except that the 2nd time it sees CONV-0002 it answers like ``noop``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}
        self.slack = False

    def start(self, briefing: Any) -> None:
        super().start(briefing)
        # The oracle learns its case id through the internal channel (receive_script).
        n = self.seen[self.case_id] = self.seen.get(self.case_id, 0) + 1
        self.slack = self.case_id == "CONV-0002" and n == 2

    def respond(self, message: str, tools: Any) -> str:
        if self.slack:
            self._turn += 1
            return "Done."
        return super().respond(message, tools)


class WantsTheScript:
    """A cheater: asks for the script the way the oracle once did (``wants_script``)."""

    name = "wants-the-script"
    wants_script = True

    def __init__(self) -> None:
        self.script: list[Any] = []

    def set_script(self, script: Any) -> None:
        self.script = list(script)

    def receive_script(self, case_id: str, script: Any) -> None:
        self.script = list(script)

    def start(self, briefing: Any) -> None:
        self.turn = 0

    def respond(self, message: str, tools: Any) -> str:
        self.turn += 1
        if not self.script:
            return "Done."
        step = self.script[self.turn - 1]
        for call in step.calls:
            tools.call(call["tool"], call.get("args") or {})
        return "Done. " + "; ".join(step.facts)


class ReadsTheDataset(ScriptPlayer):
    """A cheater: finds its case by the user's words in the project's dataset files and
    replays the expected calls (the answer key read from disk)."""

    name = "reads-the-dataset"

    def respond(self, message: str, tools: Any) -> str:
        for path in sorted(Path("cases").glob("*.jsonl")) + sorted(Path("golden").glob("*.json")):
            text = path.read_text(encoding="utf-8")
            for line in text.splitlines() if path.suffix == ".jsonl" else [text]:
                if message not in line:
                    continue
                for turn in _turns_of(json.loads(line)):
                    if turn["user"] == message:
                        calls = turn.get("expected_calls") or []
                        facts = (turn.get("reply") or {}).get("must_mention", [])
                        self._script = [
                            *self._script[: self._turn],
                            ScriptTurn(calls, facts, False),
                        ]
                        return super().respond(message, tools)
        return "Done."


def _turns_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if "turns" in obj:
        return list(obj["turns"])
    return [
        {
            "user": c.get("user"),
            "expected_calls": c.get("expected_calls"),
            "reply": {"must_mention": c.get("must_mention", [])},
        }
        for c in obj.get("cases", [])
        if c.get("user")
    ]


class DropsSomeCalls(KnowsTheAnswers):
    """An honest agent that gets about a third of the turns wrong, the same ones every
    run (no calls when the message's CRC is divisible by 3): mixed verdicts to compare."""

    name = "drops-some-calls"

    def step_for(self, message: str) -> ScriptTurn:
        step = super().step_for(message)
        if zlib.crc32(message.encode()) % 3 == 0:
            return ScriptTurn([], step.facts, step.expect_failure)
        return step


class CountsInFlight(KnowsTheAnswers):
    """An honest agent that records in ``in_flight.txt`` the most conversations it saw
    answering at once (each waits ``CRM_SLOW_S`` seconds, 0.1 by default, in turn 1)."""

    name = "counts-in-flight"
    _lock = threading.Lock()
    _now = 0
    _most = 0

    def respond(self, message: str, tools: Any) -> str:
        cls = CountsInFlight
        with cls._lock:
            cls._now += 1
            cls._most = max(cls._most, cls._now)
            Path("in_flight.txt").write_text(str(cls._most), encoding="utf-8")
        try:
            if self._turn == 0:
                time.sleep(float(os.environ.get("CRM_SLOW_S", "0.1")))
            return super().respond(message, tools)
        finally:
            with cls._lock:
                cls._now -= 1


class OneIsSlow(KnowsTheAnswers):
    """An honest agent that answers the first turn of one conversation (the one opening
    with the message ``CRM_SLOW_MESSAGE``) one second late; ``overtaken.txt`` counts the
    other conversations that started before that one finished, and ``twice.txt``
    names a conversation that was started twice."""

    name = "one-is-slow"
    _lock = threading.Lock()
    _slow_done = False
    _overtaken = 0
    _started: set[str] = set()  # noqa: RUF012  (the class is the record)

    def respond(self, message: str, tools: Any) -> str:
        cls = OneIsSlow
        if self._turn == 0:
            with cls._lock:
                if message in cls._started:
                    Path("twice.txt").write_text(message, encoding="utf-8")
                cls._started.add(message)
        if self._turn == 0 and message == os.environ["CRM_SLOW_MESSAGE"]:
            time.sleep(1.0)
            with cls._lock:
                cls._slow_done = True
        elif self._turn == 0:
            with cls._lock:
                cls._overtaken += int(not cls._slow_done)
                Path("overtaken.txt").write_text(str(cls._overtaken), encoding="utf-8")
        return super().respond(message, tools)


class WarmsUp(ReplayAgent):
    """Replay, with a warm-up hook that notes whether the garbage collector ran."""

    gc_enabled_during_warm_up: list[bool] = []  # noqa: RUF012  (the class is the record)

    @classmethod
    def warm_up(cls) -> None:
        import gc  # lazy: test support

        cls.gc_enabled_during_warm_up.append(gc.isenabled())
