"""Shortcuts score nothing: proof on the shipped dataset and the golden agent cases.

The ``replay`` oracle passes everything and ``noop`` nothing (``test_generate`` and
``test_golden_inventory``); here the agents of :mod:`pytest_crmbench.agents.cheaters`
are run directly with :class:`~pytest_crmbench.runner.Runner` on the memory store:

* dump-all (every broad search, every value it saw, no writes): ≤ 5 % of turns and
  ≤ 1 % of conversations — it passed 71 % of read turns before read turns named the
  records to leave out (``must_not_mention``), which the last test shows again;
* always-refuse ("I can't do that."): fails every refusal turn (the reason is required);
* echo (the user's words and a few numbers, no tools): ≤ 5 % of turns, ≤ 1 % of
  conversations.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.agents.base import Briefing, ToolResult
from pytest_crmbench.agents.cheaters import (
    BROAD_CALLS,
    AlwaysRefuseAgent,
    DumpAllAgent,
    EchoAgent,
)
from pytest_crmbench.agents.scripted import ReplayAgent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm.seed import SeedWorld
from pytest_crmbench.dataset import load_dataset
from pytest_crmbench.dataset.golden import as_conversation, load_golden
from pytest_crmbench.dataset.model import Conversation, Reply
from pytest_crmbench.generate import FULL_FILE
from pytest_crmbench.locations import project_dir
from pytest_crmbench.runner import Runner, RunOptions
from pytest_crmbench.runner.records import ItemResult

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def shipped() -> tuple[Conversation, ...]:
    return load_dataset(project_dir("cases") / FULL_FILE).conversations


@pytest.fixture(scope="module")
def golden_agent() -> list[Conversation]:
    pairs = load_golden(sorted(GOLDEN_DIR.glob("*.json")))
    return [as_conversation(gf, gc) for gf, gc in pairs if gc.family == "agent"]


@pytest.fixture(scope="module")
def runner(world: SeedWorld) -> Runner:
    return Runner(open_memory_store(world), world)


def _rates(results: list[ItemResult]) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for result in results:
        for turn in result["turns"]:
            kinds[turn["kind"]] += 1
            passed[turn["kind"]] += turn["passed"]
    turns = sum(kinds.values())
    return {
        "conversations": sum(r["passed"] for r in results) / len(results),
        "turns": sum(passed.values()) / turns,
        **{kind: passed[kind] / kinds[kind] for kind in kinds},
    }


# == the agents themselves ===========================================================
class _Handle:
    """A tool handle that records calls and answers every search with two deals."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def catalog(self) -> list[dict[str, Any]]:
        return []

    def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
        self.calls.append(tool)
        rows = [
            {"opportunity_id": "x-1", "name": "Acme – Pilot", "amount": 85000.0},
            {"contact_id": "x-2", "first_name": "Ana", "last_name": "Ruiz", "client_id": "x-3"},
        ]
        return ToolResult(True, result=rows)


def test_the_cheaters_behave_as_described() -> None:
    briefing = Briefing(session="s", reference_date=date(2025, 10, 1), system_prompt="")
    dump = DumpAllAgent()
    dump.start(briefing)
    handle = _Handle()
    reply = dump.respond("Which deals are in Negotiation?", handle)
    assert handle.calls == [tool for tool, _ in BROAD_CALLS]  # searches only, no writes
    assert "Acme – Pilot" in reply and "85,000" in reply and "Ana Ruiz" in reply
    assert "x-1" not in reply  # ids are no facts
    names = DumpAllAgent(names_only=True).respond("?", _Handle())
    assert "Acme – Pilot" in names and "85,000" not in names
    silent = _Handle()
    assert AlwaysRefuseAgent().respond("Delete it.", silent) == "I can't do that."
    echo = EchoAgent().respond("How many deals are there?", silent)
    assert "How many deals are there?" in echo and "3" in echo
    assert silent.calls == []


