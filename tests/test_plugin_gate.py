"""The CI gate: with a gate option the exit status is the gate's verdict, printed last and
stored in the JSON report; without one, pytest's own exit code applies."""

from __future__ import annotations

import pytest
from plugin_support.project import MEMORY, last_line, load_report, make_project

REPORT = ("--json-report", "--json-report-file=r.json")
HONEST = ("--agent", "crm_agents:KnowsTheAnswers")  # perfect, and not an oracle


def _gate(pytester: pytest.Pytester) -> dict:
    report = load_report(pytester.path / "r.json")
    return report["crmbench"]["gate"]


def _assert_report_exit(pytester: pytest.Pytester, result: pytest.RunResult) -> None:
    """The JSON report's exit code is the one the process ended with."""
    assert load_report(pytester.path / "r.json")["exitcode"] == result.ret


def test_min_pass_rate_zero_passes_although_tests_failed(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    result = pytester.runpytest(*MEMORY, *REPORT, "--agent", "noop", "--crm-min-pass-rate", "0.0")
    result.assert_outcomes(failed=12)
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result.outlines) == "crmbench gate PASSED: pass rate 0.000 ≥ minimum 0.000"
    gate = _gate(pytester)
    assert gate["passed"] is True
    assert gate["reasons"] == ["pass rate 0.000 ≥ minimum 0.000"]
    _assert_report_exit(pytester, result)


def test_min_pass_rate_one_with_an_honest_perfect_agent(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest(*MEMORY, *REPORT, *HONEST, "--crm-min-pass-rate", "1.0")
    result.assert_outcomes(passed=20)
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result.outlines).startswith("crmbench gate PASSED: pass rate 1.000")
    assert _gate(pytester)["passed"] is True


def test_min_pass_rate_not_reached_fails_the_run(pytester: pytest.Pytester) -> None:
    make_project(pytester)  # noop: the 6 sandbox cases pass, but they are not the agent's
    result = pytester.runpytest(*MEMORY, *REPORT, "--agent", "noop", "--crm-min-pass-rate", "0.01")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(result.outlines) == "crmbench gate FAILED: pass rate 0.000 < minimum 0.010"
    gate = _gate(pytester)
    assert gate == {
        "passed": False,
        "reasons": ["pass rate 0.000 < minimum 0.010"],
        "regressions": [],
    }
    result.stdout.fnmatch_lines(["*= crmbench gate FAILED =*", "  pass rate 0.000 < minimum*"])


def test_no_gate_passes_an_oracle_run(pytester: pytest.Pytester) -> None:
    """The built-in oracle is handed the reference: its runs are marked and fail any gate."""
    make_project(pytester)
    result = pytester.runpytest(*MEMORY, *REPORT, "--crm-min-pass-rate", "0.0")
    result.assert_outcomes(passed=20)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(result.outlines).startswith("crmbench gate FAILED: oracle run")
    assert load_report(pytester.path / "r.json")["crmbench"]["oracle"] is True
    _assert_report_exit(pytester, result)


