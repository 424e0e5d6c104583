"""Honest scores at the runner level: the oracle channel is internal, feedback comes only
on request and, in student mode, holds no expected value, and an agent that opens the
answer key (a dataset file) fails and is marked ``oracle``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from plugin_support.agents import WantsTheScript

from pytest_crmbench.agents.base import Briefing, ToolHandle
from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent, ScriptPlayer, ScriptTurn
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.entities import ENTITIES
from pytest_crmbench.dataset import load_dataset
from pytest_crmbench.dataset.model import Conversation
from pytest_crmbench.results import summarize
from pytest_crmbench.runner import Runner, RunOptions

DATASET = Path(__file__).parent / "plugin_support" / "data" / "conversations.jsonl"


@pytest.fixture(scope="module")
def conversations() -> tuple[Conversation, ...]:
    return load_dataset(DATASET).conversations


def _runner(world: Any, **options: Any) -> Runner:
    return Runner(open_memory_store(world), world, RunOptions(**options))


class Learner(NoopAgent):
    """Records every feedback it gets (and the briefings)."""

    def __init__(self) -> None:
        self.feedbacks: list[dict[str, Any]] = []
        self.briefings: list[Briefing] = []

    def start(self, briefing: Briefing) -> None:
        self.briefings.append(briefing)

    def feedback(self, verdict: dict[str, Any]) -> None:
        self.feedbacks.append(verdict)


class WrongAmountLearner(ReplayAgent):
    """The oracle's calls with every amount off by 1,000, and a learner."""

    def __init__(self) -> None:
        super().__init__()
        self.feedbacks: list[dict[str, Any]] = []

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        out = json.loads(json.dumps(args))
        for holder in (out, out.get("updates") or {}):
            if isinstance(holder.get("amount"), int | float):
                holder["amount"] += 1000
        return dict(out)

    def respond(self, message: str, tools: ToolHandle) -> str:
        super().respond(message, tools)
        return "Done."  # no facts either

    def feedback(self, verdict: dict[str, Any]) -> None:
        self.feedbacks.append(verdict)


def _expected_values(conv: Conversation) -> set[str]:
    """Every value a student must not be told: facts and literal argument values."""
    out = {f for t in conv.turns for f in t.reply.must_mention}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float) and abs(value) >= 10:
            out.add(str(int(value)) if float(value).is_integer() else str(value))
        elif isinstance(value, str) and len(value) >= 4 and "{{" not in value:
            out.add(value)

    for t in conv.turns:
        for c in t.expected_calls:
            walk(c.args)
    said = " ".join(t.user for t in conv.turns)  # what the user said is no secret
    return {v for v in out if v not in said} - {e.name for e in ENTITIES}


def test_feedback_is_never_given_unless_asked(world: Any, conversations: Any) -> None:
    agent = Learner()
    runner = _runner(world)
    for conv in conversations[:3]:
        runner.run(conv, agent)
    assert agent.feedbacks == []


def test_student_feedback_says_what_failed_without_expected_values(
    world: Any, conversations: Any
) -> None:
    runner = _runner(world, feedback="student")
    told = 0
    for conv in conversations:
        agent = WrongAmountLearner()
        result = runner.run(conv, agent)
        assert len(agent.feedbacks) == 1
        fb = agent.feedbacks[0]
        assert fb["mode"] == "student" and fb["passed"] == result["passed"]
        text = json.dumps(fb)
        assert conv.id not in text  # nothing to look the case up by
        said = " ".join(r for t in fb["turns"] for r in t["reasons"])  # the only free text
        leaked = sorted(
            v
            for v in _expected_values(conv)
            if len(v) > 1 and re.search(rf"(?<![\w.]){re.escape(v)}(?![\w])", said)
        )
        assert leaked == [], (conv.id, leaked, said)
        for turn, view in zip(result["turns"], fb["turns"], strict=True):
            assert view["passed"] == turn["passed"]
            if not turn["passed"]:
                assert view["failed_checks"] and view["reasons"]
                told += 1
    assert told > 10  # the learner was told about many failing turns


def test_student_feedback_names_the_record_and_field(world: Any, conversations: Any) -> None:
    conv = next(c for c in conversations if c.id == "CONV-0001")
    agent = WrongAmountLearner()
    result = _runner(world, feedback="student").run(conv, agent)
    full = " ".join(r for t in result["turns"] for r in t["reasons"])
    student = " ".join(r for t in agent.feedbacks[0]["turns"] for r in t["reasons"])
    assert "85000" in full  # the report keeps the values...
    assert "amount" in student and "85000" not in student  # ...the student gets the field


