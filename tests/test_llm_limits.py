"""What the LLM agents of one process share (``agents.endpoints``), through the real SDKs
over HTTP against the local fake model server, several threads at once, one agent
instance per thread (as ``--crm-concurrency`` runs them):

* one SDK client per endpoint and credentials; closing an agent leaves it open;
* a 429 with Retry-After pauses every thread talking to the endpoint, and the retry
  bounds (attempts × SDK retries, budget) still hold;
* ``rpm`` spaces requests, ``max_connections`` bounds what is in flight at the server.

Assertions are on what the server saw (arrival times, counters) and only as lower
bounds on gaps: a loaded machine may be slower, never faster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from plugin_support.llm import (  # noqa: F401  (fixtures)
    KEY_VARS,
    complete,
    flavor_fixture,
    isolated_llm,
    make_llm_agent,
)
from plugin_support.project import MEMORY, load_report, make_project

from pytest_crmbench.agents import endpoints
from pytest_crmbench.agents.base import AgentUnavailable
from pytest_crmbench.agents.endpoints import Pacer, close_shared_clients
from pytest_crmbench.agents.llm import LLMAgent, RetryPolicy
from pytest_crmbench.fakemodel import (
    FakeModelServer,
    FaultConfig,
    RouterPolicy,
    ScriptedPolicy,
    load_oracle,
)

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
FAKE_KEY = "sk-test-not-a-real-key-0003"


def make_agent(flavor: str, server: FakeModelServer, **kwargs: Any) -> LLMAgent:
    return make_llm_agent(flavor, server, FAKE_KEY, **kwargs)


def ask(agent: LLMAgent, text: str = "Hello") -> str:
    return str(complete(agent, text).text)


def in_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` in ``n`` threads started together; the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def arrivals(server: FakeModelServer) -> list[tuple[float, str]]:
    return sorted(server.timeline)


# == one client per process ============================================================
def test_agents_share_one_client_per_endpoint_and_closing_one_keeps_it(flavor: str) -> None:
    with FakeModelServer(ScriptedPolicy([{"text": "ok"}] * 10)) as server:
        agents = [make_agent(flavor, server) for _ in range(8)]
        clients: list[Any] = [None] * 8

        def build(i: int) -> None:
            clients[i] = agents[i].backend.client

        assert in_threads(8, build) == []
        assert all(c is clients[0] for c in clients)  # created once, under contention
        other = make_agent(flavor, server, timeout=3.0)  # other settings, other client
        assert other.backend.client is not clients[0]
        assert endpoints.shared_client_count() == 2
        agents[0].close()
        assert ask(agents[1]) == "ok"  # the shared client is still open
        assert agents[1].backend.client is clients[0]
        close_shared_clients()
        assert clients[0].is_closed()
        assert endpoints.shared_client_count() == 0
        assert ask(agents[2]) == "ok"  # a new session builds a new one
        assert agents[2].backend.client is not clients[0]


def test_the_key_is_part_of_the_client_identity_but_not_stored_in_it(flavor: str) -> None:
    with FakeModelServer(ScriptedPolicy([])) as server:
        a = make_agent(flavor, server)
        b = make_agent(flavor, server, api_key="sk-test-another-key-0004")
        assert a.backend.client is not b.backend.client
        assert FAKE_KEY not in repr(a.backend.client_key())


# == 429 pauses ========================================================================
def test_a_429_pauses_every_thread_of_the_endpoint(flavor: str) -> None:
    """One request in the middle gets 429 + Retry-After: R. From the moment the others
    can know it (a short grace for requests already on the wire) until R has passed,
    no request of any thread reaches the server; then all calls complete."""
    pause = 1.5
    faults = FaultConfig(sequence=("ok",) * 5 + ("rate_limit",), retry_after=pause)
    policy = ScriptedPolicy([{"text": "ok"}] * 100)
    retry = RetryPolicy(attempts=3, sdk_max_retries=1, budget_s=60.0)
    with FakeModelServer(policy, faults=faults, latency=0.05, record=True) as server:
        agents = [make_agent(flavor, server, retry=retry) for _ in range(4)]

        def work(i: int) -> None:
            for _ in range(5):
                assert ask(agents[i]) == "ok"

        assert in_threads(4, work) == []
        seen = arrivals(server)
    limited = [t for t, outcome in seen if outcome == "429"]
    assert len(limited) == 1
    t429 = limited[0]
    grace = 0.3  # requests that passed the check before the 429 was answered
    during = [t - t429 for t, _ in seen if t429 + grace < t < t429 + pause]
    assert during == []
    after = [t for t, _ in seen if t >= t429 + pause]
    assert len(after) >= 4  # every thread went on after the pause
    assert sum(outcome == "ok" for _, outcome in seen) == 20


def test_retry_bounds_hold_under_shared_pauses(flavor: str) -> None:
    """Every request is rate limited: each call gives up after its attempts, with at
    most attempts × (SDK retries + 1) requests, none hangs, none is silent."""
    faults = FaultConfig(rate=1.0, kinds=("rate_limit",), retry_after=0.2)
    retry = RetryPolicy(attempts=2, sdk_max_retries=1, budget_s=20.0, base_delay_s=0.05)
    with FakeModelServer(ScriptedPolicy([]), faults=faults, record=True) as server:
        agents = [make_agent(flavor, server, retry=retry) for _ in range(3)]
        errors = in_threads(3, lambda i: ask(agents[i]))
        stats = server.stats_dict()
    assert len(errors) == 3
    assert all(isinstance(e, AgentUnavailable) for e in errors)
    assert all("rate limited" in str(e) for e in errors), errors
    assert 3 <= stats["requests"] <= 3 * 2 * 2
    assert stats["faults"] == {"rate_limit": stats["requests"]}


def test_a_pause_longer_than_the_budget_fails_the_other_callers_at_once(flavor: str) -> None:
    faults = FaultConfig(sequence=("rate_limit",), retry_after=3600)
    retry = RetryPolicy(attempts=3, sdk_max_retries=1, budget_s=5.0)
    with FakeModelServer(ScriptedPolicy([{"text": "ok"}]), faults=faults) as server:
        first, second = (make_agent(flavor, server, retry=retry) for _ in range(2))
        with pytest.raises(AgentUnavailable, match="asked to wait 3600 s"):
            ask(first)
        with pytest.raises(AgentUnavailable, match=r"asked every caller to wait .* budget"):
            ask(second)
        assert server.stats_dict()["requests"] == 1  # the second sent nothing


# == rpm, tpm, max connections =========================================================
def test_rpm_spaces_the_requests_of_all_threads(flavor: str) -> None:
    rpm = 240  # one request per 0.25 s
    interval = 60 / rpm
    n_threads, per_thread = 3, 3
    policy = ScriptedPolicy([{"text": "ok"}] * 20)
    with FakeModelServer(policy, record=True) as server:
        agents = [make_agent(flavor, server, rpm=rpm) for _ in range(n_threads)]

        def work(i: int) -> None:
            for _ in range(per_thread):
                ask(agents[i])

        assert in_threads(n_threads, work) == []
        times = [t for t, _ in arrivals(server)]
    n = n_threads * per_thread
    assert len(times) == n
    # The k-th request may start at the earliest k intervals after the first slot; one
    # interval of slack for a first request that reached the server late.
    assert times[-1] - times[0] >= (n - 2) * interval


def test_without_limits_the_same_threads_overlap(flavor: str) -> None:
    """The control for the two tests around it: unlimited, the requests do overlap."""
    with FakeModelServer(ScriptedPolicy([{"text": "ok"}] * 20), latency=0.3) as server:
        agents = [make_agent(flavor, server) for _ in range(6)]
        assert in_threads(6, lambda i: ask(agents[i])) == []
        assert server.stats_dict()["max_in_flight"] >= 3


def test_max_connections_bounds_requests_in_flight(flavor: str) -> None:
    with FakeModelServer(ScriptedPolicy([{"text": "ok"}] * 20), latency=0.3) as server:
        agents = [make_agent(flavor, server, max_connections=2) for _ in range(6)]

        def work(i: int) -> None:
            for _ in range(2):
                ask(agents[i])

        assert in_threads(6, work) == []
        stats = server.stats_dict()
    assert stats["answered"] == 12
    assert stats["max_in_flight"] == 2


def test_max_connections_survive_timeouts_and_retries(flavor: str) -> None:
    """A request that times out (no answer) keeps its slot for its retry and frees it
    after: no slot leaks, the next calls still run."""
    faults = FaultConfig(sequence=("timeout", "timeout"), timeout_sleep=0.6)
    retry = RetryPolicy(attempts=3, sdk_max_retries=1, budget_s=30.0, base_delay_s=0.05)
    policy = ScriptedPolicy([{"text": "ok"}] * 20)
    with FakeModelServer(policy, faults=faults) as server:
        agents = [
            make_agent(flavor, server, max_connections=1, timeout=0.3, retry=retry)
            for _ in range(3)
        ]

        def work(i: int) -> None:
            for _ in range(2):
                assert ask(agents[i]) == "ok"

        assert in_threads(3, work) == []
        stats = server.stats_dict()
    assert stats["faults"] == {"timeout": 2} and stats["answered"] == 6
    backend = agents[0].backend
    limiter = endpoints.limiter(backend.provider, backend.base_url, backend.model, backend.limits)
    assert limiter is not None and limiter.slots is not None
    assert limiter.slots.acquire(blocking=False)  # the one slot is free again…
    assert not limiter.slots.acquire(blocking=False)  # …and there is only one


def test_pacer_spaces_units_and_takes_back_an_overestimate() -> None:
    now = [100.0]
    pacer = Pacer(600, clock=lambda: now[0])  # 10 units per second
    assert pacer.reserve(5) == 100.0  # the first one starts at once…
    assert pacer.reserve(1) == 100.5  # …the next after its 5 units
    pacer.adjust(-1)  # the second used nothing: its 0.1 s comes back
    assert pacer.reserve(1) == 100.5
    pacer.adjust(+20)  # the third used 21 units: 2 s more before the next
    assert pacer.reserve(1) == pytest.approx(102.6)
    now[0] = 200.0  # idle time is not saved up as a burst
    assert pacer.reserve(1) == 200.0
    assert pacer.reserve(1) == 200.1


def test_tpm_corrects_the_estimate_with_the_reported_usage(flavor: str) -> None:
    """The estimate is request bytes / 4; after the reply the limiter holds what the API
    reported, so the next request waits for the real tokens, not the guess."""
    long_answer = "word " * 500  # ~600 output tokens: unknown to the estimate
    with FakeModelServer(ScriptedPolicy([{"text": long_answer}])) as server:
        agent = make_agent(flavor, server, tpm=60)  # 1 token per second
        limiter = endpoints.limiter(
            agent.backend.provider, agent.backend.base_url, agent.model, agent.backend.limits
        )
        assert limiter is not None and limiter.tpm is not None
        agent.backend.client  # noqa: B018  (built before the clock starts)
        before = limiter.tpm.reserve(0)
        history: list[dict[str, Any]] = []
        agent.backend.add_user(history, "Hello")
        reply = agent.backend.complete("You are a test.", history, None, "auto")
        after = limiter.tpm.reserve(0)  # when a next request could start
    u = reply.usage
    used = u.input_tokens + u.cache_write_tokens + u.output_tokens
    assert u.output_tokens > 500  # the estimate (request bytes / 4) was far below `used`
    # One token per second: the next slot is `used` seconds on (plus the call's own
    # start-up time, which only a stalled machine makes longer than a fraction of that).
    assert after - before == pytest.approx(used, abs=3.0)


# == the options =======================================================================
def test_limits_from_the_ini_reach_the_agents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0003"], golden=False, agents=False)
    pytester.makeini("[pytest]\ncrmbench_agent_rpm = 150\ncrmbench_agent_max_connections = 1\n")
    oracle = load_oracle([str(pytester.path / "cases" / "conversations.jsonl")], [])
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    with FakeModelServer(RouterPolicy(oracle), record=True) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        result = pytester.runpytest_subprocess(
            *MEMORY, "--agent", "claude", "--json-report", "--json-report-file=r.json"
        )
        times = [t for t, _ in arrivals(server)]
    assert result.ret == 0, result.stdout.str()[-3000:]
    settings = load_report(pytester.path / "r.json")["crmbench"]["settings"]
    assert (settings["agent_rpm"], settings["agent_max_connections"]) == (150, 1)
    assert settings["agent_tpm"] is None and settings["agent_cache"] is None
    assert len(times) >= 4
    assert times[-1] - times[0] >= (len(times) - 2) * 60 / 150  # spaced by the rpm
