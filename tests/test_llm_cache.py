"""``--agent-cache DIR``: model responses stored under a hash of the full request.

* the key: stable for the same request, different when the model, temperature, tools,
  tool choice or provider differ; never the key or the base URL;
* a corrupt or partial entry is a miss, not a crash; writers in threads and in two
  processes at once leave only whole entries;
* through the real SDKs: a second agent replays (no request, no cost, hits counted);
  the judge too;
* end to end (``pytest --agent claude`` in a subprocess, fake server): the second run
  with the same cache makes zero requests, reproduces every verdict, and the summary
  shows the hits and what they saved; the fake key is nowhere in the cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from plugin_support.llm import (  # noqa: F401  (fixtures)
    KEY_VARS,
    complete,
    flavor_fixture,
    isolated_llm,
    make_llm_agent,
)
from plugin_support.project import MEMORY, load_report, make_project, metadata

from pytest_crmbench.agents.base import AgentUnavailable
from pytest_crmbench.agents.claude import ClaudeAgent
from pytest_crmbench.agents.endpoints import close_shared_clients
from pytest_crmbench.agents.judge import LLMJudge
from pytest_crmbench.agents.llm import LLMAgent, RetryPolicy
from pytest_crmbench.agents.openai_agent import OpenAIAgent
from pytest_crmbench.agents.response_cache import ResponseCache, request_digest
from pytest_crmbench.fakemodel import (
    FakeJudgePolicy,
    FakeModelServer,
    FaultConfig,
    RouterPolicy,
    ScriptedPolicy,
    load_oracle,
)

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
FAKE_KEY = "sk-test-not-a-real-key-cache-0005"
CONVERSATIONS = ("CONV-0001", "CONV-0003", "CONV-0004", "CONV-0006", "CONV-0008")
REQUEST: dict[str, Any] = {
    "model": "m",
    "max_tokens": 100,
    "temperature": 0.0,
    "messages": [{"role": "user", "content": "hi"}],
    "tools": [{"name": "t", "input_schema": {}}],
    "tool_choice": {"type": "auto"},
}


def make_agent(flavor: str, server: FakeModelServer, **kwargs: Any) -> LLMAgent:
    return make_llm_agent(flavor, server, FAKE_KEY, **kwargs)


def ask(agent: LLMAgent, text: str = "Hello") -> Any:
    return complete(agent, text)


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if not p.name.startswith(".tmp-"))


# == the key ===========================================================================
def test_the_digest_is_stable_and_sees_every_setting() -> None:
    digest = request_digest("anthropic", REQUEST)
    assert digest == request_digest("anthropic", dict(reversed(list(REQUEST.items()))))
    assert digest == request_digest("anthropic", json.loads(json.dumps(REQUEST)))
    changed = [
        request_digest("openai", REQUEST),
        request_digest("anthropic", {**REQUEST, "model": "m2"}),
        request_digest("anthropic", {**REQUEST, "temperature": 0.7}),
        request_digest("anthropic", {**REQUEST, "max_tokens": 101}),
        request_digest("anthropic", {**REQUEST, "tools": []}),
        request_digest("anthropic", {**REQUEST, "tool_choice": {"type": "none"}}),
        request_digest("anthropic", {**REQUEST, "messages": [{"role": "user", "content": "hi!"}]}),
    ]
    assert len({digest, *changed}) == len(changed) + 1


def test_the_nth_identical_request_of_a_process_gets_the_nth_entry(tmp_path: Path) -> None:
    first = ResponseCache(tmp_path)
    keys = [first.key("anthropic", REQUEST) for _ in range(3)]
    assert len(set(keys)) == 3  # trials are sampled, not merged
    again = ResponseCache(tmp_path)  # the next session: the same sequence
    assert [again.key("anthropic", REQUEST) for _ in range(3)] == keys


def test_the_key_and_the_base_url_stay_out_of_the_request(flavor: str) -> None:
    agent = OpenAIAgent(base_url="http://user:pw@127.0.0.1:9/v1", api_key=FAKE_KEY)
    if flavor == "claude":
        agent = ClaudeAgent(base_url="http://user:pw@127.0.0.1:9", api_key=FAKE_KEY)
    request = agent.backend.build_request("sys", [{"role": "user", "content": "x"}], None, "auto")
    text = json.dumps(request)
    assert FAKE_KEY not in text and "127.0.0.1" not in text and "pw" not in text


# == robustness ========================================================================
def test_corrupt_partial_or_foreign_entries_are_misses(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = cache.key("anthropic", REQUEST)
    assert cache.get(key) is None  # absent
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    for bad in ("", '{"format": 1, "reply": {"te', "[1, 2]", '{"format": 999, "reply": {}}'):
        path.write_text(bad, encoding="utf-8")
        assert cache.get(key) is None, bad
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert cache.get(key) is None


def test_a_corrupt_entry_is_asked_again_and_replaced(flavor: str, tmp_path: Path) -> None:
    with FakeModelServer(ScriptedPolicy([{"text": "fresh"}] * 3)) as server:
        assert ask(make_agent(flavor, server, cache_dir=str(tmp_path))).text == "fresh"
        (stored,) = entries(tmp_path)
        stored.write_text('{"format": 1, "reply": {"text": 3, "calls": "no"', encoding="utf-8")
        close_shared_clients()  # a new session
        reply = ask(make_agent(flavor, server, cache_dir=str(tmp_path)))
        assert reply.text == "fresh" and reply.usage.cache_misses == 1
        assert server.stats_dict()["requests"] == 2
        close_shared_clients()
        replayed = ask(make_agent(flavor, server, cache_dir=str(tmp_path)))
        assert replayed.usage.cache_hits == 1 and server.stats_dict()["requests"] == 2


def test_concurrent_writers_in_threads_leave_whole_entries(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    keys = [f"{i:02x}" * 32 for i in range(20)]

    def write(n: int) -> None:
        for key in keys:
            entry = {"reply": {"text": f"{key}:" + "x" * 5000, "calls": []}, "by": n}
            assert cache.put(key, entry)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in keys:
        got = cache.get(key)
        assert got is not None and got["reply"]["text"].startswith(f"{key}:")
    assert len(entries(tmp_path)) == 20
    assert not list(tmp_path.rglob(".tmp-*"))


WRITER = """
import sys
from pytest_crmbench.agents.response_cache import ResponseCache
cache = ResponseCache(sys.argv[1])
for round in range(30):
    for i in range(10):
        key = f"{i:02x}" * 32
        assert cache.put(key, {"reply": {"text": key + ":" + "y" * 20000, "calls": []}})
        got = cache.get(key)
        assert got is not None and got["reply"]["text"].startswith(key), "half an entry"
