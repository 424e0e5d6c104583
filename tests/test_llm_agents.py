"""The ``claude`` and ``openai`` agents: their real SDK clients over HTTP against the local
fake model server (never mocks of the SDKs), driving a real CRM through the runner's
recording handle.

Tool loop, parallel calls, history across turns, tool-call mistakes shown to the model,
the per-turn limit, usage and cost as the API reported them, bounded retries honouring
Retry-After, persistent failures as ``AgentUnavailable`` with redacted reasons.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from pytest_crmbench.agents.base import AgentUnavailable, Briefing, ToolResult
from pytest_crmbench.agents.claude import AnthropicBackend, ClaudeAgent
from pytest_crmbench.agents.llm import (
    Failure,
    LLMAgent,
    RequestBody,
    RetryPolicy,
    backoff_delay,
    call_with_retries,
    redact,
)
from pytest_crmbench.agents.openai_agent import OpenAIAgent
from pytest_crmbench.agents.pricing import (
    DEFAULT_PRICES,
    Price,
    PriceError,
    PriceTable,
    parse_prices,
    price_table,
)
from pytest_crmbench.agents.prompt import build_system_prompt
from pytest_crmbench.backends import open_memory_store
from pytest_crmbench.crm import CRM, DeterministicIds, FixedClock
from pytest_crmbench.crm.catalog import agent_catalog
from pytest_crmbench.fakemodel import FakeModelServer, FaultConfig, ScriptedPolicy
from pytest_crmbench.fakemodel.wire import FakeRequest
from pytest_crmbench.runner.runner import RecordingHandle

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY")
FAKE_KEY = "sk-test-not-a-real-key-0001"
FAST = RetryPolicy(attempts=2, sdk_max_retries=1, budget_s=8.0, base_delay_s=0.1, max_delay_s=0.3)
# Persistent failures: our layer only (the SDK's backoff starts at 0.5 s), 3 quick attempts.
QUICK = RetryPolicy(attempts=3, sdk_max_retries=0, budget_s=8.0, base_delay_s=0.05, max_delay_s=0.1)
NORTHWIND = "a6c6ba24-d0d5-5c77-a61d-f61f0ef3141f"  # seed world client


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*KEY_VARS, "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(params=["claude", "openai"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_agent(flavor: str, server: FakeModelServer, **kwargs: Any) -> LLMAgent:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("api_key", FAKE_KEY)
    if flavor == "claude":
        return ClaudeAgent(base_url=server.anthropic_base_url, **kwargs)
    return OpenAIAgent(base_url=server.openai_base_url, **kwargs)


@pytest.fixture(scope="module")
def memory_store(world: Any) -> Any:
    return open_memory_store(world)


@pytest.fixture
def crm(memory_store: Any, world: Any) -> Iterator[CRM]:
    memory_store.reset()
    yield CRM(memory_store, clock=FixedClock(world.reference_date), ids=DeterministicIds("llm"))
    memory_store.reset()


def briefing() -> Briefing:
    day = date(2025, 10, 1)
    return Briefing("CONV-TEST", day, build_system_prompt(day), agent_catalog())


def started(agent: LLMAgent) -> LLMAgent:
    agent.start(briefing())
    return agent


def tool_messages(req: FakeRequest) -> list[str]:
    return [m.text for m in req.messages if m.role == "tool"]


# == the tool loop ===================================================================
def test_tool_loop_parallel_calls_and_history(flavor: str, crm: CRM) -> None:
    policy = ScriptedPolicy(
        [
            {  # two calls in one response: executed in order, both results sent back
                "calls": [
                    {"name": "client_search", "args": {"name": "Northwind"}},
                    {"name": "opportunity_search", "args": {"client_id": NORTHWIND}},
                ]
            },
            {"calls": [{"name": "summarize_opportunities", "args": {"client_id": NORTHWIND}}]},
            {"text": "Northwind Traders has open deals."},
            {"text": "You asked about Northwind Traders."},
        ]
    )
    with FakeModelServer(policy) as server:
        agent = started(make_agent(flavor, server))
        handle = RecordingHandle(crm, 8)
        assert agent.respond("What deals does Northwind have?", handle) == (
            "Northwind Traders has open deals."
        )
        usage = agent.last_usage()
        second = RecordingHandle(crm, 8)
        assert agent.respond("Whom did I ask about?", second) == (
            "You asked about Northwind Traders."
        )
        agent.close()
    assert [c["tool"] for c in handle.calls] == [
        "client_search",
        "opportunity_search",
        "summarize_opportunities",
    ]
    assert all(c["ok"] for c in handle.calls)
    assert second.calls == []
    assert usage.model_calls == 3
    first, after_parallel, _third, next_turn = policy.requests
    # The briefing: system prompt and the 28 tools, passed natively.
    assert first.system == briefing().system_prompt
    assert first.tools == [t["name"] for t in agent_catalog()]
    assert first.tool_choice == "auto"
    # Both parallel results come back, in call order, as the CRM returned them.
    results = tool_messages(after_parallel)
    assert len(results) == 2
    assert '"ok": true' in results[0] and "Northwind Traders" in results[0]
    assert NORTHWIND in results[1]
    # The history spans turns: user, assistant, tool messages of turn 1, then turn 2.
    assert next_turn.user_texts() == ["What deals does Northwind have?", "Whom did I ask about?"]
    roles = [m.role for m in next_turn.messages]
    assert roles == ["user", "assistant", "tool", "tool", "assistant", "tool", "assistant", "user"]
    assert next_turn.messages[-2].text == "Northwind Traders has open deals."
    if flavor == "claude":
        assert first.body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert first.body["cache_control"] == {"type": "ephemeral"}
        assert "temperature" not in first.body  # the API version of SDK 2.x rejects it
    else:
        assert first.body["temperature"] == 0.0
        assert first.body["parallel_tool_calls"] is True
        assert first.body["max_tokens"] == 1024  # custom base URL: the compatible name


def test_tool_call_mistakes_are_tool_errors_not_crashes(flavor: str, crm: CRM) -> None:
    policy = ScriptedPolicy(
        [
            {"calls": [{"name": "client_search", "args": '{"name": "Northw'}]},  # bad JSON
            {"calls": [{"name": "client_search", "args": '["Northwind"]'}]},  # not an object
            {"calls": [{"name": "drop_all_tables", "args": {}}]},  # unknown tool
            {"calls": [{"name": "_helper_reset", "args": {}}]},  # private helper
            {"calls": [{"name": "create_new_client", "args": {"name": ["x"], "email": 5}}]},
            {"text": "Sorry, I could not do that."},
        ]
    )
    with FakeModelServer(policy) as server:
        agent = started(make_agent(flavor, server))
        handle = RecordingHandle(crm, 8)
        reply = agent.respond("Add a client", handle)
    assert reply == "Sorry, I could not do that."
    errors = [tool_messages(r)[-1] for r in policy.requests[1:]]
    assert "Invalid tool arguments: not valid JSON" in errors[0]
    assert "expected a JSON object, got list" in errors[1]
    assert "Unknown tool 'drop_all_tables'" in errors[2]
    assert "Unknown tool '_helper_reset'" in errors[3]
    assert '"ok": false' in errors[4] and "create_new_client" not in errors[4].split('"error"')[0]
    # Calls that reached the CRM are recorded (and refused); unparseable ones never reach it.
    assert [(c["tool"], c["ok"]) for c in handle.calls] == [
        ("drop_all_tables", False),
        ("_helper_reset", False),
        ("create_new_client", False),
    ]


def test_turn_limit_ends_the_loop_with_a_text_answer(flavor: str, crm: CRM) -> None:
    many = {"calls": [{"name": "client_search", "args": {"name": n}} for n in "ABC"]}
    policy = ScriptedPolicy([many, {"text": "I stopped searching."}])
    with FakeModelServer(policy) as server:
        agent = started(make_agent(flavor, server))
        handle = RecordingHandle(crm, 2)  # the runner's per-turn limit
        assert agent.respond("Search a lot", handle) == "I stopped searching."
    assert handle.limit_hit
    assert "Tool call limit reached" in tool_messages(policy.requests[1])[-1]
    assert policy.requests[1].tool_choice == "none"  # the wrap-up call: answer, no tools


def test_max_model_calls_bounds_a_turn(flavor: str, crm: CRM) -> None:
    loop = {"calls": [{"name": "quote_prefixes", "args": {}}]}
    policy = ScriptedPolicy([loop] * 10)
    with FakeModelServer(policy) as server:
        agent = started(make_agent(flavor, server, max_model_calls=3))
        handle = RecordingHandle(crm, 50)
        assert agent.respond("Loop forever", handle) == ""
    assert len(policy.requests) == 3
    assert [r.tool_choice for r in policy.requests] == ["auto", "auto", "none"]
    assert len(handle.calls) == 2  # the calls of the last response were not executed
    assert agent.last_usage().model_calls == 3


# == usage and cost ==================================================================
def test_usage_is_what_the_api_reported(flavor: str, crm: CRM) -> None:
    policy = ScriptedPolicy(
        [{"calls": [{"name": "quote_prefixes", "args": {}}]}, {"text": "Done."}, {"text": "Ok."}]
    )
    with FakeModelServer(policy) as server:
        agent = started(make_agent(flavor, server))
        agent.respond("Prefixes?", RecordingHandle(crm, 8))
        first = agent.last_usage()
        agent.respond("Thanks", RecordingHandle(crm, 8))
        second = agent.last_usage()
        reported = server.stats_dict()["usage"]["agent"]
    for key in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        assert getattr(first, key) + getattr(second, key) == reported[key]
    assert first.model_calls + second.model_calls == reported["calls"] == 3
    assert first.cache_read_tokens > 0  # the static prefix is cached after the first call
    table = PriceTable()
    model = agent.model
    price = table.lookup(model)
    assert price is not None
    if flavor == "claude":
        assert model == "claude-sonnet-4-5"
        expected = (
            first.input_tokens * 3
            + first.output_tokens * 15
            + first.cache_read_tokens * 0.30
            + first.cache_write_tokens * 3.75
        ) / 1e6
    else:
        assert model == "gpt-4.1"
        expected = (
            (first.input_tokens - first.cache_read_tokens) * 2
            + first.cache_read_tokens * 0.5
            + first.output_tokens * 8
        ) / 1e6
    assert first.cost_usd == pytest.approx(expected)
    assert first.latency_s > 0 and first.retries == 0


def test_price_table_defaults_lookup_and_overrides(tmp_path: Any) -> None:
    assert DEFAULT_PRICES["claude-sonnet-4-5"] == Price(3.0, 15.0, 0.30, 3.75)
    assert DEFAULT_PRICES["gpt-4.1"] == Price(2.0, 8.0, 0.50)
    assert DEFAULT_PRICES["gpt-4.1-mini"] == Price(0.40, 1.60, 0.10)
    table = PriceTable()
    assert table.lookup("claude-sonnet-4-5-20250929") == DEFAULT_PRICES["claude-sonnet-4-5"]
    assert table.lookup("gpt-4.1-mini-2025-04-14") == DEFAULT_PRICES["gpt-4.1-mini"]
    assert table.lookup("llama3.1:8b") is None
    assert table.cost("llama3.1:8b", input_tokens=10**6, output_tokens=10**6) == 0.0
    assert table.cost("gpt-4.1", input_tokens=10**6, output_tokens=0) == pytest.approx(2.0)
    inline = price_table('{"llama3.1:8b": {"input": 0.1, "output": 0.2}}')
    assert inline.cost("llama3.1:8b", input_tokens=10**6, output_tokens=10**6) == 0.3
    assert inline.lookup("llama3.1:8b") == Price(0.1, 0.2)  # cache prices default to input
    path = tmp_path / "prices.json"
    path.write_text('{"gpt-4.1": {"input": 1, "output": 4, "cache_read": 0.25}}')
    assert price_table(str(path)).lookup("gpt-4.1") == Price(1.0, 4.0, 0.25)
    for bad, message in [
        ("{not json", "not valid JSON"),
        ('{"m": {"input": 1}}', "'output'"),
        ('{"m": {"input": -1, "output": 1}}', "must be a number"),
        ('{"m": {"input": 1, "output": 1, "cached": 1}}', "unknown key"),
        ("no/such/file.json", "no such file"),
    ]:
        with pytest.raises(PriceError, match=message):
            parse_prices(bad)


# == retries, timeouts, persistent failures ==========================================
@pytest.mark.parametrize("who", ["sdk", "agent"])
def test_retry_after_is_honoured(flavor: str, crm: CRM, who: str) -> None:
    faults = FaultConfig(sequence=("rate_limit", "rate_limit"), retry_after=0.3)
    policy = ScriptedPolicy([{"text": "Fine."}])
    # Either the SDK retries (its own Retry-After handling) or, with SDK retries off,
    # our backoff layer does — both must wait what the server asked.
    retry = (
        RetryPolicy(attempts=1, sdk_max_retries=2)
        if who == "sdk"
        else RetryPolicy(attempts=3, sdk_max_retries=0, base_delay_s=0.01)
    )
    with FakeModelServer(policy, faults=faults) as server:
        agent = started(make_agent(flavor, server, retry=retry))
        t0 = time.monotonic()
        assert agent.respond("Hello", RecordingHandle(crm, 8)) == "Fine."
        elapsed = time.monotonic() - t0
    # The lower bound proves the wait; the upper one only rules out unbounded waiting
    # (generous: CI machines are shared and noisy).
    assert 0.6 <= elapsed < 15.0
    assert agent.last_usage().retries == 2
    assert server.stats_dict()["faults"] == {"rate_limit": 2}


def test_a_long_retry_after_fails_fast_within_the_budget(flavor: str, crm: CRM) -> None:
    faults = FaultConfig(rate=1.0, kinds=("rate_limit",), retry_after=3600)
    with FakeModelServer(ScriptedPolicy([]), faults=faults) as server:
        agent = started(make_agent(flavor, server))
        t0 = time.monotonic()
        with pytest.raises(AgentUnavailable, match=r"rate limited.*asked to wait 3600 s"):
            agent.respond("Hello", RecordingHandle(crm, 8))
    assert time.monotonic() - t0 < 15.0  # not 3600 s
    assert server.stats_dict()["requests"] == 1  # neither the SDK nor we waited an hour


def test_transient_faults_are_retried(flavor: str, crm: CRM) -> None:
    kinds = ("server_error", "overloaded", "timeout")
    faults = FaultConfig(sequence=kinds, timeout_sleep=0.6)
    policy = ScriptedPolicy([{"text": "Recovered."}])
    with FakeModelServer(policy, faults=faults) as server:
        agent = started(make_agent(flavor, server, timeout=0.3, retry=FAST))
        assert agent.respond("Hello", RecordingHandle(crm, 8)) == "Recovered."
    assert agent.last_usage().retries == 3
    assert server.stats_dict()["faults"] == dict.fromkeys(kinds, 1)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (
            {"faults": FaultConfig(rate=1.0, kinds=("server_error",))},
            r"error \(HTTP 500\).*gave up after 3 attempts",
        ),
        (
            {"faults": FaultConfig(rate=1.0, kinds=("overloaded",))},
            r"overloaded \(HTTP 5(29|03)\)",
        ),
        ({"faults": FaultConfig(rate=1.0, kinds=("timeout",), timeout_sleep=0.5)}, "timed out"),
        ({"api_key": "the-right-key", "echo_key_in_errors": True}, r"refused the credentials"),
        ({"max_context_tokens": 50}, "context window exceeded"),
    ],
    ids=["5xx", "overloaded", "timeouts", "auth", "context-overflow"],
)
def test_persistent_failures_raise_agent_unavailable(
    flavor: str, crm: CRM, setup: dict[str, Any], reason: str
) -> None:
    with FakeModelServer(ScriptedPolicy([]), **setup) as server:
        agent = started(make_agent(flavor, server, timeout=0.25, retry=QUICK))
        t0 = time.monotonic()
        with pytest.raises(AgentUnavailable, match=reason) as info:
            agent.respond("Hello", RecordingHandle(crm, 8))
    assert time.monotonic() - t0 < 20.0  # bounded retries, not a hang
    assert FAKE_KEY not in str(info.value)  # the auth error echoes the key: redacted
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_api_key_is_reported_clearly() -> None:
    with pytest.raises(AgentUnavailable) as info:
        ClaudeAgent().check_ready()
    message = str(info.value)
    assert "ANTHROPIC_API_KEY is not set" in message and "--agent replay" in message
    with pytest.raises(AgentUnavailable, match="OPENAI_API_KEY is not set"):
        OpenAIAgent().check_ready()
    OpenAIAgent(base_url="http://127.0.0.1:11434/v1").check_ready()  # local servers need none
    ClaudeAgent(api_key="sk-explicit-key").check_ready()


# == the retry layer on its own ======================================================
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _failing(failure: Failure, times: int) -> tuple[Any, list[int]]:
    count = [0]

    def fn() -> str:
        count[0] += 1
        if count[0] <= times:
            raise RuntimeError("api")
        return "ok"

    return fn, count


def test_call_with_retries_is_bounded() -> None:
    policy = RetryPolicy(attempts=4, budget_s=100.0, base_delay_s=1.0, max_delay_s=4.0)
    transient = Failure("HTTP 500", True)
    fn, count = _failing(transient, 2)
    clock = FakeClock()
    result = call_with_retries(
        fn, lambda e: transient, policy, sleep=clock.sleep, clock=clock, rng=random.Random(1)
    )
    assert result == "ok" and count[0] == 3
    assert 0.5 <= clock.sleeps[0] <= 1.0 and 1.0 <= clock.sleeps[1] <= 2.0  # equal jitter
    # Attempts run out.
    fn, count = _failing(transient, 99)
    with pytest.raises(AgentUnavailable, match="gave up after 4 attempts"):
        call_with_retries(fn, lambda e: transient, policy, sleep=clock.sleep, clock=clock)
    assert count[0] == 4
    # The time budget runs out first: Retry-After 60 s with a 100 s budget → one wait.
    slow = Failure("rate limited", True, retry_after=60.0)
    fn, count = _failing(slow, 99)
    clock = FakeClock()
    with pytest.raises(AgentUnavailable, match="retry budget of 100 s exhausted"):
        call_with_retries(fn, lambda e: slow, policy, sleep=clock.sleep, clock=clock)
    assert count[0] == 2 and len(clock.sleeps) == 1 and 60.0 <= clock.sleeps[0] <= 66.0
    # Not transient: no retry. Not an API failure at all: propagates unchanged.
    fatal = Failure("HTTP 401", False)
    fn, count = _failing(fatal, 99)
    with pytest.raises(AgentUnavailable, match="HTTP 401"):
        call_with_retries(fn, lambda e: fatal, policy, sleep=clock.sleep, clock=clock)
    assert count[0] == 1
    fn, count = _failing(fatal, 99)
    with pytest.raises(RuntimeError, match="api"):
        call_with_retries(fn, lambda e: None, policy, sleep=clock.sleep, clock=clock)


def test_backoff_honours_retry_after_with_a_little_jitter() -> None:
    rng = random.Random(7)
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    for _ in range(50):
        assert 2.0 <= backoff_delay(1, policy, 2.0, rng) <= 2.2
        assert 4.0 <= backoff_delay(10, policy, None, rng) <= 8.0  # capped


def test_redact_removes_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "opaque-secret-value-123")
    text = redact(
        "key opaque-secret-value-123, Authorization: Bearer abcdefghijkl, sk-ant-api03-XYZ123456"
    )
    assert "opaque-secret-value-123" not in text
    assert "abcdefghijkl" not in text and "XYZ123456" not in text
    assert redact("x", ["explicit-secret"]) == "x"
    assert "explicit-secret" not in redact("has explicit-secret inside", ["explicit-secret"])


def test_tool_results_keep_the_handle_protocol(flavor: str) -> None:
    """Any ToolHandle works (here a bare one without ``limit_hit``), not only the runner's."""

    class Bare:
        catalog = agent_catalog()

        def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
            return ToolResult(True, result={"tool": tool})

    policy = ScriptedPolicy([{"calls": [{"name": "quote_prefixes", "args": {}}]}, {"text": "ok"}])
    with FakeModelServer(policy) as server:
        agent = started(make_agent(flavor, server))
        assert agent.respond("Hi", Bare()) == "ok"


