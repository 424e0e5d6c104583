"""Collection and options: malformed datasets, ini equivalents, usage errors, markers,
readable ids, deterministic order and trials."""

from __future__ import annotations

import json

import pytest
from plugin_support.project import (
    BASE,
    CONVERSATION_IDS,
    GOLDEN_SANDBOX,
    MEMORY,
    load_report,
    make_project,
    metadata,
    outcomes,
    snapshot_lines,
)

from pytest_crmbench.results.summary import wilson


def _collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    """Node ids ``--co -q`` lists."""
    result = pytester.runpytest(*MEMORY, "--co", "-q", "--strict-markers", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return [line for line in result.outlines if "::" in line]


def _ids(nodeids: list[str]) -> set[str]:
    """The case ids (``CONV-0003``) of node ids."""
    return {"-".join(n.split("[", 1)[1].split("-")[:2]) for n in nodeids}


# == malformed datasets ==============================================================
@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        pytest.param(
            '{"format":"crmbench/1","id":"CONV-0099","workflow":',
            "bad.jsonl:3: invalid JSON: *",
            id="bad-json",
        ),
        pytest.param(
            json.dumps(
                {
                    "format": "crmbench/1",
                    "id": "CONV-0099",
                    "workflow": "Client Management",
                    "complexity": "simple",
                    "reference_date": "2025-10-01",
                }
            ),
            "bad.jsonl:3 (CONV-0099): turns: *",
            id="missing-turns",
        ),
        pytest.param(
            snapshot_lines(["CONV-0001"])[0]
            .replace('"CONV-0001"', '"CONV-0098"')
            .replace('"create_new_opportunity"', '"create_deal"'),
            "bad.jsonl:3 (CONV-0098): turns[[]0[]].expected_calls[[]1[]].tool: *create_deal*",
            id="unknown-tool",
        ),
        pytest.param(
            snapshot_lines(["CONV-0002"])[0],
            "bad.jsonl:3*CONV-0002*duplicate*",
            id="duplicate-id",
        ),
    ],
)
def test_malformed_dataset_stops_collection_and_nothing_runs(
    pytester: pytest.Pytester, bad_line: str, expected: str
) -> None:
    make_project(pytester)
    good = snapshot_lines(["CONV-0001", "CONV-0002"])
    (pytester.path / "bad.jsonl").write_text("\n".join([*good, bad_line]) + "\n")
    result = pytester.runpytest(*MEMORY, "--crm-dataset", "bad.jsonl", "--crm-results", "r.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*{expected}", "*Interrupted: 1 error during collection*"])
    assert "pytest_crmbench/" not in result.stdout.str()  # the message, not our traceback
    counts = result.parseoutcomes()
    assert counts.get("errors", counts.get("error")) == 1
    assert not {"passed", "failed"} & set(counts)  # not even the golden cases ran
    results = pytester.path / "r.jsonl"
    assert not results.exists() or results.read_text() == ""


