"""Runs that fail safely and fast: bad options, baselines, resumes, unreachable
infrastructure, empty input, reports that are never clobbered, markers that match the
summary. Each check runs the plugin as a user would (``runpytest_subprocess`` where the
exit status or the size of the output is the point)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plugin_support.project import BASE, MEMORY, load_report, make_project

REPORT = ("--json-report", "--json-report-file=r.json")


def _stderr_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.errlines if line.strip()]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--crm-min-pass-rate=2", "--crm-min-pass-rate: 2 is out of range (allowed: between 0"),
        ("--crm-max-error-rate=-1", "--crm-max-error-rate: -1 is out of range"),
        ("--crm-max-calls=0", "--crm-max-calls: 0 is out of range"),
        ("--crm-trials=0", "--crm-trials: 0 is out of range"),
        ("--crm-min-pass-rate=abc", "--crm-min-pass-rate: invalid value 'abc'"),
        ("--agent-timeout=0", "--agent-timeout: 0 is out of range"),
        ("--agent-rpm=0", "--agent-rpm: 0 is out of range (allowed: ≥ 1)"),
        ("--agent-tpm=-5", "--agent-tpm: -5 is out of range"),
        ("--agent-max-connections=0", "--agent-max-connections: 0 is out of range"),
        ("--agent-cache=README.md", "--agent-cache: README.md is a file, not a directory"),
        ("--crm-stop-after-errors=-2", "--crm-stop-after-errors: -2 is out of range"),
        ("--crm-postgres=foo", "--crm-postgres: 'foo' is not auto, docker, embedded or a"),
        ("--crm-dataset=nowhere.jsonl", "--crm-dataset: no such file or folder: nowhere.jsonl"),
        ("--crm-max-regressions=0", "--crm-max-regressions needs --crm-baseline"),
        ("--crm-baseline=README.md", "--crm-baseline: README.md:1: not a JSON line"),
        ("--crm-baseline=empty.json", "--crm-baseline: empty.json: not a report of a crmbench"),
        ("--crm-baseline=bad.json", "--crm-baseline: bad.json: not JSON"),
    ],
)
def test_a_bad_option_is_one_usage_error_before_anything_runs(
    pytester: pytest.Pytester, option: str, message: str
) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    (pytester.path / "README.md").write_text("# not a report\n\nat all\n", encoding="utf-8")
    (pytester.path / "empty.json").write_text("{}", encoding="utf-8")
    (pytester.path / "bad.json").write_text("{not json", encoding="utf-8")
    result = pytester.runpytest_subprocess(*MEMORY, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = _stderr_lines(result)
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert not (pytester.path / ".crmbench").exists()  # nothing ran, nothing was written


def test_a_space_form_path_outside_the_project_says_which_form_works(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "data.jsonl"
    elsewhere.write_text((pytester.path / "cases" / "conversations.jsonl").read_text())
    bad = pytester.runpytest_subprocess(*MEMORY, "--crm-dataset", str(elsewhere))
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert f"write --crm-dataset={elsewhere}" in bad.stderr.str()
    good = pytester.runpytest_subprocess(*MEMORY, f"--crm-dataset={elsewhere}", "cases")
    good.assert_outcomes(passed=1)


def test_a_baseline_sharing_no_case_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    first = pytester.runpytest(*MEMORY, "-k", "CONV-0001", "--crm-results", "base.jsonl")
    first.assert_outcomes(passed=1, deselected=1)
    result = pytester.runpytest(*MEMORY, "-k", "CONV-0002", "--crm-baseline", "base.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--crm-baseline: base.jsonl shares no judged case*"])


def test_resume_refuses_results_of_another_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    pytester.runpytest(*MEMORY, "--agent", "noop", "--crm-results", "r.jsonl")
    header = json.loads((pytester.path / "r.jsonl").read_text().splitlines()[0])
    assert header["crmbench_run"]["identity"]["agent"] == "noop"
    assert header["crmbench_run"]["dataset_sha256"]
    result = pytester.runpytest_subprocess(*MEMORY, "--crm-results", "r.jsonl", "--crm-resume")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "agent 'noop' → 'replay'" in result.stderr.str()


def test_resume_refuses_another_dataset(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    pytester.runpytest(*MEMORY, "--agent", "noop", "--crm-results", "r.jsonl")
    dataset = pytester.path / "cases" / "conversations.jsonl"
    dataset.write_text(dataset.read_text().splitlines()[0] + "\n")
    result = pytester.runpytest_subprocess(
        *MEMORY, "--agent", "noop", "--crm-results", "r.jsonl", "--crm-resume"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "was written for another dataset" in result.stdout.str() + result.stderr.str()


def test_a_fully_resumed_run_ends_as_the_uninterrupted_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    full = pytester.runpytest(*MEMORY, "--agent", "noop", "--crm-results", "r.jsonl")
    assert full.ret == pytest.ExitCode.TESTS_FAILED
    again = pytester.runpytest(
        *MEMORY, *REPORT, "--agent", "noop", "--crm-results", "r.jsonl", "--crm-resume"
    )
    again.assert_outcomes(deselected=2)
    assert again.ret == pytest.ExitCode.TESTS_FAILED  # not 5 ("no tests ran")
    crm = load_report(pytester.path / "r.json")["crmbench"]
    assert (crm["summary"]["items"], crm["summary"]["failed"]) == (2, 2)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_unreachable_postgres_is_one_message_not_one_per_item(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    """Under xdist the controller reaches the server while the workers boot, and stops
    the run before any item is scheduled: still one message, and no report."""
    make_project(pytester)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        *xdist,
        "--crm-postgres=postgresql://nobody:s3cret@127.0.0.1:1/x",
        "--crm-results=r.jsonl",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert len([line for line in text.splitlines() if line.strip()]) <= 20
    assert text.count("PostgreSQL could not be reached") == 1 and "127.0.0.1:1" in text
    assert "s3cret" not in text
    assert not (pytester.path / "r.jsonl").read_text()  # no header, no summary
    assert not list(pytester.path.glob("*report*.json"))


def test_an_unreachable_agent_stops_the_run_and_resume_completes_it(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, golden=False)  # 12 conversations
    stopped = pytester.runpytest_subprocess(
        *MEMORY, *REPORT, "-q", "--agent", "crm_agents:Unreachable", "--crm-results", "r.jsonl"
    )
    assert stopped.ret == pytest.ExitCode.INTERRUPTED
    assert "crmbench stopped the run: 3 items in a row could not be judged" in stopped.stdout.str()
    crm = load_report(pytester.path / "r.json")["crmbench"]
    assert crm["summary"]["errors"] == 3 and crm["stopped"]
    # Each errored item: its header and one line of reason (no fixture source, no trace).
    out = stopped.stdout.str()
    assert "def crm_result" not in out and "Traceback" not in out
    block = out.split("ERROR at setup of")[1].split("ERROR at setup of")[0]
    assert len([ln for ln in block.splitlines() if ln.strip()]) <= 3
    resumed = pytester.runpytest_subprocess(
        *MEMORY,
        "--agent",
        "crm_agents:Unreachable",
        "--crm-results",
        "r.jsonl",
        "--crm-resume",
        "--crm-stop-after-errors=0",
    )
    resumed.assert_outcomes(errors=12)


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "blank-lines"])
def test_an_empty_dataset_is_a_collection_error_naming_it(
    pytester: pytest.Pytester, content: str
) -> None:
    make_project(pytester, golden=False)
    (pytester.path / "cases" / "conversations.jsonl").write_text(content)
    result = pytester.runpytest_subprocess(*MEMORY)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: nothing runs
    text = result.stdout.str() + result.stderr.str()
    assert "conversations.jsonl" in text and "holds no conversation" in text
    assert "INTERNALERROR" not in text


def test_an_empty_dataset_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, golden=False)
    (pytester.path / "nothing").mkdir()
    result = pytester.runpytest_subprocess(*MEMORY, "--crm-dataset=nothing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--crm-dataset: nothing holds no *.jsonl dataset" in result.stderr.str()


def test_the_report_is_never_clobbered_by_a_run_that_judged_nothing(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    first = pytester.runpytest(*MEMORY, "--crm-label=nightly-42")
    first.assert_outcomes(passed=1)
    report = pytester.path / ".crmbench" / "report.json"
    kept = report.read_text()
    crm = json.loads(kept)["crmbench"]
    assert crm["label"] == "nightly-42" and crm["run_id"] and crm["started"] and crm["finished"]
    for args in (("--collect-only",), ("-k", "no-such-case"), ("--crm-trials=0",), ("--help",)):
        pytester.runpytest(*MEMORY, *args)
        assert report.read_text() == kept, args


def test_quiet_runs_still_say_where_the_report_went(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    result = pytester.runpytest(*MEMORY, "-q")
    result.stdout.fnmatch_lines(["*report: .crmbench/report.json*"])


@pytest.mark.parametrize(
    ("marker", "table", "key"),
    [
        ("quote_management", "by_workflow", "Quote Management"),
        ("medium", "by_complexity", "medium"),
        ("create_quote", "by_tool", "create_quote"),
        ("create_new_opportunity", "by_tool", "create_new_opportunity"),
    ],
)
def test_markers_select_what_the_summary_counts(
    pytester: pytest.Pytester, marker: str, table: str, key: str
) -> None:
    make_project(pytester)
    everything = pytester.runpytest(*MEMORY, *REPORT)
    summary = load_report(pytester.path / "r.json")["crmbench"]["summary"]
    counted = summary[table][key]["items"]
    selected = pytester.runpytest(*MEMORY, "-m", f"{marker} and not golden_sandbox")
    assert selected.parseoutcomes()["passed"] == counted, (everything.outlines[-1], counted)


def test_provider_and_model_are_in_the_report(pytester: pytest.Pytester) -> None:
    """Without model-backed agents the model is the setting; the store is named."""
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    pytester.runpytest(*MEMORY, *REPORT, "--agent-model=my-model")
    crm = load_report(Path(pytester.path) / "r.json")["crmbench"]
    assert crm["agent"]["name"] == "replay" and crm["agent"]["model"] == "my-model"
    assert crm["summary"]["model_calls"] == 0 and crm["summary"]["retries"] == 0


@pytest.mark.postgres
def test_a_database_lost_mid_run_ends_the_run_quickly(pytester: pytest.Pytester) -> None:
    """PostgreSQL stops while items run: the remaining items end as one-line errors
    within moments, the run stops after three, nothing hangs."""
    from pytest_crmbench.postgres import start_server

    server = start_server("embedded")
    try:
        make_project(pytester, golden=False)  # 12 conversations, 0.3 s per turn
        results = pytester.path / "r.jsonl"
        cmd = [sys.executable, "-m", "pytest", *BASE, "-q", "--crm-backend=postgres"]
        cmd += [f"--crm-postgres={server.admin_url}", "--agent", "crm_agents:SlowReplay"]
        cmd += ["--crm-results=r.jsonl"]
        proc = subprocess.Popen(
            cmd, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 120
        while _items(results) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no results streamed"
            time.sleep(0.05)
        server.stop()
        lost = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        assert time.monotonic() - lost < 30
        assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
        assert "crmbench stopped the run: 3 items in a row could not be judged" in out
        assert "database" in out and "Traceback" not in out
    finally:
        server.stop()


def _items(path: Path) -> int:
    if not path.exists():
        return 0
    return sum('"case_id"' in line for line in path.read_text().splitlines())


@pytest.mark.postgres
def test_a_provider_fallback_is_in_the_header_and_the_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``auto`` without a Docker engine falls back to the embedded server: say so."""
    from pytest_crmbench.postgres import docker_provider

    monkeypatch.delenv("CRMBENCH_POSTGRES_URL", raising=False)
    monkeypatch.setattr(docker_provider, "docker_available", lambda timeout=3.0: False)
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    result = pytester.runpytest(*BASE, *REPORT, "--crm-backend=postgres", "--crm-postgres=auto")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["crmbench: note: docker: no Docker engine answered*"])
    crm = load_report(pytester.path / "r.json")["crmbench"]
    assert any("embedded" in note for note in crm["postgres_notes"])
    assert "embedded" in crm["postgres_provider"]