def test_teacher_feedback_adds_the_expected_values(world: Any, conversations: Any) -> None:
    conv = next(c for c in conversations if c.id == "CONV-0001")
    agent = WrongAmountLearner()
    _runner(world, feedback="teacher").run(conv, agent)
    fb = agent.feedbacks[0]
    assert fb["mode"] == "teacher"
    text = json.dumps(fb)
    assert "85000" in text and "expected_calls" in text


def test_briefing_carries_an_opaque_token_not_the_case(world: Any, conversations: Any) -> None:
    agent = Learner()
    runner = _runner(world)
    for conv in conversations[:3]:
        runner.run(conv, agent)
        runner.run(conv, agent)
    tokens = [b.session for b in agent.briefings]
    assert len(set(tokens)) == len(tokens)  # new for every run, even of the same case
    for b in agent.briefings:
        assert not any(c.id in json.dumps(b.__dict__, default=str) for c in conversations)


def test_asking_for_the_script_gets_nothing(world: Any, conversations: Any) -> None:
    runner = _runner(world)
    results = [runner.run(conv, WantsTheScript()) for conv in conversations]
    assert not any(r["passed"] for r in results)
    assert not any(r.get("oracle") for r in results)


def test_the_builtin_oracle_is_marked_and_fails_every_gate(world: Any, conversations: Any) -> None:
    from pytest_crmbench.results import Gate, evaluate_gate

    runner = _runner(world)
    results = [runner.run(conv, ReplayAgent()) for conv in conversations]
    assert all(r["passed"] and r["oracle"] for r in results)
    summary = summarize(results)
    assert summary["oracle"] is True and summary["pass_rate"] == 1.0
    verdict = evaluate_gate(Gate(min_pass_rate=0.0), results)
    assert not verdict.passed and "oracle run" in verdict.reasons[0]


class ReadsTheAnswerKey(ScriptPlayer):
    """A cheater: finds its case in the dataset file by the user's words."""

    name = "reads-the-answer-key"

    def respond(self, message: str, tools: ToolHandle) -> str:
        for line in DATASET.read_text(encoding="utf-8").splitlines():
            if message in line:
                for turn in json.loads(line)["turns"]:
                    if turn["user"] == message:
                        step = ScriptTurn(
                            turn["expected_calls"],
                            turn.get("reply", {}).get("must_mention", []),
                            False,
                        )
                        self._script = [*self._script[: self._turn], step]
        if len(self._script) <= self._turn:
            return "Done."
        return super().respond(message, tools)


def test_reading_the_answer_key_fails_and_is_marked_oracle(world: Any, conversations: Any) -> None:
    runner = _runner(world)
    results = [runner.run(conv, ReadsTheAnswerKey()) for conv in conversations]
    # It did the work right (every turn's state and facts pass)...
    assert all(t["passed"] for r in results for t in r["turns"])
    # ...but read the answer key: every item failed, marked oracle, with the file named.
    assert not any(r["passed"] for r in results)
    assert all(r["oracle"] for r in results)
    assert all(str(DATASET.resolve()) in (r["first_failure"] or {})["reason"] for r in results)
    assert summarize(results)["pass_rate"] == 0.0


def test_per_turn_student_feedback_holds_no_expected_values(world: Any, conversations: Any) -> None:
    runner = _runner(world, feedback="student", feedback_every="turn")
    told = 0
    for conv in conversations:
        agent = WrongAmountLearner()
        result = runner.run(conv, agent)
        per_turn = [f for f in agent.feedbacks if f.get("scope") == "turn"]
        assert len(per_turn) == len(conv.turns) and len(agent.feedbacks) == len(conv.turns) + 1
        for fb, turn in zip(per_turn, result["turns"], strict=True):
            assert fb["mode"] == "student" and len(fb["turns"]) == 1
            assert fb["passed"] == turn["passed"] and "expected_calls" not in fb["turns"][0]
            assert conv.id not in json.dumps(fb)
            said = " ".join(fb["turns"][0]["reasons"])
            leaked = [
                v
                for v in _expected_values(conv)
                if len(v) > 1 and re.search(rf"(?<![\w.]){re.escape(v)}(?![\w])", said)
            ]
            assert leaked == [], (conv.id, leaked, said)
            told += not fb["passed"]
    assert told > 10
