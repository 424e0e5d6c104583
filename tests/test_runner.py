"""The runner without pytest: oracle passes, noop fails, variants fail exactly their turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_crmbench.agents.base import ToolHandle
from pytest_crmbench.agents.scripted import NoopAgent, ReplayAgent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm import CRM, FixedClock, MemoryStore, RandomIds
from pytest_crmbench.dataset import load_dataset
from pytest_crmbench.runner import DatasetDefect, InfrastructureError, Runner, RunOptions
from pytest_crmbench.runner.tracking import TrackingStore


@pytest.fixture(scope="module")
def dataset() -> Any:
    # A frozen copy of the hand-written starter set: these tests name its turns.
    return load_dataset(Path(__file__).parent / "plugin_support" / "data" / "conversations.jsonl")


@pytest.fixture
def runner(world: Any) -> Runner:
    return Runner(open_memory_store(world), world)


def test_replay_passes_and_noop_fails_every_conversation(runner: Runner, dataset: Any) -> None:
    for conv in dataset.conversations:
        assert runner.run(conv, ReplayAgent())["passed"], conv.id
        result = runner.run(conv, NoopAgent())
        assert not result["passed"], conv.id
        assert result["turns_passed"] == 0, conv.id


class PerturbedReplay(ReplayAgent):
    """Changes one numeric argument of one turn."""

    def __init__(self, turn: int) -> None:
        super().__init__()
        self.target = turn

    def call_args(self, turn: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
        if turn == self.target and isinstance(args.get("updates"), dict):
            updates = dict(args["updates"])
            if "amount" in updates:
                updates["amount"] += 1000
            args = {**args, "updates": updates}
        if turn == self.target and "amount" in args:
            args = {**args, "amount": args["amount"] + 1000}
        return args


class SkippingReplay(ReplayAgent):
    """Performs no call on one turn but still claims the facts."""

    def __init__(self, turn: int) -> None:
        super().__init__()
        self.target = turn

    def respond(self, message: str, tools: ToolHandle) -> str:
        if self._turn + 1 == self.target:
            self._turn += 1
            self._results[self._turn] = []
            return "Done. " + "; ".join(self._script[self._turn - 1].facts)
        return super().respond(message, tools)


class ExtraWriteReplay(ReplayAgent):
    """Adds a stray note on one turn."""

    def __init__(self, turn: int) -> None:
        super().__init__()
        self.target = turn

    def respond(self, message: str, tools: ToolHandle) -> str:
        reply = super().respond(message, tools)
        if self._turn == self.target:
            clients = tools.call("client_search", {"name": "Acme Corporation"}).result
            tools.call(
                "add_note",
                {"entity_type": "Client", "entity_id": clients[0]["client_id"], "content": "x"},
            )
        return reply


def _turn_verdicts(result: dict[str, Any]) -> list[bool]:
    return [t["passed"] for t in result["turns"]]


def test_perturbed_amount_fails_exactly_that_turn(runner: Runner, dataset: Any) -> None:
    conv = dataset.by_id["CONV-0008"]  # turn 4 sets amount 98,000
    result = runner.run(conv, PerturbedReplay(4))
    assert _turn_verdicts(result) == [True, True, True, False, True, True, True]
    assert "amount: 99000 ≠ 98000" in result["turns"][3]["reason"]


def test_skipped_call_fails_exactly_that_turn(runner: Runner, dataset: Any) -> None:
    conv = dataset.by_id["CONV-0005"]
    result = runner.run(conv, SkippingReplay(3))
    assert _turn_verdicts(result) == [True, True, False, True]
    assert result["turns"][2]["reason"].startswith("missing write")


def test_extra_write_fails_exactly_that_turn(runner: Runner, dataset: Any) -> None:
    conv = dataset.by_id["CONV-0003"]
    result = runner.run(conv, ExtraWriteReplay(2))
    assert _turn_verdicts(result) == [True, False, True, True]
    assert result["turns"][1]["reason"] == "unexpected write: created Note 'x'"


def test_recover_scores_later_turns_on_their_own(world: Any, dataset: Any) -> None:
    conv = dataset.by_id["CONV-0005"]  # turn 1 creates the client later turns use

    class SkipFirst(SkippingReplay):
        pass

    recovering = Runner(open_memory_store(world), world, RunOptions(recover=True))
    result = recovering.run(conv, SkipFirst(1))
    assert _turn_verdicts(result) == [False, True, True, True]


def test_turn_limit(world: Any, dataset: Any) -> None:
    class Chatty(ReplayAgent):
        def respond(self, message: str, tools: ToolHandle) -> str:
            for _ in range(5):
                tools.call("quote_prefixes", {})
            return super().respond(message, tools)

    runner = Runner(open_memory_store(world), world, RunOptions(max_calls_per_turn=4))
    result = runner.run(dataset.by_id["CONV-0002"], Chatty())
    assert not result["passed"]
    assert any("turn limit" in r for r in result["turns"][0]["reasons"])


def test_agent_sees_only_task_tools(runner: Runner, dataset: Any) -> None:
    seen: list[Any] = []

    class Prober(NoopAgent):
        def respond(self, message: str, tools: ToolHandle) -> str:
            for name in ("list_clients", "_get", "summarize_counts", "ensure_client"):
                seen.append(tools.call(name, {}))
            return "Done."

    runner.run(dataset.by_id["CONV-0002"], Prober())
    assert all(not r.ok and r.error.startswith("Unknown tool") for r in seen)
    assert len(seen[0].as_dict()) == 2


def test_agent_crash_and_unavailable_are_infrastructure_errors(
    runner: Runner, dataset: Any
) -> None:
    from pytest_crmbench.agents import AgentUnavailable

    class Down(NoopAgent):
        def respond(self, message: str, tools: ToolHandle) -> str:
            raise AgentUnavailable("HTTP 503 after 5 retries")

    class Buggy(NoopAgent):
        def respond(self, message: str, tools: ToolHandle) -> str:
            raise KeyError("oops")

    with pytest.raises(InfrastructureError, match="agent unavailable: HTTP 503"):
        runner.run(dataset.by_id["CONV-0002"], Down())
    with pytest.raises(InfrastructureError, match="agent crashed: KeyError"):
        runner.run(dataset.by_id["CONV-0002"], Buggy())


def test_incoherent_conversation_is_a_dataset_defect(runner: Runner, dataset: Any) -> None:
    conv = dataset.by_id["CONV-0004"].model_copy(deep=True)
    object.__setattr__(conv.turns[0], "error_contains", "something else entirely")
    with pytest.raises(DatasetDefect, match="lacks"):
        runner.run(conv, ReplayAgent())


def test_results_are_plain_json(runner: Runner, dataset: Any) -> None:
    import json

    result = runner.run(dataset.by_id["CONV-0008"], ReplayAgent())
    assert json.loads(json.dumps(result)) == result


def test_tracking_store_forgets_rolled_back_calls(world: Any) -> None:
    store = MemoryStore()
    world.load_into(store)
    store.mark_base()
    tracking = TrackingStore(store)
    crm = CRM(tracking, clock=FixedClock(world.reference_date), ids=RandomIds())
    tracking.start()
    client = crm.create_new_client(name="T", email="t@t.io", status="Active")
    with pytest.raises(Exception, match="already exists"):
        crm.create_new_client(name="T2", email="T@t.io", status="Active")
    changes = tracking.changes()
    assert [(c.table, c.key, c.kind) for c in changes] == [
        ("clients", client["client_id"], "created")
    ]
