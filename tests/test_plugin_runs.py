"""Whole benchmark runs through pytest: replay/noop, both stores, xdist, the JSON report.

Each test builds a tiny project (``cases/`` + ``golden/`` with the shipped data) in
``pytester.path``. Memory-store checks run in process; xdist and PostgreSQL in a
subprocess.
"""

from __future__ import annotations

import json

import pytest
from plugin_support.project import (
    ALL_ITEMS,
    BASE,
    GOLDEN_SANDBOX,
    MEMORY,
    comparable_summary,
    load_report,
    make_project,
    metadata,
    outcomes,
)


def _by_family(report: dict) -> dict[str, dict[str, int]]:
    """family -> {outcome: count}, from the items' own metadata."""
    out: dict[str, dict[str, int]] = {}
    for test in report["tests"]:
        meta = test["metadata"]["crmbench"]
        counts = out.setdefault(meta["family"], {})
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    return out


def test_replay_passes_every_shipped_conversation_and_golden_case_on_memory(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, shipped=True)
    result = pytester.runpytest(*MEMORY, "--json-report", "--json-report-file=r.json")
    assert result.ret == pytest.ExitCode.OK
    counts = result.parseoutcomes()
    assert not {"failed", "errors", "skipped"} & set(counts), counts
    report = load_report(pytester.path / "r.json")
    families = _by_family(report)
    assert set(families) == {"conversation", "golden_sandbox", "golden_agent"}
    assert all(set(c) == {"passed"} for c in families.values()), families
    crm = report["crmbench"]
    assert crm["backend"] == "memory"
    assert crm["postgres_provider"] is None
    assert crm["agent"]["name"] == "replay"
    summary = crm["summary"]
    sandbox = sum(families["golden_sandbox"].values())
    assert (summary["items"], summary["passed"], summary["failed"], summary["errors"]) == (
        counts["passed"] - sandbox,
        counts["passed"] - sandbox,
        0,
        0,
    )
    assert summary["environment"]["items"] == summary["environment"]["passed"] == sandbox
    assert summary["pass_rate"] == summary["turn_pass_rate"] == 1.0
    assert set(summary["turn_pass_rate_by_kind"].values()) == {1.0}
    assert summary["action_match_rate"] == 1.0
    # The oracle was handed the reference: the run says so, and no gate would pass it.
    assert crm["oracle"] is True and summary["oracle"] is True
    result.stdout.fnmatch_lines(
        [
            "*crmbench summary*",
            "*agent: replay*store: memory*ORACLE RUN*",
            f"*environment checks (no agent): {sandbox}/{sandbox} passed*",
        ]
    )