"""


def test_two_processes_writing_at_once_never_leave_half_an_entry(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    assert len(entries(tmp_path)) == 10
    assert not list(tmp_path.rglob(".tmp-*"))


def test_an_entry_holding_a_secret_is_not_written(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    entry = {"reply": {"text": f"your key is {FAKE_KEY}", "calls": []}}
    assert not cache.put("ab" * 32, entry, [FAKE_KEY])
    assert entries(tmp_path) == []


# == through the SDKs ==================================================================
def test_a_second_session_replays_without_a_request(flavor: str, tmp_path: Path) -> None:
    steps = [{"calls": [{"name": "quote_prefixes", "args": {}}]}, {"text": "Done."}]
    with FakeModelServer(ScriptedPolicy(steps * 2)) as server:
        agent = make_agent(flavor, server, cache_dir=str(tmp_path))
        first = ask(agent)
        asked = server.stats_dict()["requests"]
        close_shared_clients()  # the next session of the same run
        again = ask(make_agent(flavor, server, cache_dir=str(tmp_path)))
        assert server.stats_dict()["requests"] == asked == 1
    assert [(c.id, c.name, c.args) for c in again.calls] == [
        (c.id, c.name, c.args) for c in first.calls
    ]
    assert again.stop_reason == first.stop_reason
    assert first.usage.cache_misses == 1 and first.usage.model_calls == 1
    u = again.usage
    assert (u.cache_hits, u.cache_misses, u.model_calls, u.cost_usd, u.retries) == (1, 0, 0, 0, 0)
    for key in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        assert getattr(u, key) == getattr(first.usage, key)
    assert u.cache_saved_usd == pytest.approx(first.usage.cost_usd) and u.cache_saved_usd > 0
    assert FAKE_KEY not in "".join(p.read_text(encoding="utf-8") for p in entries(tmp_path))


def test_failures_are_not_cached(flavor: str, tmp_path: Path) -> None:
    faults = FaultConfig(sequence=("server_error",))
    retry = RetryPolicy(attempts=1, sdk_max_retries=0)
    with (
        FakeModelServer(ScriptedPolicy([{"text": "ok"}]), faults=faults) as server,
        pytest.raises(AgentUnavailable),
    ):
        ask(make_agent(flavor, server, cache_dir=str(tmp_path), retry=retry))
    assert entries(tmp_path) == []


def test_the_judge_caches_its_answers_too(tmp_path: Path) -> None:
    rubric = 'The reply must confirm the deal "Warehouse Robotics Pilot".'
    with FakeModelServer(RouterPolicy(ScriptedPolicy([]), FakeJudgePolicy())) as server:
        base = server.anthropic_base_url

        def judge() -> LLMJudge:
            return LLMJudge("anthropic", base_url=base, api_key=FAKE_KEY, cache_dir=str(tmp_path))

        first = judge().score("Log it", "Created Warehouse Robotics Pilot.", rubric, [])
        close_shared_clients()
        again = judge().score("Log it", "Created Warehouse Robotics Pilot.", rubric, [])
        assert server.stats_dict()["requests"] == 1
    assert first["status"] == again["status"] == "judged"
    assert first["score"] == again["score"]
    assert first["usage"]["judge_cache_misses"] == 1 and first["usage"]["judge_calls"] == 1
    assert again["usage"]["judge_cache_hits"] == 1 and again["usage"]["judge_calls"] == 0
    assert again["usage"]["judge_cost_usd"] == 0
    assert again["usage"]["judge_cache_saved_usd"] == pytest.approx(
        first["usage"]["judge_cost_usd"]
    )


# == end to end ========================================================================
def verdicts(report: dict[str, Any]) -> dict[str, Any]:
    """Per item: outcome and each turn's pass/fail and checks' pass/fail."""
    return {
        case: (
            meta["outcome"],
            [
                (t["passed"], {k: c.get("passed") for k, c in t["checks"].items()})
                for t in meta.get("turns") or []
            ],
        )
        for case, meta in metadata(report).items()
    }


def test_a_rerun_with_the_cache_makes_no_model_call_and_the_same_verdicts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, conversations=CONVERSATIONS, golden=False, agents=False)
    oracle = load_oracle([str(pytester.path / "cases" / "conversations.jsonl")], [])
    cache = pytester.path / "model-cache"
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    with FakeModelServer(RouterPolicy(oracle)) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)

        def run(report: str, *extra: str) -> dict[str, Any]:
            result = pytester.runpytest_subprocess(
                *MEMORY,
                "--agent",
                "claude",
                "--agent-cache",
                str(cache),
                "--json-report",
                f"--json-report-file={report}",
                *extra,
            )
            assert result.ret == 0, result.stdout.str()[-3000:]
            assert "response cache:" in result.stdout.str()
            return load_report(pytester.path / report)

        first = run("first.json")
        asked = server.stats_dict()["requests"]
        server.reset_stats()
        second = run("second.json")
        replayed = server.stats_dict()["requests"]
        third = run("third.json", "-p", "xdist", "-n", "2")  # other processes, same entries
        with_xdist = server.stats_dict()["requests"]
        fourth = run("fourth.json", "--crm-concurrency=4")  # conversations in flight
        in_flight = server.stats_dict()["requests"]
    s1, s2, s3, s4 = (r["crmbench"]["summary"] for r in (first, second, third, fourth))
    assert asked > 0 and s1["model_calls"] == s1["cache_misses"] == asked
    assert s1["cache_hits"] == 0 and s1["cache_saved_usd"] == 0
    assert replayed == 0 and with_xdist == 0 and in_flight == 0
    for s in (s2, s3, s4):
        assert s["model_calls"] == 0 and s["cost_usd"] == 0 and s["cache_misses"] == 0
        assert s["cache_hits"] == asked
        assert s["cache_saved_usd"] == pytest.approx(s1["cost_usd"], abs=1e-6)
        assert (s["input_tokens"], s["output_tokens"]) == (s1["input_tokens"], s1["output_tokens"])
    assert verdicts(first) == verdicts(second) == verdicts(third) == verdicts(fourth)
    assert set(verdicts(first)) == set(CONVERSATIONS)
    stored = entries(cache)
    assert len(stored) == asked
    assert all(FAKE_KEY not in p.read_text(encoding="utf-8") for p in stored)
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert FAKE_KEY.encode() not in b"".join(p.read_bytes() for p in files)
