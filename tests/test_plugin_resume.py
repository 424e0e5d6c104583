"""Crash-safe results (R3): ``kill -9`` mid-run leaves only complete JSONL lines, and
``--crm-resume`` runs the rest so the final summary equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from plugin_support.project import (
    ALL_ITEMS,
    MEMORY,
    comparable_summary,
    load_report,
    make_project,
    outcomes,
)

from pytest_crmbench.session import USER_PROPERTY, XdistController

# A resume must run the same agent as the run it completes (here at full speed).
SAME_AGENT = ("--agent", "crm_agents:SlowReplay")


@pytest.fixture(autouse=True)
def _fast_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs of ``SlowReplay`` (the resumes) do not sleep; the killed
    subprocess runs are started with their own environment."""
    monkeypatch.setenv("CRM_SLOW_S", "0")


SLOW_ENV = {**os.environ, "CRM_SLOW_S": "0.3"}  # the runs that get killed half-way


def _lines(path: Path) -> list[str]:
    """The item lines of a results stream (not the runs' header lines)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if not line.startswith('{"crmbench_run"')]


def _kill_after(cmd: list[str], cwd: Path, results: Path, finished: int) -> int:
    """Start ``cmd``; SIGKILL it once ``results`` holds ``finished`` lines. Returns them."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=SLOW_ENV
    )
    try:
        deadline = time.monotonic() + 60
        while len(_lines(results)) < finished:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no results were streamed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return len(_lines(results))


