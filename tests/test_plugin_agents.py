"""Agents loaded as ``module:attr``: infrastructure failures are errors, not failures, and
replay variants (perturbed argument, skipped call, extra write) fail exactly their turn."""

from __future__ import annotations

import json

import pytest
from plugin_support.project import (
    MEMORY,
    load_report,
    make_project,
    metadata,
    outcomes,
    stream_rows,
)

REPORT = ("--json-report", "--json-report-file=r.json")


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("Unreachable", "agent unavailable: HTTP 503 Service Unavailable after 3 retries"),
        ("Crashing", "agent crashed: RuntimeError: kaboom in the agent"),
    ],
)
def test_agent_failures_are_errors_not_failures(
    pytester: pytest.Pytester, agent: str, reason: str
) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"])
    result = pytester.runpytest(
        *MEMORY, *REPORT, "--agent", f"crm_agents:{agent}", "--crm-results", "r.jsonl"
    )
    # 2 conversations + 2 golden agent cases cannot be judged; 6 sandbox cases ignore agents.
    result.assert_outcomes(passed=6, errors=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_conversation[[]CONV-0001-create-opportunity[]]*",
            f"*{reason}",
        ]
    )
    report = load_report(pytester.path / "r.json")
    errored = {tid for tid, outcome in outcomes(report).items() if outcome == "error"}
    assert errored == {
        "CONV-0001-create-opportunity",
        "CONV-0002-deal-status",
        "CNO-201-agent-create-basic",
        "CNO-202-agent-probability-125",
    }
    meta = metadata(report)
    for case_id in ("CONV-0001", "CONV-0002", "CNO-201", "CNO-202"):
        assert meta[case_id]["outcome"] == "error"
        assert meta[case_id]["passed"] is False
        assert meta[case_id]["error"] == reason
    summary = report["crmbench"]["summary"]
    # Only agent items count; the 6 sandbox cases are environment checks, apart.
    assert (summary["items"], summary["passed"], summary["failed"], summary["errors"]) == (
        4,
        0,
        0,
        4,
    )
    assert summary["pass_rate"] is None  # errors are excluded from the pass rate
    assert summary["error_rate"] == 1.0
    assert summary["environment"]["items"] == summary["environment"]["passed"] == 6
    assert summary["by_family"]["conversation"]["errors"] == 2
    assert summary["by_family"]["conversation"]["pass_rate"] is None
    # The stream records them too, as errors.
    lines = stream_rows(pytester.path / "r.jsonl")
    assert sorted(r["outcome"] for r in lines) == ["error"] * 4 + ["passed"] * 6


@pytest.mark.parametrize(
    ("agent", "case", "turns", "message"),
    [
        pytest.param(
            "PerturbedAmount",
            "CONV-0001",
            [False],
            [
                "CONV-0001 failed at turn 1/1 (1 failing turn(s)): *",
                "  - created Opportunity 'Northwind Traders * Warehouse Robotics Pilot' "
                "differs: amount: 86000 ≠ 85000",
            ],
            id="perturbed-amount",
        ),
        pytest.param(
            "PerturbedQuote",
            "CONV-0003",
            [True, False, True, True],
            [
                "CONV-0003 failed at turn 2/4 (1 failing turn(s)): 'Create a draft quote*",
                "  - created Quote * differs: amount: 93000 ≠ 92500",
                "  agent calls:",
                "    create_quote(*amount=93000*) -> ok",
                "  expected calls:",
                "    create_quote(*amount=92500*)",
            ],
            id="perturbed-quote",
        ),
        pytest.param(
            "SkipsCall",
            "CONV-0003",
            [True, True, False, True],
            [
                "CONV-0003 failed at turn 3/4 (1 failing turn(s)): 'Mark that quote as sent.'",
                "  - missing write: Quote * was not modified",
                "  agent calls:",
                "    (none)",
            ],
            id="skipped-call",
        ),
        pytest.param(
            "ExtraWrite",
            "CONV-0003",
            [False, True, True, True],
            [
                "CONV-0003 failed at turn 1/4 (1 failing turn(s)): 'Pull up the Helix*",
                "  - unexpected write: created Note 'Looked up.'",
            ],
            id="extra-write",
        ),
    ],
)
def test_replay_variant_fails_exactly_the_affected_turn(
    pytester: pytest.Pytester, agent: str, case: str, turns: list[bool], message: list[str]
) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002", "CONV-0003"], golden=False)
    result = pytester.runpytest(*MEMORY, *REPORT, "--agent", f"crm_agents:{agent}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(message)
    meta = metadata(load_report(pytester.path / "r.json"))
    assert [t["passed"] for t in meta[case]["turns"]] == turns
    first = turns.index(False) + 1
    assert meta[case]["first_failure"]["turn"] == first
    assert meta[case]["outcome"] == "failed"
    for other, m in meta.items():
        if other != case:
            assert m["outcome"] == "passed", other


def test_agent_sees_no_expected_values(pytester: pytest.Pytester) -> None:
    """A custom agent gets the briefing and the user's words only; replies are judged."""
    make_project(pytester, conversations=["CONV-0002"], golden=False)
    pytester.makepyfile(
        spy_agent="""
        import json, os

        class Spy:
            name = "spy"

            def start(self, briefing):
                self.seen = {"prompt": briefing.system_prompt, "tools": len(briefing.tools)}

            def respond(self, message, tools):
                found = tools.call(
                    "opportunity_search", {"name": "Acme Analytics – Data Platform Renewal"}
                )
                deal = found.result[0]
                self.seen["message"] = message
                with open("seen.json", "w") as fh:
                    json.dump(self.seen, fh)
                return f"It is in {deal['stage']} at ${deal['amount']:,.0f}."
        """
    )
    result = pytester.runpytest(*MEMORY, "--agent", "spy_agent:Spy")
    result.assert_outcomes(passed=1)
    seen = json.loads((pytester.path / "seen.json").read_text())
    assert seen["message"].startswith("What stage is the Acme Analytics")
    assert seen["tools"] >= 20
    assert "38,500" not in seen["prompt"] and "must_mention" not in seen["prompt"]
