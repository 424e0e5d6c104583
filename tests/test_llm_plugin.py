"""End to end: ``pytest --agent claude|openai`` in a subprocess, the real SDK clients talking
HTTP to the fake model server on 127.0.0.1 (oracle policy), the JSON report and the JSONL
stream written. No real API key is ever needed: fake ones are set in the environment.

* the oracle passes 5 conversations + 5 golden agent cases with both agents;
* usage and cost totals in the report equal what the server reported;
* with 20 % injected faults every item still ends as pass, fail or error — no crash;
* a missing key is one usage error before any item runs;
* a canary key never appears in any output, even when the server echoes it in errors.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from plugin_support.project import MEMORY, REPO, load_report, make_project, metadata, stream_rows

from pytest_crmbench.agents.pricing import PriceTable
from pytest_crmbench.fakemodel import (
    ALL_FAULTS,
    FakeModelServer,
    FaultConfig,
    RouterPolicy,
    load_oracle,
)

CONVERSATIONS = ("CONV-0001", "CONV-0003", "CONV-0004", "CONV-0006", "CONV-0008")
CANARY = "sk-ant-CANARY-1234567890abcdef"
KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY")
OUTPUTS = ("--json-report", "--json-report-file=r.json", "--crm-results", "r.jsonl")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*KEY_VARS, "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_LOG", "OPENAI_LOG"):
        monkeypatch.delenv(var, raising=False)


def make_llm_project(pytester: pytest.Pytester) -> list[str]:
    """5 snapshot conversations + the first 5 agent cases of a shipped golden file."""
    make_project(pytester, conversations=CONVERSATIONS, golden=False, agents=False)
    gdir = pytester.path / "golden"
    gdir.mkdir()
    shutil.copy(REPO / "golden" / "test_golden.py", gdir / "test_golden.py")
    data = json.loads((REPO / "golden" / "create_new_client.json").read_text(encoding="utf-8"))
    data["cases"] = [c for c in data["cases"] if c["family"] == "agent"][:5]
    (gdir / "create_new_client.json").write_text(json.dumps(data), encoding="utf-8")
    return [c["id"] for c in data["cases"]]


@pytest.fixture
def project(pytester: pytest.Pytester) -> list[str]:
    return make_llm_project(pytester)


@pytest.fixture
def oracle_server(pytester: pytest.Pytester, project: list[str]) -> Iterator[FakeModelServer]:
    oracle = load_oracle([str(pytester.path / "cases" / "conversations.jsonl")], ["golden"])
    with FakeModelServer(RouterPolicy(oracle)) as server:
        yield server


def all_output(pytester: pytest.Pytester, result: pytest.RunResult) -> str:
    texts = [result.stdout.str(), result.stderr.str()]
    for path in pytester.path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".txt", ".html"):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


def item_outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {m["case_id"]: m["outcome"] for m in metadata(report).values()}


def test_claude_oracle_end_to_end_with_exact_usage_and_no_key_leak(
    pytester: pytest.Pytester,
    project: list[str],
    oracle_server: FakeModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", oracle_server.anthropic_base_url)
    result = pytester.runpytest_subprocess(*MEMORY, *OUTPUTS, "--agent", "claude", "-v")
    assert result.ret == 0, result.stdout.str()[-3000:]
    report = load_report(pytester.path / "r.json")
    assert item_outcomes(report) == dict.fromkeys([*CONVERSATIONS, *project], "passed")
    # Totals in the report = what the server reported, call for call.
    summary = report["crmbench"]["summary"]
    served = oracle_server.stats_dict()["usage"]["agent"]
    for key in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        assert summary[key] == served[key], key
    price = PriceTable().lookup("claude-sonnet-4-5")
    assert price is not None
    expected = (
        served["input_tokens"] * price.input
        + served["output_tokens"] * price.output
        + served["cache_read_tokens"] * price.read
        + served["cache_write_tokens"] * price.write
    ) / 1e6
    assert summary["cost_usd"] == pytest.approx(expected, abs=1e-6)
    items = list(metadata(report).values())
    assert sum(m["usage"]["model_calls"] for m in items) == served["calls"]
    streamed = stream_rows(pytester.path / "r.jsonl")
    assert sum(r["usage"]["input_tokens"] for r in streamed) == served["input_tokens"]
    assert all(t["usage"]["latency_s"] > 0 for m in items for t in m["turns"])
    assert "claude" in result.stdout.str() and "cost:" in result.stdout.str()
    assert CANARY not in all_output(pytester, result)


def test_openai_agent_through_agent_base_url_with_price_override(
    pytester: pytest.Pytester,
    project: list[str],
    oracle_server: FakeModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-fake-test-key-000")
    prices = '{"gpt-4.1": {"input": 1.0, "output": 10.0, "cache_read": 0.1}}'
    result = pytester.runpytest_subprocess(
        *MEMORY,
        *OUTPUTS,
        "--agent",
        "openai",
        "--agent-base-url",
        oracle_server.openai_base_url,
        "--agent-prices",
        prices,
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    report = load_report(pytester.path / "r.json")
    assert item_outcomes(report) == dict.fromkeys([*CONVERSATIONS, *project], "passed")
    served = oracle_server.stats_dict()["usage"]["agent"]
    summary = report["crmbench"]["summary"]
    assert (summary["input_tokens"], summary["output_tokens"]) == (
        served["input_tokens"],
        served["output_tokens"],
    )
    assert summary["cache_read_tokens"] == served["cache_read_tokens"] > 0
    # OpenAI counts cached tokens inside prompt_tokens; the override's prices apply.
    expected = (
        (served["input_tokens"] - served["cache_read_tokens"]) * 1.0
        + served["cache_read_tokens"] * 0.1
        + served["output_tokens"] * 10.0
    ) / 1e6
    assert summary["cost_usd"] == pytest.approx(expected, abs=1e-6)
    settings = report["crmbench"]["settings"]
    assert settings["agent"] == "openai" and settings["agent_prices"] == prices
    agent = report["crmbench"]["agent"]
    assert agent["host"] == "127.0.0.1" and agent["provider"] == "openai"
    assert agent["model"] == "gpt-4.1"  # the default, resolved by the agent


def test_injected_faults_never_crash_a_run(
    pytester: pytest.Pytester, project: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 % faults of every kind: transient ones are retried, tool-call mistakes are
    scored, and every item ends as passed, failed or error (with its reason)."""
    oracle = load_oracle([str(pytester.path / "cases" / "conversations.jsonl")], ["golden"])
    # Every kind once early on (each followed by a clean answer), then 20 % at random.
    every_kind = tuple(x for kind in ALL_FAULTS for x in (kind, "ok"))
    faults = FaultConfig(rate=0.2, seed=3, retry_after=0.2, timeout_sleep=1.3, sequence=every_kind)
    with FakeModelServer(RouterPolicy(oracle), faults=faults) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-test-key-001")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        result = pytester.runpytest_subprocess(
            *MEMORY, *OUTPUTS, "--agent", "claude", "--agent-timeout", "1"
        )
        stats = server.stats_dict()
    text = result.stdout.str() + result.stderr.str()
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), text[-3000:]
    assert "INTERNALERROR" not in text and "Traceback" not in text
    report = load_report(pytester.path / "r.json")
    outcomes = item_outcomes(report)
    assert set(outcomes) == {*CONVERSATIONS, *project}
    assert set(outcomes.values()) <= {"passed", "failed", "error"}
    for meta in metadata(report).values():
        if meta["outcome"] == "error":
            assert meta["error"].startswith("agent unavailable: ")
        elif meta["outcome"] == "failed":
            assert meta["first_failure"]["reason"]
    injected = stats["faults"]
    assert sum(injected.values()) >= 10, injected
    assert set(injected) == set(ALL_FAULTS), injected
    assert sum(o == "passed" for o in outcomes.values()) >= 5  # retries carried most through
    assert report["crmbench"]["summary"]["items"] == len(outcomes)