def test_resume_after_kill_9_equals_an_uninterrupted_run(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    results = pytester.path / "r.jsonl"
    # The reference: one uninterrupted run (the oracle, without the slowness).
    full = pytester.runpytest(*MEMORY, "--json-report", "--json-report-file=full.json")
    full.assert_outcomes(passed=ALL_ITEMS)

    cmd = [sys.executable, "-m", "pytest", *MEMORY, "--crm-report", "none"]
    cmd += ["--agent", "crm_agents:SlowReplay", "--crm-results", str(results)]
    done = _kill_after(cmd, pytester.path, results, finished=3)
    assert 3 <= done < ALL_ITEMS
    raw = results.read_bytes()
    assert raw.endswith(b"\n"), "torn last line"
    rows = [json.loads(line) for line in _lines(results)]  # every line parses
    finished = {r["test_id"] for r in rows}
    assert len(finished) == done
    assert all(r["outcome"] == "passed" for r in rows)

    resumed = pytester.runpytest(
        *MEMORY,
        *SAME_AGENT,
        "--crm-results",
        str(results),
        "--crm-resume",
        "--json-report",
        "--json-report-file=resumed.json",
    )
    resumed.assert_outcomes(passed=ALL_ITEMS - done, deselected=done)
    report = load_report(pytester.path / "resumed.json")
    ran = set(outcomes(report))
    assert not ran & finished, "finished items were run again"
    assert len(ran) == ALL_ITEMS - done
    assert report["crmbench"]["resumed_items"] == done
    # The summary covers both parts and equals the uninterrupted run's.
    expected = load_report(pytester.path / "full.json")["crmbench"]["summary"]
    assert comparable_summary(report["crmbench"]["summary"]) == comparable_summary(expected)
    # The stream now holds every item exactly once.
    final = [json.loads(line) for line in _lines(results)]
    assert len(final) == ALL_ITEMS
    assert len({(r["case_id"], r["trial"]) for r in final}) == ALL_ITEMS
    assert set(outcomes(load_report(pytester.path / "full.json"))) == {r["test_id"] for r in final}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_kill_9_of_one_xdist_worker_then_resume(pytester: pytest.Pytester) -> None:
    """A worker dies mid-run: the controller keeps streaming the others' results and
    records the crashed item as an error, which ``--crm-resume`` runs again."""
    make_project(pytester, golden=False)
    results = pytester.path / "r.jsonl"
    cmd = [sys.executable, "-m", "pytest", *MEMORY, "--crm-report", "none", "-n", "2"]
    cmd += ["--agent", "crm_agents:SlowReplay", "--crm-results", str(results)]
    proc = subprocess.Popen(cmd, cwd=pytester.path, stdout=subprocess.PIPE, text=True, env=SLOW_ENV)
    try:
        deadline = time.monotonic() + 60
        while len(_lines(results)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED
    assert "crashed while running" in out
    rows = [json.loads(line) for line in _lines(results)]
    errors = [r for r in rows if r["outcome"] == "error"]
    assert len(errors) == 1 and "worker crashed" in errors[0]["error"]
    assert all(r["outcome"] == "passed" for r in rows if r not in errors)
    judged = len(rows) - len(errors)

    resumed = pytester.runpytest(
        *MEMORY,
        *SAME_AGENT,
        "--crm-results",
        "r.jsonl",
        "--crm-resume",
        "--json-report",
        "--json-report-file=r.json",
    )
    resumed.assert_outcomes(passed=12 - judged, deselected=judged)
    summary = load_report(pytester.path / "r.json")["crmbench"]["summary"]
    assert (summary["items"], summary["passed"], summary["errors"]) == (12, 12, 0)
    assert len({r["case_id"] for r in map(json.loads, _lines(results))}) == 12


class _Collects:
    """What :class:`XdistController` sees of the run's session."""

    def __init__(self) -> None:
        self.state = None
        self.collected: list[dict[str, Any]] = []

    def collect(self, result: dict[str, Any], nodeid: str | None = None) -> None:
        self.collected.append(result)


class _Case:
    def unjudged_result(self, reason: str) -> dict[str, Any]:
        return {"outcome": "error", "error": reason}


def _report(nodeid: str, when: str, *, result: bool = False) -> pytest.TestReport:
    properties = [(USER_PROPERTY, {"outcome": "passed"})] if result else []
    outcome = "failed" if when == "???" else "passed"
    return pytest.TestReport(
        nodeid, ("x.py", 0, "x"), {}, outcome, None, when, user_properties=properties
    )


def test_a_worker_dying_after_an_items_result_leaves_that_result_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crash report names the item whose protocol did not finish: when its result
    came already (the worker died in its teardown), no second, error, result is added.
    An item that sent none is recorded as an error, as before."""
    session = _Collects()
    controller = XdistController(session, None)  # type: ignore[arg-type]
    monkeypatch.setattr(controller, "case_of", lambda nodeid: _Case())
    controller.pytest_runtest_logreport(_report("a", "call", result=True))
    controller.pytest_runtest_logreport(_report("a", "???"))
    assert session.collected == []
    controller.pytest_runtest_logreport(_report("b", "call", result=True))
    controller.pytest_runtest_logfinish("b")  # b's protocol finished; c then crashed
    controller.pytest_runtest_logreport(_report("c", "???"))
    assert session.collected == [
        {"outcome": "error", "error": "worker crashed while running this item"}
    ]


def test_resume_drops_a_torn_last_line_and_reruns_that_item(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002", "CONV-0003"], golden=False)
    results = pytester.path / "r.jsonl"
    first = pytester.runpytest(*MEMORY, "--crm-results", "r.jsonl")
    first.assert_outcomes(passed=3)
    lines = _lines(results)
    assert len(lines) == 3
    # As if the process died while writing the third line.
    results.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:25], encoding="utf-8")

    resumed = pytester.runpytest(
        *MEMORY,
        *SAME_AGENT,
        "--crm-results",
        "r.jsonl",
        "--crm-resume",
        "--json-report",
        "--json-report-file=r.json",
    )
    resumed.assert_outcomes(passed=1, deselected=2)
    report = load_report(pytester.path / "r.json")
    assert list(outcomes(report)) == ["CONV-0003-quote-lifecycle"]
    assert report["crmbench"]["summary"]["items"] == 3
    final = [json.loads(line) for line in _lines(results)]
    assert [r["case_id"] for r in final] == ["CONV-0001", "CONV-0002", "CONV-0003"]


def test_resume_needs_a_results_file(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    result = pytester.runpytest(*MEMORY, "--crm-resume")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--crm-resume needs --crm-results*"])


def test_results_stream_under_xdist_is_written_by_the_controller(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester)
    result = pytester.runpytest_subprocess(*MEMORY, "-n", "2", "--crm-results", "r.jsonl")
    result.assert_outcomes(passed=ALL_ITEMS)
    rows = [json.loads(line) for line in _lines(pytester.path / "r.jsonl")]
    assert len(rows) == ALL_ITEMS
    assert len({r["test_id"] for r in rows}) == ALL_ITEMS
