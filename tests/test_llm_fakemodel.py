"""The fake model server: the oracle policy through the real runner, reproducible faults,
deterministic usage, and the ``crmbench fake-server`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_support.project import SNAPSHOT_DATASET, SNAPSHOT_GOLDEN

from pytest_crmbench.agents.base import ToolResult
from pytest_crmbench.agents.claude import ClaudeAgent
from pytest_crmbench.agents.openai_agent import OpenAIAgent
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.dataset.loader import load_dataset
from pytest_crmbench.fakemodel import (
    FakeModelServer,
    FaultConfig,
    OraclePolicy,
    RouterPolicy,
    ScriptedPolicy,
    load_oracle,
)
from pytest_crmbench.runner import Runner, RunOptions

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
FAKE_KEY = "sk-test-not-a-real-key-0002"


@pytest.fixture(scope="module")
def conversations() -> list[Any]:
    return list(load_dataset([SNAPSHOT_DATASET]).conversations)


@pytest.fixture(scope="module")
def runner(world: Any) -> Iterator[Runner]:
    yield Runner(open_memory_store(world), world, RunOptions())


@pytest.mark.parametrize(
    ("flavor", "parallel"), [("claude", False), ("openai", True)], ids=["claude", "openai-par"]
)
def test_oracle_passes_every_conversation_through_the_sdks(
    conversations: list[Any], runner: Runner, flavor: str, parallel: bool
) -> None:
    """The oracle finds each conversation by its user messages, makes the reference calls
    (``{{turn_N.x}}`` resolved from the tool results the agent sent back) and replies with
    the facts: a real agent on top of it passes every conversation, refusals included."""
    oracle = OraclePolicy(conversations, parallel=parallel)
    assert len(oracle) == 12
    with FakeModelServer(oracle) as server:
        if flavor == "claude":
            agent: Any = ClaudeAgent(base_url=server.anthropic_base_url, api_key=FAKE_KEY)
        else:
            agent = OpenAIAgent(base_url=server.openai_base_url, api_key=FAKE_KEY)
        results = [runner.run(conv, agent) for conv in conversations]
        stats = server.stats_dict()
    failed = {r["case_id"]: r["first_failure"] for r in results if not r["passed"]}
    assert failed == {}
    assert sum(r["usage"]["model_calls"] for r in results) == stats["usage"]["agent"]["calls"]
    assert (
        sum(r["usage"]["input_tokens"] for r in results)
        == (stats["usage"]["agent"]["input_tokens"])
    )
    # Parallel mode makes a turn's calls in one response: fewer model calls.
    calls_per_turn = stats["usage"]["agent"]["calls"] / sum(r["n_turns"] for r in results)
    assert calls_per_turn == 2.0 if parallel else calls_per_turn > 2.0


def test_oracle_knows_golden_agent_cases_and_says_so_otherwise() -> None:
    oracle = load_oracle([str(SNAPSHOT_DATASET)], [str(SNAPSHOT_GOLDEN)])
    assert len(oracle) == 12 + 2  # + the snapshot's two golden agent cases
    with FakeModelServer(oracle, record=True) as server:
        agent = ClaudeAgent(base_url=server.anthropic_base_url, api_key=FAKE_KEY)
        from datetime import date

        from pytest_crmbench.agents.base import Briefing

        agent.start(Briefing("x", date(2025, 10, 1), "sys", []))
        reply = agent.respond("What is the weather like?", None)  # type: ignore[arg-type]
    assert reply == "I am sorry, I cannot help with that request."


def _requests_with_faults(seed: int, n: int = 40) -> list[str]:
    faults = FaultConfig(rate=0.5, seed=seed, kinds=("rate_limit", "server_error", "unknown_tool"))
    policy = ScriptedPolicy([{"text": "ok"}] * n)
    seen: list[str] = []
    with FakeModelServer(policy, faults=faults) as server:
        for i in range(n):
            status, _headers, body = server.handle(
                "/v1/messages",
                (
                    b'{"model": "m", "max_tokens": 5, "tools": [{"name": "t", "input_schema": {}}],'
                    b' "messages": [{"role": "user", "content": "q%d"}]}' % (i % 7)
                ),
                {},
            )
            if status != 200:
                seen.append(str(status))
            else:
                out = body[0]
                seen.append(out["content"][0].get("name", "text"))
    return seen


def test_faults_are_reproducible_per_seed() -> None:
    first, again, other = (
        _requests_with_faults(1),
        _requests_with_faults(1),
        _requests_with_faults(2),
    )
    assert first == again
    assert first != other
    assert {"429", "500", "delete_all_records", "text"} <= set(first)
    # Roughly the configured rate.
    assert 10 <= sum(x != "text" for x in first) <= 30


def test_usage_numbers_are_deterministic_and_cache_aware() -> None:
    body = (
        b'{"model": "claude-sonnet-4-5", "max_tokens": 5, '
        b'"system": [{"type": "text", "text": "%s", "cache_control": {"type": "ephemeral"}}],'
        b' "messages": [{"role": "user", "content": "hello"}]}' % (b"x" * 400)
    )
    with FakeModelServer(ScriptedPolicy([{"text": "hi"}] * 3)) as server:
        usages = [server.handle("/v1/messages", body, {})[2][2] for _ in range(2)]
    first, second = usages
    assert first["cache_write_tokens"] == second["cache_read_tokens"] > 100
    assert first["cache_read_tokens"] == second["cache_write_tokens"] == 0
    assert first["input_tokens"] == second["input_tokens"]
    assert first["output_tokens"] == second["output_tokens"] > 0


def test_latency_counts_from_arrival_not_after_the_servers_own_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The simulated model answers ``latency`` s after a request arrives: time the server
    spends on its own (here a policy taking 0.1 s) is part of it, not added to it, so a
    busy benchmark machine does not make the "model" slower."""
    # lazy: the module whose clock is replaced
    from pytest_crmbench.fakemodel import FakeReply
    from pytest_crmbench.fakemodel import server as server_module

    clock = {"now": 100.0}
    slept: list[float] = []

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return clock["now"]

        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock["now"] += seconds

    def slow_policy_step(request: Any) -> FakeReply:
        clock["now"] += 0.1  # the policy's own work
        return FakeReply("hi")

    body = b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}'
    with FakeModelServer(ScriptedPolicy([slow_policy_step] * 2), latency=0.25) as server:
        monkeypatch.setattr(server_module, "time", Clock)
        status = server.handle("/v1/messages", body, {})[0]
        assert status == 200
        assert slept == [pytest.approx(0.15)]
        assert clock["now"] == pytest.approx(100.25)
        # Work longer than the latency: no sleep at all.
        server.latency = 0.05
        server.handle("/v1/messages", body, {})
        assert slept == [pytest.approx(0.15)]