def test_a_reply_naming_a_record_to_leave_out_fails_its_turn(
    runner: Runner, golden_agent: list[Conversation]
) -> None:
    conv = next(c for c in golden_agent if c.id == "OPS-A001")
    avoid = conv.turns[0].reply.must_not_mention
    assert avoid

    class Oversharing(ReplayAgent):
        def respond(self, message: str, tools: Any) -> str:
            return super().respond(message, tools) + f" Also {avoid[0]} and {avoid[1]}."

    result = runner.run(conv, Oversharing())
    turn = result["turns"][0]
    assert not turn["passed"]
    assert turn["checks"]["reply"]["unwanted"] == avoid[:2]
    assert turn["reason"] == (
        f"mentions records that do not match the request: {avoid[0]!r}, {avoid[1]!r}"
    )
    # The student form says what failed, never which records.
    student = Runner(runner.store, runner.world, RunOptions(feedback="student"))

    class Learner(Oversharing):
        def __init__(self) -> None:
            super().__init__()
            self.verdicts: list[dict[str, Any]] = []

        def feedback(self, verdict: dict[str, Any]) -> None:
            self.verdicts.append(verdict)

    learner = Learner()
    student.run(conv, learner)
    reasons = learner.verdicts[0]["turns"][0]["reasons"]
    assert reasons == ["reply: 2 records that do not match the request mentioned"]
    assert not any(a in r for a in avoid for r in reasons)
    assert runner.run(conv, ReplayAgent())["passed"]


# == the shipped dataset =============================================================
def test_dump_all_passes_almost_nothing(
    runner: Runner, shipped: tuple[Conversation, ...], golden_agent: list[Conversation]
) -> None:
    rates = _rates([runner.run(conv, DumpAllAgent()) for conv in shipped])
    assert rates["turns"] <= 0.05, rates
    assert rates["conversations"] <= 0.01, rates
    assert rates["read"] <= 0.05, rates  # was 71 % of read turns
    assert rates["write"] == 0.0, rates
    searches = [c for c in golden_agent if c.id.startswith("OPS-A")]
    assert len(searches) == 11
    assert [c.id for c in searches if runner.run(c, DumpAllAgent())["passed"]] == []


def test_always_refuse_fails_every_refusal_turn(
    runner: Runner, shipped: tuple[Conversation, ...], golden_agent: list[Conversation]
) -> None:
    refusing = [c for c in shipped if c.has_failure_turn]
    assert len(refusing) >= 150
    for conv in [*refusing, *golden_agent]:
        result = runner.run(conv, AlwaysRefuseAgent())
        for turn, spec in zip(result["turns"], conv.turns, strict=True):
            if spec.expect == "failure":
                assert not turn["passed"], (conv.id, turn["turn"])
                assert turn["checks"]["refusal"]["passed"]  # it did refuse …
                assert turn["checks"]["reply"]["missing"], conv.id  # … without the reason


def test_echo_passes_almost_nothing(runner: Runner, shipped: tuple[Conversation, ...]) -> None:
    rates = _rates([runner.run(conv, EchoAgent()) for conv in shipped])
    assert rates["turns"] <= 0.05, rates
    assert rates["conversations"] <= 0.01, rates


def test_without_records_to_leave_out_dump_all_passes_most_read_turns(
    runner: Runner, shipped: tuple[Conversation, ...]
) -> None:
    """What ``must_not_mention`` buys: the same read turns without it are mostly passed."""

    def recall_only(conv: Conversation) -> Conversation:
        turns = [
            t.model_copy(update={"reply": Reply(must_mention=t.reply.must_mention)})
            for t in conv.turns
        ]
        return conv.model_copy(update={"id": conv.id + "-recall", "turns": turns})

    sample = [recall_only(c) for c in shipped[:240]]
    rates = _rates([runner.run(conv, DumpAllAgent()) for conv in sample])
    assert rates["read"] >= 0.5, rates