def test_every_call_sends_the_body_the_sdk_sends_on_the_first(
    crm: CRM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call of a process goes through ``messages.create``; later ones send
    the same request pre-encoded: the server must see the same body either way."""
    monkeypatch.setattr(AnthropicBackend, "_deprecation_shown", False)
    policy = ScriptedPolicy(
        [
            {"calls": [{"name": "client_search", "args": {"name": "Northwind"}}]},
            {"calls": [{"name": "opportunity_search", "args": {"client_id": NORTHWIND}}]},
            {"text": "Done."},
        ]
    )
    with FakeModelServer(policy) as server:
        agent = started(make_agent("claude", server))
        assert agent.respond("What deals does Northwind have?", RecordingHandle(crm, 8))
        agent.close()
    bodies = [r.body for r in policy.requests]
    assert len(bodies) == 3 and AnthropicBackend._deprecation_shown
    for before, after in itertools.pairwise(bodies):
        assert set(after) == set(before)
        assert {k: v for k, v in after.items() if k != "messages"} == {
            k: v for k, v in before.items() if k != "messages"
        }
        assert after["messages"][: len(before["messages"])] == before["messages"]
    assert [t["name"] for t in bodies[-1]["tools"]] == [t["name"] for t in agent_catalog()]


def test_the_request_body_encodes_a_conversations_tools_once() -> None:
    body = RequestBody()
    tools = [{"name": "a", "input_schema": {"type": "object"}}]
    request = {"model": "m", "messages": [{"role": "user", "content": "é"}], "tools": tools}
    first = body.encode(request)
    assert json.loads(first) == request
    assert body.encode(request) == first
    other = {**request, "tools": [{"name": "c"}]}  # another list: encoded anew
    assert json.loads(body.encode(other)) == other
    assert json.loads(body.encode({"model": "m"})) == {"model": "m"}