def test_malformed_shipped_dataset_file_is_named_too(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    dataset = pytester.path / "cases" / "conversations.jsonl"
    dataset.write_text(dataset.read_text() + "not json\n")
    result = pytester.runpytest(*MEMORY)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*cases/conversations.jsonl:13: invalid JSON*"])


def test_missing_dataset_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    result = pytester.runpytest(*MEMORY, "--crm-dataset", "nowhere.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before collection: nothing runs
    result.stderr.fnmatch_lines(["*--crm-dataset: no such file or folder: nowhere.jsonl*"])


# == options and ini ================================================================
def test_ini_options_are_honoured_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    pytester.makeini(
        """
        [pytest]
        crmbench_backend = memory
        crmbench_agent = noop
        crmbench_trials = 2
        crmbench_report = out/ini-report.json
        """
    )
    ini_only = pytester.runpytest(*BASE)
    ini_only.assert_outcomes(failed=4)  # noop, 2 trials of 2 conversations
    report = load_report(pytester.path / "out" / "ini-report.json")
    assert report["crmbench"]["backend"] == "memory"
    assert report["crmbench"]["agent"]["name"] == "noop"
    assert report["crmbench"]["settings"]["trials"] == 2

    overridden = pytester.runpytest(*BASE, "--agent", "replay", "--crm-trials", "1")
    overridden.assert_outcomes(passed=2)
    report = load_report(pytester.path / "out" / "ini-report.json")
    assert report["crmbench"]["agent"]["name"] == "replay"
    assert report["crmbench"]["backend"] == "memory"  # still from the ini


def test_pyproject_ini_options_including_the_gate(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        crmbench_backend = "memory"
        crmbench_agent = "noop"
        crmbench_min_pass_rate = "0.0"
        crmbench_strict_actions = true
        """
    )
    result = pytester.runpytest(*BASE, "--json-report", "--json-report-file=r.json")
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.OK  # the gate from pyproject.toml decides
    crm = load_report(pytester.path / "r.json")["crmbench"]
    assert crm["gate"]["passed"] is True
    assert crm["settings"]["strict_actions"] is True
    assert crm["settings"]["min_pass_rate"] == 0.0
    failing = pytester.runpytest(*BASE, "--crm-min-pass-rate", "0.9")
    assert failing.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--agent", "unknown"), "*unknown agent 'unknown': use one of *noop*replay*"),
        (("--agent", "no_such_module:Agent"), "*cannot import agent module 'no_such_module'*"),
        (("--agent", "crm_agents:NoSuchAgent"), "*module 'crm_agents' has no attribute*"),
        (("--crm-backend", "oracle"), "*--crm-backend*invalid choice*"),
        (("--crm-trials", "0"), "*--crm-trials: 0 is out of range (allowed: between 1 and*"),
        (("--crm-min-pass-rate", "lots"), "*--crm-min-pass-rate: invalid value 'lots'*"),
    ],
    ids=["unknown-agent", "no-module", "no-attr", "backend", "trials", "rate"],
)
def test_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    make_project(pytester, conversations=["CONV-0001"])
    result = pytester.runpytest_subprocess(*MEMORY, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "passed" not in result.stdout.str()
    assert not (pytester.path / ".crmbench" / "report.json").exists()


def test_help_lists_the_crmbench_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "pytest-crmbench agent benchmark:",
            "  --agent=*",
            "*--crm-backend=*",
            "*--crm-resume*",
            "*--crm-min-pass-rate=*",
        ]
    )
    text = result.stdout.str()
    for flag in (
        "--agent-model",
        "--agent-base-url",
        "--crm-postgres",
        "--crm-dataset",
        "--crm-trials",
        "--crm-judge",
        "--crm-baseline",
        "--crm-max-regressions",
        "--crm-max-error-rate",
        "--crm-results",
        "--crm-recover",
    ):
        assert flag in text, flag
    for ini in ("crmbench_agent ", "crmbench_backend ", "crmbench_min_pass_rate "):
        assert ini in text, ini


# == markers, ids, order ============================================================
def test_readable_ids_and_deterministic_dataset_order(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    first = _collected(pytester)
    assert first == _collected(pytester)
    assert first[:3] == [
        "cases/test_conversations.py::test_conversation[CONV-0001-create-opportunity]",
        "cases/test_conversations.py::test_conversation[CONV-0002-deal-status]",
        "cases/test_conversations.py::test_conversation[CONV-0003-quote-lifecycle]",
    ]
    conv = [n for n in first if "test_conversation[" in n]
    assert [sorted(_ids([n]))[0] for n in conv] == list(CONVERSATION_IDS)
    assert "golden/test_golden.py::test_golden[CNO-001-prospecting-basic]" in first
    assert len(first) == 20


def test_k_selects_one_conversation(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    assert _collected(pytester, "-k", "CONV-0003") == [
        "cases/test_conversations.py::test_conversation[CONV-0003-quote-lifecycle]"
    ]


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "simple",
            {"CONV-0001", "CONV-0002", "CONV-0004", "CONV-0007", "CONV-0009"}
            | {"CONV-0010", "CONV-0012"}
            | set(GOLDEN_SANDBOX)
            | {"CNO-201", "CNO-202"},
        ),
        ("complex", {"CONV-0008"}),
        (
            "refusal",
            {"CONV-0004", "CONV-0006", "CONV-0008"}
            | {"CNO-101", "CNO-102", "CNO-103", "CNO-104", "CNO-202"},
        ),
        ("create_quote", {"CONV-0003", "CONV-0008"}),
        ("golden_sandbox", set(GOLDEN_SANDBOX)),
        ("golden_agent", {"CNO-201", "CNO-202"}),
        ("quote_management", {"CONV-0003", "CONV-0011"}),
        ("conversation and medium and not refusal", {"CONV-0003", "CONV-0005", "CONV-0011"}),
    ],
)
def test_markers_select_the_expected_items(
    pytester: pytest.Pytester, marker: str, expected: set[str]
) -> None:
    make_project(pytester)
    assert _ids(_collected(pytester, "-m", marker)) == expected


def test_strict_markers_run(pytester: pytest.Pytester) -> None:
    """Every marker the plugin puts on items is registered."""
    make_project(pytester)
    result = pytester.runpytest(*MEMORY, "--strict-markers", "-m", "refusal")
    result.assert_outcomes(passed=8, deselected=12)


# == trials ==========================================================================
def test_trials_suffix_ids_and_report_pass_hat_k(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    result = pytester.runpytest(
        *MEMORY,
        "--crm-trials",
        "3",
        "--agent",
        "crm_agents:FlakyOnSecondTry",
        "--json-report",
        "--json-report-file=r.json",
    )
    result.assert_outcomes(passed=5, failed=1)
    report = load_report(pytester.path / "r.json")
    assert outcomes(report) == {
        "CONV-0001-create-opportunity-t1": "passed",
        "CONV-0001-create-opportunity-t2": "passed",
        "CONV-0001-create-opportunity-t3": "passed",
        "CONV-0002-deal-status-t1": "passed",
        "CONV-0002-deal-status-t2": "failed",
        "CONV-0002-deal-status-t3": "passed",
    }
    trials = [t["metadata"]["crmbench"]["trial"] for t in report["tests"]]
    assert trials == [1, 2, 3, 1, 2, 3]
    summary = report["crmbench"]["summary"]
    assert summary["items"] == 6
    assert summary["pass_hat_k"] == {
        "k": 3,
        "cases": 2,
        "pass_hat_k": 0.5,
        "pass_hat_k_ci": wilson(1, 2),
        "pass_at_1": pytest.approx(5 / 6, abs=1e-6),
        "pass_at_1_ci": wilson(5, 6),
    }
    result.stdout.fnmatch_lines(["*pass^3*"])
    assert metadata(report)["CONV-0002"]["trial"] == 1


def test_trials_also_repeat_golden_agent_cases_but_not_sandbox_ones(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, conversations=["CONV-0001"])
    nodeids = _collected(pytester, "--crm-trials", "2")
    assert "golden/test_golden.py::test_golden[CNO-201-agent-create-basic-t2]" in nodeids
    assert "golden/test_golden.py::test_golden[CNO-001-prospecting-basic]" in nodeids
    assert len(nodeids) == 2 + 2 * 2 + len(GOLDEN_SANDBOX)