@pytest.mark.parametrize(
    ("args", "variable", "hint"),
    [
        (("--agent", "claude"), "ANTHROPIC_API_KEY", "--agent replay"),
        (("--agent", "openai"), "OPENAI_API_KEY", "--agent replay"),
        (("--crm-judge", "openai:gpt-4.1-mini"), "OPENAI_API_KEY", "--crm-judge none"),
    ],
    ids=["claude", "openai", "judge"],
)
def test_missing_key_is_one_usage_error_before_any_item(
    pytester: pytest.Pytester, project: list[str], args: tuple[str, ...], variable: str, hint: str
) -> None:
    result = pytester.runpytest_subprocess(*MEMORY, *OUTPUTS, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count(f"{variable} is not set") == 1, err
    assert hint in err
    assert "collected" not in result.stdout.str()  # nothing was collected, let alone run
    assert not (pytester.path / "r.jsonl").exists() or not (pytester.path / "r.jsonl").read_text()


def test_canary_key_never_leaks_even_when_the_server_echoes_it(
    pytester: pytest.Pytester, project: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile server refuses the key and echoes it in its error message: the items
    become errors with the reason, and the key appears in no output — terminal, JSON
    report, JSONL stream — even with debug logging on."""
    with FakeModelServer(
        RouterPolicy(load_oracle([], [])), api_key="sk-ant-the-right-one", echo_key_in_errors=True
    ) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        result = pytester.runpytest_subprocess(
            *MEMORY,
            *OUTPUTS,
            "--agent",
            "claude",
            "-rA",
            "--log-level=DEBUG",
            "-v",
            "--crm-stop-after-errors=0",  # every item, to look for the key everywhere
        )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = load_report(pytester.path / "r.json")
    metas = list(metadata(report).values())
    assert len(metas) == 10 and {m["outcome"] for m in metas} == {"error"}
    reason = metas[0]["error"]
    assert "refused the credentials (HTTP 401; check ANTHROPIC_API_KEY)" in reason
    assert "[REDACTED]" in reason
    result.stdout.fnmatch_lines(["*agent unavailable: Anthropic API*"])
    everything = all_output(pytester, result)
    assert CANARY not in everything
    assert CANARY[10:] not in everything  # not even a fragment