@pytest.mark.parametrize(
    ("agent", "oracle"),
    [("crm_agents:WantsTheScript", False), ("crm_agents:ReadsTheDataset", True)],
)
def test_cheaters_score_zero(pytester: pytest.Pytester, agent: str, oracle: bool) -> None:
    """Asking for the script gets nothing; reading the dataset files is caught."""
    make_project(pytester)
    result = pytester.runpytest_subprocess(
        *MEMORY, *REPORT, "--agent", agent, "--crm-min-pass-rate", "0.01"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    crm = load_report(pytester.path / "r.json")["crmbench"]
    assert crm["summary"]["passed"] == 0 and crm["summary"]["pass_rate"] == 0.0
    assert crm["oracle"] is oracle
    assert crm["gate"]["passed"] is False
    _assert_report_exit(pytester, result)


def test_without_gate_options_pytest_exit_code_applies(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    failing = pytester.runpytest(*MEMORY, *REPORT, "--agent", "noop")
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    assert _gate(pytester) is None
    assert "crmbench gate" not in failing.stdout.str()
    passing = pytester.runpytest(*MEMORY, *REPORT)
    assert passing.ret == pytest.ExitCode.OK
    assert _gate(pytester) is None
    assert "crmbench gate" not in passing.stdout.str()


@pytest.fixture
def baseline(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project plus ``base.json`` and ``base.jsonl``: the replay agent, everything passed."""
    make_project(pytester, conversations=["CONV-0001", "CONV-0002", "CONV-0003"], golden=False)
    result = pytester.runpytest(
        *MEMORY,
        *HONEST,
        "--json-report",
        "--json-report-file=base.json",
        "--crm-results",
        "base.jsonl",
    )
    result.assert_outcomes(passed=3)
    return pytester


def test_regression_against_baseline_fails_and_is_named(baseline: pytest.Pytester) -> None:
    pytester = baseline
    result = pytester.runpytest(
        *MEMORY, *REPORT, "--agent", "crm_agents:PerturbedAmount", "--crm-baseline", "base.json"
    )
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= crmbench gate FAILED =*", "*regression: CONV-0001"])
    assert last_line(result.outlines) == (
        "crmbench gate FAILED: 1 regression(s) vs baseline > allowed 0 (3 cases compared)"
    )
    gate = _gate(pytester)
    assert gate["passed"] is False
    assert gate["regressions"] == ["CONV-0001"]
    _assert_report_exit(pytester, result)


def test_allowed_regressions_are_respected(baseline: pytest.Pytester) -> None:
    pytester = baseline
    result = pytester.runpytest(
        *MEMORY,
        *REPORT,
        "--agent",
        "crm_agents:PerturbedAmount",
        "--crm-baseline",
        "base.json",
        "--crm-max-regressions",
        "1",
    )
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result.outlines) == (
        "crmbench gate PASSED: 1 regression(s) vs baseline ≤ allowed 1 (3 cases compared)"
    )
    assert _gate(pytester)["regressions"] == ["CONV-0001"]
    _assert_report_exit(pytester, result)


def test_baseline_may_be_a_results_stream(baseline: pytest.Pytester) -> None:
    pytester = baseline
    result = pytester.runpytest(
        *MEMORY, *REPORT, "--agent", "crm_agents:PerturbedQuote", "--crm-baseline", "base.jsonl"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert _gate(pytester)["regressions"] == ["CONV-0003"]


def test_no_regression_passes_the_gate(baseline: pytest.Pytester) -> None:
    result = baseline.runpytest(*MEMORY, *REPORT, *HONEST, "--crm-baseline", "base.json")
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result.outlines) == (
        "crmbench gate PASSED: 0 regression(s) vs baseline ≤ allowed 0 (3 cases compared)"
    )


def test_max_regressions_alone_is_no_gate(pytester: pytest.Pytester) -> None:
    """Pinned in the ini with the baseline given only in CI: without a baseline it checks
    nothing, so it must not turn a failing run into a vacuous gate pass."""
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    pytester.makeini("[pytest]\ncrmbench_max_regressions = 0\n")
    result = pytester.runpytest(*MEMORY, *REPORT, "--agent", "noop")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "crmbench gate" not in result.stdout.str()
    assert _gate(pytester) is None


def test_missing_baseline_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    result = pytester.runpytest(*MEMORY, "--crm-baseline", "nope.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--crm-baseline: nope.json: no such file*"])


@pytest.mark.parametrize(
    ("bound", "expected", "line"),
    [
        ("1.0", pytest.ExitCode.OK, "crmbench gate PASSED: error rate 1.000 ≤ maximum 1.000"),
        (
            "0.5",
            pytest.ExitCode.TESTS_FAILED,
            "crmbench gate FAILED: error rate 1.000 > maximum 0.500",
        ),
    ],
)
def test_max_error_rate(
    pytester: pytest.Pytester, bound: str, expected: pytest.ExitCode, line: str
) -> None:
    """Unreachable agent: 2 conversations + 2 agent golden cases error, 6 sandbox cases pass."""
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"])
    result = pytester.runpytest(
        *MEMORY, *REPORT, "--agent", "crm_agents:Unreachable", "--crm-max-error-rate", bound
    )
    result.assert_outcomes(passed=6, errors=4)
    assert result.ret == expected
    assert last_line(result.outlines) == line
    assert _gate(pytester)["passed"] is (expected == pytest.ExitCode.OK)
    _assert_report_exit(pytester, result)


def test_all_gate_conditions_combine(baseline: pytest.Pytester) -> None:
    """Every condition must hold; each one's reason is printed."""
    result = baseline.runpytest(
        *MEMORY,
        *REPORT,
        "--agent",
        "crm_agents:PerturbedAmount",
        "--crm-min-pass-rate",
        "0.5",
        "--crm-max-error-rate",
        "0.0",
        "--crm-baseline",
        "base.json",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    gate = _gate(baseline)
    assert gate["reasons"] == [
        "pass rate 0.667 ≥ minimum 0.500",
        "error rate 0.000 ≤ maximum 0.000",
        "1 regression(s) vs baseline > allowed 0 (3 cases compared)",
    ]
    assert last_line(result.outlines) == "crmbench gate FAILED: " + "; ".join(gate["reasons"])


@pytest.mark.parametrize("workers", ["2"])
def test_gate_decides_exit_code_under_xdist(pytester: pytest.Pytester, workers: str) -> None:
    make_project(pytester, golden=False)
    result = pytester.runpytest_subprocess(
        *MEMORY, *REPORT, "-n", workers, "--agent", "noop", "--crm-min-pass-rate", "0.0"
    )
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result.outlines).startswith("crmbench gate PASSED")
    assert _gate(pytester)["passed"] is True