def test_fake_server_command_prints_its_base_url(tmp_path: Path) -> None:
    """``crmbench fake-server`` is usable offline: start, answer an SDK, stop."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pytest_crmbench.cli import main; sys.exit(main())",
            "fake-server",
            "--port",
            "0",
            "--dataset",
            str(SNAPSHOT_DATASET),
            "--latency",
            "0",
            "--fault-rate",
            "0.2",
            "--faults",
            "rate_limit",
            "--retry-after",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("fake model server on http://127.0.0.1:"), first
        base_url = first.split()[4]
        agent = OpenAIAgent(base_url=base_url + "/v1")  # no key: a local server needs none
        from datetime import date

        from pytest_crmbench.agents.base import Briefing

        agent.start(Briefing("x", date(2025, 10, 1), "sys", []))

        class Handle:
            def call(self, tool: str, args: Any = None) -> ToolResult:
                return ToolResult(True, result=[])

        assert "help" in agent.respond("Tell me a joke", Handle())  # type: ignore[arg-type]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stats:" in out


def test_router_sends_judge_requests_to_the_judge() -> None:
    from pytest_crmbench.agents.judge import JUDGE_SYSTEM
    from pytest_crmbench.fakemodel.wire import FakeRequest

    router = RouterPolicy(ScriptedPolicy([{"text": "agent"}]))

    def request(system: str) -> FakeRequest:
        return FakeRequest("openai", "m", system, [], [], "auto", True, {})

    assert router.route(request(JUDGE_SYSTEM)) is router.judge
    assert router.route(request("You are a CRM assistant")) is router.agent