def test_noop_passes_no_shipped_conversation(pytester: pytest.Pytester) -> None:
    """Verifier honesty: a do-nothing agent scores 0; golden sandbox cases ignore the agent."""
    make_project(pytester, shipped=True)
    result = pytester.runpytest(
        *MEMORY,
        "--agent",
        "noop",
        "--json-report",
        "--json-report-file=r.json",
        "--crm-min-pass-rate=0.01",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = load_report(pytester.path / "r.json")
    families = _by_family(report)
    assert set(families["conversation"]) == {"failed"}
    assert set(families["golden_agent"]) == {"failed"}
    assert set(families["golden_sandbox"]) == {"passed"}
    summary = report["crmbench"]["summary"]
    by_family = summary["by_family"]
    assert by_family["conversation"]["passed"] == 0
    assert by_family["conversation"]["pass_rate"] == 0.0
    assert by_family["golden_agent"]["pass_rate"] == 0.0
    # Sandbox cases never involve the agent: environment checks, counted apart.
    assert "golden_sandbox" not in by_family
    assert summary["passed"] == 0 and summary["pass_rate"] == 0.0
    assert summary["turn_pass_rate"] == 0.0
    sandbox = sum(families["golden_sandbox"].values())
    assert summary["environment"]["passed"] == summary["environment"]["items"] == sandbox
    assert summary["items"] == sum(sum(c.values()) for c in families.values()) - sandbox
    assert report["crmbench"]["gate"]["passed"] is False
    assert report["crmbench"]["oracle"] is False


@pytest.mark.postgres
def test_replay_on_postgres_serial_and_two_workers(pytester: pytest.Pytester) -> None:
    """The default store (embedded PostgreSQL here, or CRMBENCH_POSTGRES_URL): every shipped
    item passes serially and with ``-n 2``, and the ``-n 2`` summary equals the serial one."""
    make_project(pytester, shipped=True)
    common = (*BASE, "--crm-backend", "postgres", "--json-report")
    serial = pytester.runpytest_subprocess(*common, "--json-report-file=serial.json", timeout=180)
    assert serial.ret == pytest.ExitCode.OK
    assert not {"failed", "errors", "skipped"} & set(serial.parseoutcomes())
    parallel = pytester.runpytest_subprocess(
        *common, "-n", "2", "--json-report-file=xdist.json", timeout=180
    )
    assert parallel.ret == pytest.ExitCode.OK
    assert parallel.parseoutcomes()["passed"] == serial.parseoutcomes()["passed"]
    a = load_report(pytester.path / "serial.json")
    b = load_report(pytester.path / "xdist.json")
    for report in (a, b):
        assert report["crmbench"]["backend"] == "postgres"
        assert report["crmbench"]["postgres_provider"]
        assert report["crmbench"]["summary"]["pass_rate"] == 1.0
        assert report["crmbench"]["summary"]["errors"] == 0
    assert comparable_summary(a["crmbench"]["summary"]) == comparable_summary(
        b["crmbench"]["summary"]
    )
    assert outcomes(a) == outcomes(b)


_WAIT_FOR_A_WORKER = """
import time
from pathlib import Path

import pytest_crmbench.postgres as postgres

_real_start = postgres.start_server


def _start_after_a_worker_booted(*args, **kwargs):
    deadline = time.monotonic() + 60
    while not list(Path(__file__).parent.glob("booted-*")):
        if time.monotonic() > deadline:
            raise RuntimeError("no worker booted while the server was starting")
        time.sleep(0.02)
    Path(__file__).parent.joinpath("server-started").write_text("")
    return _real_start(*args, **kwargs)


postgres.start_server = _start_after_a_worker_booted


def pytest_configure(config):
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        Path(__file__).parent.joinpath("booted-" + worker["workerid"]).write_text("")
"""


@pytest.mark.postgres
def test_xdist_workers_boot_while_the_postgres_server_starts(pytester: pytest.Pytester) -> None:
    """An xdist controller starts the server in the background: here the start itself
    waits for a worker to have booted, which never happens if the workers are spawned
    only once the server is up. The workers then find the server before their first item."""
    make_project(pytester, conversations=["CONV-0001", "CONV-0002", "CONV-0003"], golden=False)
    with (pytester.path / "conftest.py").open("a", encoding="utf-8") as conftest:
        conftest.write(_WAIT_FOR_A_WORKER)
    result = pytester.runpytest_subprocess(
        *BASE, "--crm-backend", "postgres", "-n", "2", "--json-report", timeout=180
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    assert result.parseoutcomes()["passed"] == 3
    assert (pytester.path / "server-started").exists()
    report = load_report(pytester.path / ".report.json")
    assert report["crmbench"]["postgres_provider"]
    assert "starting" in result.stdout.str()  # the header could not name the server yet
    assert report["crmbench"]["postgres_provider"] in result.stdout.str()  # the summary does
    assert not list(pytester.path.glob("crmbench-handoff-*"))


def test_xdist_summary_equals_serial(pytester: pytest.Pytester) -> None:
    """A mixed run (noop: conversations fail, sandbox golden passes) with ``-n 2`` gives the
    serial run's summary and the same outcome per test id."""
    make_project(pytester)
    common = (*MEMORY, "--agent", "noop", "--json-report")
    serial = pytester.runpytest_subprocess(*common, "--json-report-file=serial.json")
    parallel = pytester.runpytest_subprocess(*common, "-n", "2", "--json-report-file=xdist.json")
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    a = load_report(pytester.path / "serial.json")
    b = load_report(pytester.path / "xdist.json")
    assert len(a["tests"]) == len(b["tests"]) == ALL_ITEMS
    assert outcomes(a) == outcomes(b)
    assert comparable_summary(a["crmbench"]["summary"]) == comparable_summary(
        b["crmbench"]["summary"]
    )
    assert a["crmbench"]["summary"]["top_failure_reasons"]
    # Every worker's per-item verdicts reached the controller intact.
    assert metadata(a).keys() == metadata(b).keys()
    for case_id, meta in metadata(a).items():
        other = metadata(b)[case_id]
        assert [t["passed"] for t in meta["turns"]] == [t["passed"] for t in other["turns"]]


def test_json_report_summary_and_plain_json_metadata(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest(
        *MEMORY, "--agent", "noop", "--json-report", "--json-report-file=r.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = load_report(pytester.path / "r.json")
    crm = report["crmbench"]
    summary = crm["summary"]
    for key in (
        "items",
        "passed",
        "failed",
        "errors",
        "pass_rate",
        "turn_pass_rate",
        "action_match_rate",
        "by_complexity",
        "by_workflow",
        "by_tool",
    ):
        assert key in summary, key
    agent_items = ALL_ITEMS - len(GOLDEN_SANDBOX)
    assert summary["items"] == agent_items
    assert summary["passed"] + summary["failed"] + summary["errors"] == agent_items
    assert summary["environment"]["items"] == len(GOLDEN_SANDBOX)
    assert set(summary["by_complexity"]) == {"simple", "medium", "complex"}
    assert "Quote Management" in summary["by_workflow"]
    assert summary["by_tool"]["create_quote"]["items"] == 2
    assert crm["dataset"]["sha256"]
    assert crm["dataset"]["files"][0].endswith("conversations.jsonl")
    assert crm["gate"] is None
    assert "pytest-crmbench" in crm["versions"]

    assert len(report["tests"]) == ALL_ITEMS
    for test in report["tests"]:
        meta = test["metadata"]["crmbench"]
        assert json.loads(json.dumps(meta)) == meta  # plain JSON
        assert {"case_id", "family", "complexity", "workflow", "trial", "turns"} <= meta.keys()
        assert meta["trial"] == 1
        assert meta["test_id"] in test["nodeid"]
        assert meta["outcome"] == test["outcome"]
        assert meta["family"] in ("conversation", "golden_sandbox", "golden_agent")
    conv = metadata(report)["CONV-0003"]
    assert (conv["family"], conv["complexity"], conv["workflow"]) == (
        "conversation",
        "medium",
        "Quote Management",
    )
    assert [t["turn"] for t in conv["turns"]] == [1, 2, 3, 4]
    assert all(t["passed"] is False for t in conv["turns"])
    assert conv["turns"][1]["expected_calls"][0]["tool"] == "create_quote"


def test_benchmark_run_writes_default_report(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001", "CONV-0002"], golden=False)
    result = pytester.runpytest(*MEMORY)
    result.assert_outcomes(passed=2)
    default = pytester.path / ".crmbench" / "report.json"
    assert default.is_file()
    crm = load_report(default)["crmbench"]
    assert crm["summary"]["passed"] == 2
    assert crm["summary"]["pass_rate"] == 1.0


def test_report_none_disables_default_report(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    result = pytester.runpytest(*MEMORY, "--crm-report", "none")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".crmbench").exists()


def test_custom_report_path(pytester: pytest.Pytester) -> None:
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    result = pytester.runpytest(*MEMORY, "--crm-report", "out/bench.json")
    result.assert_outcomes(passed=1)
    assert load_report(pytester.path / "out" / "bench.json")["crmbench"]["summary"]["items"] == 1


def test_nested_in_process_runs_do_not_leak_into_the_outer_report(
    pytester: pytest.Pytester,
) -> None:
    """A project testing its agent with pytester (in process) and writing a JSON report:
    the inner benchmark run's summary must not land in the outer report."""
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    template = pytester.path / "template"
    template.mkdir()
    for name in ("cases", "conftest.py", "crm_agents.py"):
        (pytester.path / name).rename(template / name)
    outer = pytester.path / "tests_outer"
    outer.mkdir()
    (outer / "test_nested.py").write_text(
        "import shutil\n"
        "from pathlib import Path\n"
        "TEMPLATE = Path(__file__).resolve().parents[1] / 'template'\n"
        "def test_inner(pytester):\n"
        "    shutil.copytree(TEMPLATE, pytester.path, dirs_exist_ok=True)\n"
        f"    result = pytester.runpytest(*{MEMORY!r}, '--crm-report', 'none')\n"
        "    result.assert_outcomes(passed=1)\n"
    )
    result = pytester.runpytest_subprocess(
        *BASE, "-p", "pytester", "tests_outer", "--json-report", "--json-report-file=outer.json"
    )
    result.assert_outcomes(passed=1)
    assert "crmbench" not in load_report(pytester.path / "outer.json")
    assert "crmbench summary" not in result.stdout.str()


def _script_around_a_run(pytester: pytest.Pytester, code: str) -> pytest.RunResult:
    """Run ``code`` (a script calling ``pytest.main`` on a one-conversation project) in
    a Python process of its own: what a process does around and after a run."""
    make_project(pytester, conversations=["CONV-0001"], golden=False)
    script = pytester.path / "run.py"
    script.write_text(code)
    return pytester.runpython(script)


@pytest.mark.parametrize(("args", "frozen"), [((), True), (("--co",), False)])
def test_a_benchmark_process_skips_the_last_garbage_collections_at_exit(
    pytester: pytest.Pytester, args: tuple[str, ...], frozen: bool
) -> None:
    """Objects still alive when a benchmark run's process exits are frozen first, so the
    interpreter's last collections do not walk them (xdist's controller waits for each
    worker's exit); a run that only collects leaves the process alone."""
    result = _script_around_a_run(
        pytester,
        "import atexit, gc, pytest\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() >= LATER))\n"
        f"pytest.main([*{MEMORY!r}, '-q', '--crm-report=none', *{args!r}])\n"
        "alive = [[] for _ in range(20000)]  # made after the run: not frozen by it\n"
        "LATER = gc.get_freeze_count() + len(alive)\n",
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"frozen at exit: {frozen}"])


def test_the_agents_warm_up_runs_with_the_collector_paused_and_leaves_it_on(
    pytester: pytest.Pytester,
) -> None:
    result = _script_around_a_run(
        pytester,
        "import gc, pytest, sys\n"
        "sys.path.insert(0, '.')\n"
        f"code = pytest.main([*{MEMORY!r}, '-q', '--crm-report=none', "
        "'--agent=crm_agents:WarmsUp'])\n"
        "import crm_agents\n"
        "print('during:', crm_agents.WarmsUp.gc_enabled_during_warm_up, 'after:', gc.isenabled())\n"
        "sys.exit(code)\n",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["during: [[]False[]] after: True"])
